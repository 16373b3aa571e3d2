import type { CommandModule } from 'yargs';
import { BinaryCache, type CacheEntry } from '../carry/cache/store.js';
import { formatPlatform, platformFromText } from '../core/platform.js';
import { KfError, UsageError } from '../core/errors.js';
import { defineCommand, type GlobalFlags } from './options.js';
import { commandSummaries } from './catalog.js';
import { runFunction } from './run.js';
import type { CommandIo } from '../core/command-io.js';
import { reporter } from '../core/progress.js';
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

/** The `cache ls --json` document: one row per sound cached binary. */
export type CacheLsResult = CacheRow[];

/** One row of `cache ls --json`. */
export type CacheRow = ReturnType<typeof entryRow>;

/** The cached binaries for people: a table, or that there are none. */
export function formatCacheLsResult(rows: CacheLsResult, cacheDir: string): string {
  return rows.length === 0
    ? `no cached binaries in ${new BinaryCache(cacheDir).root}`
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
}

/** `cache ls`: every cached binary whose bytes are still its manifest's (the others moved aside, warned). */
export async function runCacheLs(input: { cacheDir: string }, io: CommandIo): Promise<CacheLsResult> {
  const out = reporter(io.progress);
  const cache = new BinaryCache(input.cacheDir);
  const { entries, problems } = await cache.list();
  for (const p of problems)
    out.warn(`unreadable cache entry ${p.dir}: ${p.reason} ('cache prune' or 'cache rm' removes it)`);
  const { sound, corrupt } = await checkedEntries(cache, entries);
  for (const c of corrupt) out.warn(corruptText(c));
  return sound.map(entryRow);
}

const ls: CommandModule<GlobalFlags, GlobalFlags> = {
  command: 'ls',
  describe: 'list cached binaries',
  handler: (argv) =>
    runFunction(argv, (io) => runCacheLs(argv, io), {
      human: (rows) => formatCacheLsResult(rows, argv.cacheDir),
    }),
};

/** What `cache path` is asked: a key (or `tool`) and, optionally, platforms. */
export interface CachePathInput {
  cacheDir: string;
  /** a key or a unique prefix of one; `tool`: the tool's own executable */
  key: string;
  /** os/arch, comma-separated or repeated; absent: every platform of the key */
  platform?: string | string[];
}

/** The `cache path --json` document: a path per platform (no key for the tool's). */
export type CachePathResult = { key?: string; platform: string; path: string }[];

/** `cache path`: the path of a cached binary, handed out only for bytes that are still the manifest's. */
export async function runCachePath(input: CachePathInput, _io: CommandIo): Promise<CachePathResult> {
  const cache = new BinaryCache(input.cacheDir);
  // core/plan brings yaml (version parsing): only `cache path --platform` needs it
  const platforms = input.platform ? (await import('../core/plan.js')).parsePlatformList(input.platform) : [];
  if (input.key === 'tool') {
    // not a key (keys are 8+ characters): the tool's own executable, from a bundle or npm run dist
    const { checkToolFile, toolExecutablePath } = await import('../carry/cache/tool.js');
    if (platforms.length === 0)
      throw new UsageError('cache path tool needs --platform', 'e.g. --platform linux/amd64');
    const found: { platform: string; path: string }[] = [];
    for (const p of platforms) {
      const file = toolExecutablePath(input.cacheDir, p);
      const checked = await checkToolFile(file, p);
      if (typeof checked === 'string')
        throw new KfError(
          `no executable of the tool for ${formatPlatform(p)}: ${checked}`,
          "import a bundle that carries it ('kubeadm-forever bundle import FILE'); no path was printed",
        );
      found.push({ platform: formatPlatform(p), path: file });
    }
    return found;
  }
  const key = await resolveKey(cache, input.key);
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
  return sound.map((e) => ({ key, platform: e.manifest.platform, path: e.binary }));
}

/** The paths for people: one a line. */
export function formatCachePathResult(r: CachePathResult): string {
  return r.map((f) => f.path).join('\n');
}

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
  handler: (argv) => runFunction(argv, (io) => runCachePath(argv, io), { human: formatCachePathResult }),
});

/** The `cache rm --json` document. */
export interface CacheRmResult {
  removed: string;
}

/** `cache rm`: a key removed with all its platforms (a unique prefix names it). */
export async function runCacheRm(
  input: { cacheDir: string; key: string },
  _io: CommandIo,
): Promise<CacheRmResult> {
  const cache = new BinaryCache(input.cacheDir);
  const key = await resolveKey(cache, input.key);
  await cache.remove(key);
  return { removed: key };
}

const rm = defineCommand({
  command: 'rm <key>',
  describe: 'remove a cached key (all its platforms)',
  builder: (y) =>
    y.positional('key', {
      type: 'string',
      demandOption: true,
    }),
  handler: (argv) =>
    runFunction(argv, (io) => runCacheRm(argv, io), { human: (r) => `removed ${r.removed}` }),
});

/** The `cache prune --json` document. */
export interface CachePruneResult {
  removedKeys: string[];
  removedLeftovers: string[];
}

/** `cache prune`: leftovers removed and, with `keep`, all but the newest `keep` keys. */
export async function runCachePrune(
  input: { cacheDir: string; keep?: number },
  _io: CommandIo,
): Promise<CachePruneResult> {
  if (input.keep !== undefined && (!Number.isInteger(input.keep) || input.keep < 0)) {
    throw new UsageError(`--keep must be a whole number of keys, not ${input.keep}`, 'e.g. --keep 5');
  }
  return new BinaryCache(input.cacheDir).prune(input.keep);
}

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
    runFunction(argv, (io) => runCachePrune(argv, io), {
      human: (r) => `removed ${r.removedKeys.length} key(s) and ${r.removedLeftovers.length} leftover(s)`,
    }),
});

/** A source volume on the engine; with --remove, what became of it. */
export interface SourceVolumeRow {
  name: string;
  source: string;
  created: string;
  result?: 'removed' | 'in use' | 'gone';
}

/** The `cache volumes --json` document. */
export type CacheVolumesResult = SourceVolumeRow[];

/** `cache volumes`: the source volumes on the engine of `io.env`; `remove`: those not in use removed. */
export async function runCacheVolumes(
  input: { remove: boolean },
  io: CommandIo,
): Promise<CacheVolumesResult> {
  // dockerode only here: the other cache actions work without an engine
  const { connectDocker, listLabelledVolumes, removeVolume } = await import('../adapters/docker.js');
  const docker = await connectDocker(io.env);
  const found = await listLabelledVolumes(docker, SOURCE_VOLUME_LABEL);
  const rows = found.map((v) => ({ name: v.name, source: v.value, created: v.created ?? '' }));
  if (!input.remove) return rows;
  const results = [];
  for (const r of rows) results.push({ ...r, result: await removeVolume(docker, r.name) });
  for (const r of results)
    if (r.result === 'in use')
      reporter(io.progress).warn(`volume ${r.name} is in use by a running build; kept`);
  return results;
}

/** The volumes for people: a table, or (after --remove) how many went. */
export function formatCacheVolumesResult(rows: CacheVolumesResult, removing: boolean): string {
  if (!removing)
    return rows.length === 0
      ? 'no source volumes on the engine'
      : table([['NAME', 'SOURCE', 'CREATED'], ...rows.map((r) => [r.name, r.source, r.created])]);
  const removed = rows.filter((r) => r.result === 'removed').length;
  const inUse = rows.filter((r) => r.result === 'in use').length;
  return `removed ${removed} source volume(s)${inUse ? `, kept ${inUse} in use` : ''}`;
}

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
    runFunction(argv, (io) => runCacheVolumes(argv, io), {
      human: (rows) => formatCacheVolumesResult(rows, argv.remove),
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
