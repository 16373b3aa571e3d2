import type { Argv, CommandModule } from 'yargs';
import { BinaryCache, type CacheEntry } from '../cache/store.js';
import { platformText } from '../cache/manifest.js';
import { KfError, UsageError } from '../errors.js';
import type { GlobalArgs } from './options.js';
import { parsePlatformList } from '../core/plan.js';
import { runCommand } from './run.js';

/** One row of `cache ls --json` (the contract in issue 4). */
export function entryRow(e: CacheEntry) {
  const m = e.manifest;
  return {
    key: m.key,
    gitVersion: m.gitVersion,
    gitCommit: m.gitCommit,
    platform: m.platform,
    validity: m.validity.text,
    caValidity: m.caValidity.text,
    sha256: m.sha256,
    path: e.binary,
    size: m.size,
    created: m.created,
  };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

async function resolveKey(cache: BinaryCache, key: string): Promise<string> {
  let found: string | null;
  try {
    found = await cache.resolveKey(key);
  } catch (err) {
    throw new UsageError(
      (err as Error).message,
      "give more of the key; 'kubeadm-forever cache ls' lists them",
    );
  }
  if (!found)
    throw new KfError(
      `no cache entry for key ${key} in ${cache.root}`,
      "'kubeadm-forever cache ls' lists the keys (check --cache-dir)",
    );
  return found;
}

type LsArgs = GlobalArgs;
type KeyArgs = GlobalArgs & { key: string; platform?: string[] };
type PruneArgs = GlobalArgs & { keep?: number };

const ls: CommandModule<GlobalArgs, LsArgs> = {
  command: 'ls',
  describe: 'list cached binaries',
  handler: (argv) =>
    runCommand(argv, async (a, out) => {
      const cache = new BinaryCache(a.cacheDir);
      const { entries, problems } = await cache.list();
      for (const p of problems)
        out.warn(`unreadable cache entry ${p.dir}: ${p.reason} ('cache prune' or 'cache rm' removes it)`);
      const rows = entries.map(entryRow);
      const human =
        rows.length === 0
          ? `no cached binaries in ${cache.root}`
          : table([
              ['KEY', 'VERSION', 'PLATFORM', 'VALIDITY', 'CA', 'SHA256', 'SIZE', 'CREATED'],
              ...rows.map((r) => [
                r.key.slice(0, 12),
                r.gitVersion,
                r.platform,
                r.validity,
                r.caValidity,
                r.sha256.slice(0, 12),
                `${(r.size / 1048576).toFixed(1)}M`,
                r.created,
              ]),
            ]);
      out.result(rows, human);
    }),
};

const pathCmd: CommandModule<GlobalArgs, KeyArgs> = {
  command: 'path <key>',
  describe: 'print the path of a cached binary (a unique key prefix is enough)',
  builder: (y) =>
    (y as Argv<GlobalArgs>)
      .positional('key', { type: 'string', demandOption: true, describe: 'cache key, as cache ls shows it' })
      .option('platform', {
        type: 'string',
        array: true,
        describe: 'os/arch; default all of the key',
      }) as unknown as Argv<KeyArgs>,
  handler: (argv) =>
    runCommand(argv, async (a, out) => {
      const cache = new BinaryCache(a.cacheDir);
      const platforms = a.platform ? parsePlatformList(a.platform) : [];
      const key = await resolveKey(cache, a.key);
      const { entries } = await cache.list();
      const found = entries.filter(
        (e) =>
          e.manifest.key === key &&
          (platforms.length === 0 || platforms.some((p) => platformText(p) === e.manifest.platform)),
      );
      if (found.length === 0) {
        throw new KfError(
          `no cached binary for key ${key}${platforms.length ? ` and ${platforms.map(platformText).join(', ')}` : ''}`,
          "'kubeadm-forever cache ls' lists what is cached",
        );
      }
      out.result(
        found.map((e) => ({ key, platform: e.manifest.platform, path: e.binary })),
        found.map((e) => e.binary).join('\n'),
      );
    }),
};

const rm: CommandModule<GlobalArgs, KeyArgs> = {
  command: 'rm <key>',
  describe: 'remove a cached key (all its platforms)',
  builder: (y) =>
    (y as Argv<GlobalArgs>).positional('key', {
      type: 'string',
      demandOption: true,
    }) as unknown as Argv<KeyArgs>,
  handler: (argv) =>
    runCommand(argv, async (a, out) => {
      const cache = new BinaryCache(a.cacheDir);
      const key = await resolveKey(cache, a.key);
      await cache.remove(key);
      out.result({ removed: key }, `removed ${key}`);
    }),
};

const prune: CommandModule<GlobalArgs, PruneArgs> = {
  command: 'prune',
  describe:
    'remove leftovers (corrupt entries moved aside, temp dirs); with --keep N also all but the N newest keys',
  builder: (y) =>
    (y as Argv<GlobalArgs>).option('keep', {
      type: 'number',
      describe: 'keys to keep, newest first',
    }) as unknown as Argv<PruneArgs>,
  handler: (argv) =>
    runCommand(argv, async (a, out) => {
      if (a.keep !== undefined && (!Number.isInteger(a.keep) || a.keep < 0)) {
        throw new UsageError(`--keep must be a whole number of keys, not ${a.keep}`, 'e.g. --keep 5');
      }
      const cache = new BinaryCache(a.cacheDir);
      const r = await cache.prune(a.keep);
      out.result(r, `removed ${r.removedKeys.length} key(s) and ${r.removedLeftovers.length} leftover(s)`);
    }),
};

const command: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'cache <action>',
  describe: 'the binary cache: ls, path KEY, rm KEY, prune [--keep N]',
  builder: (y) =>
    y
      .command(ls)
      .command(pathCmd)
      .command(rm)
      .command(prune)
      .demandCommand(1, 'Name a cache action: ls, path, rm or prune.'),
  handler: () => undefined,
};
export default command;
