import type { CommandModule } from 'yargs';
import { BinaryCache, type CacheEntry } from '../carry/cache/store.js';
import { formatPlatform, platformFromText } from '../core/platform.js';
import { KfError, UsageError } from '../core/errors.js';
import { defineCommand, type GlobalFlags } from './options.js';
import { commandSummaries } from './catalog.js';
import { runCommand } from './run.js';
import { SOURCE_VOLUME_LABEL } from '../core/source-volume.js';

/** One row of `cache ls --json`: scripts read these fields, so they only ever grow. */
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

type Corrupt = { entry: CacheEntry; reason: string; movedTo: string };

/**
 * Each listed entry checked as a lookup checks it (size, sha256, machine), by the same call:
 * a corrupt one is moved aside and reported, never handed out.
 */
async function checkedEntries(
  cache: BinaryCache,
  entries: CacheEntry[],
): Promise<{ sound: CacheEntry[]; corrupt: Corrupt[] }> {
  const sound: CacheEntry[] = [];
  const corrupt: Corrupt[] = [];
  for (const e of entries) {
    const platform = platformFromText(e.manifest.platform)!;
    const r = await cache.lookup(e.manifest.key, platform);
    if (r.kind === 'hit') sound.push(r.entry);
    else if (r.kind === 'corrupt') corrupt.push({ entry: e, reason: r.reason, movedTo: r.movedTo });
  }
  return { sound, corrupt };
}

function corruptText(c: Corrupt): string {
  return `corrupt cache entry ${c.entry.manifest.key.slice(0, 12)} ${c.entry.manifest.platform}: ${c.reason}; moved aside to ${c.movedTo}`;
}

const ls: CommandModule<GlobalFlags, GlobalFlags> = {
  command: 'ls',
  describe: 'list cached binaries',
  handler: (argv) =>
    runCommand(argv, async (a, out) => {
      const cache = new BinaryCache(a.cacheDir);
      const { entries, problems } = await cache.list();
      for (const p of problems)
        out.warn(`unreadable cache entry ${p.dir}: ${p.reason} ('cache prune' or 'cache rm' removes it)`);
      const { sound, corrupt } = await checkedEntries(cache, entries);
      for (const c of corrupt) out.warn(corruptText(c));
      const rows = sound.map(entryRow);
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

const pathCmd = defineCommand({
  command: 'path <key>',
  describe:
    "print the path of a cached binary (a unique key prefix is enough); 'tool': the tool's executable",
  builder: (y) =>
    y
      .positional('key', { type: 'string', demandOption: true, describe: 'cache key, as cache ls shows it' })
      .option('platform', {
        type: 'string',
        array: true,
        describe: 'os/arch; default all of the key',
      }),
  handler: (argv) =>
    runCommand(argv, async (a, out) => {
      const cache = new BinaryCache(a.cacheDir);
      // core/plan brings yaml (version parsing): only `cache path --platform` needs it
      const platforms = a.platform ? (await import('../core/plan.js')).parsePlatformList(a.platform) : [];
      if (a.key === 'tool') {
        // not a key (keys are 8+ characters): the tool's own executable, from a bundle or npm run dist
        const { checkToolFile, toolExecutablePath } = await import('../carry/cache/tool.js');
        if (platforms.length === 0)
          throw new UsageError('cache path tool needs --platform', 'e.g. --platform linux/amd64');
        const found: { platform: string; path: string }[] = [];
        for (const p of platforms) {
          const file = toolExecutablePath(a.cacheDir, p);
          const checked = await checkToolFile(file, p);
          if (typeof checked === 'string')
            throw new KfError(
              `no executable of the tool for ${formatPlatform(p)}: ${checked}`,
              "import a bundle that carries it ('kubeadm-forever bundle import FILE'); no path was printed",
            );
          found.push({ platform: formatPlatform(p), path: file });
        }
        out.result(found, found.map((f) => f.path).join('\n'));
        return;
      }
      const key = await resolveKey(cache, a.key);
      const { entries } = await cache.list();
      const found = entries.filter(
        (e) =>
          e.manifest.key === key &&
          (platforms.length === 0 || platforms.some((p) => formatPlatform(p) === e.manifest.platform)),
      );
      if (found.length === 0) {
        throw new KfError(
          `no cached binary for key ${key}${platforms.length ? ` and ${platforms.map(formatPlatform).join(', ')}` : ''}`,
          "'kubeadm-forever cache ls' lists what is cached",
        );
      }
      // a path is handed out only for bytes that are still the manifest's
      const { sound, corrupt } = await checkedEntries(cache, found);
      if (corrupt.length > 0) {
        throw new KfError(
          corruptText(corrupt[0]!),
          `rebuild it (kubeadm-forever build …) or import it again from a bundle; no path was printed`,
        );
      }
      out.result(
        sound.map((e) => ({ key, platform: e.manifest.platform, path: e.binary })),
        sound.map((e) => e.binary).join('\n'),
      );
    }),
});

const rm = defineCommand({
  command: 'rm <key>',
  describe: 'remove a cached key (all its platforms)',
  builder: (y) =>
    y.positional('key', {
      type: 'string',
      demandOption: true,
    }),
  handler: (argv) =>
    runCommand(argv, async (a, out) => {
      const cache = new BinaryCache(a.cacheDir);
      const key = await resolveKey(cache, a.key);
      await cache.remove(key);
      out.result({ removed: key }, `removed ${key}`);
    }),
});

const prune = defineCommand({
  command: 'prune',
  describe:
    'remove leftovers (corrupt entries moved aside, temp dirs); with --keep N also all but the N newest keys',
  builder: (y) =>
    y.option('keep', {
      type: 'number',
      describe: 'keys to keep, newest first',
    }),
  handler: (argv) =>
    runCommand(argv, async (a, out) => {
      if (a.keep !== undefined && (!Number.isInteger(a.keep) || a.keep < 0)) {
        throw new UsageError(`--keep must be a whole number of keys, not ${a.keep}`, 'e.g. --keep 5');
      }
      const cache = new BinaryCache(a.cacheDir);
      const r = await cache.prune(a.keep);
      out.result(r, `removed ${r.removedKeys.length} key(s) and ${r.removedLeftovers.length} leftover(s)`);
    }),
});

const volumes = defineCommand({
  command: 'volumes',
  describe:
    'the source volumes builds keep on the Docker engine (one per source); --remove removes those not in use',
  builder: (y) =>
    y.option('remove', {
      type: 'boolean',
      default: false,
      describe:
        'remove them (a volume a running build uses is kept); the next build of that source fills it again',
    }),
  handler: (argv) =>
    runCommand(argv, async (a, out) => {
      // dockerode only here: the other cache actions work without an engine
      const { connectDocker, listLabelledVolumes, removeVolume } = await import('../adapters/docker.js');
      const docker = await connectDocker(process.env);
      const found = await listLabelledVolumes(docker, SOURCE_VOLUME_LABEL);
      const rows = found.map((v) => ({ name: v.name, source: v.value, created: v.created ?? '' }));
      if (!a.remove) {
        const human =
          rows.length === 0
            ? 'no source volumes on the engine'
            : table([['NAME', 'SOURCE', 'CREATED'], ...rows.map((r) => [r.name, r.source, r.created])]);
        out.result(rows, human);
        return;
      }
      const results = [];
      for (const r of rows) results.push({ ...r, result: await removeVolume(docker, r.name) });
      const removed = results.filter((r) => r.result === 'removed').length;
      const inUse = results.filter((r) => r.result === 'in use');
      for (const r of inUse) out.warn(`volume ${r.name} is in use by a running build; kept`);
      out.result(
        results,
        `removed ${removed} source volume(s)${inUse.length ? `, kept ${inUse.length} in use` : ''}`,
      );
    }),
});

const command: CommandModule<GlobalFlags, GlobalFlags> = {
  ...commandSummaries.cache,
  builder: (y) =>
    y
      .command(ls)
      .command(pathCmd)
      .command(rm)
      .command(prune)
      .command(volumes)
      .demandCommand(1, 'Name a cache action: ls, path, rm, prune or volumes.'),
  handler: () => undefined,
};
export default command;
