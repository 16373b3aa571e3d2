import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { sourceContentText, type FilledEntry } from '../../core/source-volume.js';
import { emptyTreeError } from '../../adapters/source-tree.js';
import { KfError, messageOf } from '../../core/errors.js';
import { sha256FileSync } from '../../adapters/fs.js';
import type { TarballIndex } from '../../adapters/tarball-tree.js';
import { diskTree, realRel, sourceReadError, type TreeFs } from '../../adapters/tree-fs.js';
import { sha256Hex } from '../../core/digest.js';
import type { SourceSpec } from '../../core/types.js';

/**
 * What identifies a source for the cache key, computed WITHOUT preparing it (no unpack, no
 * checkout), so a hit is found before any slow step and before any container:
 *
 * - git: undefined: the commit in the plan already names the tree exactly;
 * - tarball: its sha256;
 * - dir: the tree's content fingerprint (below). Never a path: two paths to one tree are one
 *   source, and one path whose tree changed (a link moved to another release) is another.
 *
 * Computed once per run, by the preparation step (build/prepare.ts), and passed along with what
 * it read (the directory's walk, the tarball's sha256) so no later stage reads it again.
 */
export interface IdentifiedSource {
  /** the source as the user named it (for messages) */
  given: SourceSpec;
  /** the same source with every local path resolved (build/source.ts resolveSource) */
  spec: SourceSpec;
  /** "tarball:sha256:…", "dir:tree2:…"; undefined for git (the commit names it) */
  identity: string | undefined;
  /** a directory's walk: its fingerprint, newest file and each file's digest */
  scan?: TreeScan;
  /** a tarball's sha256 hex */
  sha256?: string;
  /**
   * a tarball read in this run (its one pass: sha256 and index); absent when its sha256 came
   * from the record of an unchanged file (rememberedTarballDigest), so a cache hit reads nothing
   */
  tarball?: TarballIndex;
}

/**
 * The identity of a resolved source. The caller passes a directory already resolved to its real
 * path (adapters/source-tree.ts resolveSourceTree): a walk that starts at a link, or at a missing
 * directory, must never be fingerprinted as an empty tree.
 */
export async function identifySource(
  spec: SourceSpec,
  opts: ScanOptions & { given?: SourceSpec; scan?: TreeScan } = {},
): Promise<IdentifiedSource> {
  const given = opts.given ?? spec;
  switch (spec.kind) {
    case 'git':
      return { given, spec, identity: undefined };
    case 'tarball': {
      const file = path.resolve(spec.file);
      const identity = (sha256: string) => sourceContentText({ kind: 'tarball', sha256 });
      const remembered = opts.memoDir ? rememberedTarballDigest(opts.memoDir, file) : undefined;
      if (remembered) return { given, spec, identity: identity(remembered), sha256: remembered };
      const tarball = await readTarball(file, opts);
      return { given, spec, identity: identity(tarball.sha256), sha256: tarball.sha256, tarball };
    }
    case 'dir': {
      const scan = opts.scan ?? scanTree(spec.dir, opts);
      return {
        given,
        spec,
        identity: sourceContentText({ kind: 'dir', fingerprint: scan.fingerprint }),
        scan,
      };
    }
  }
}

/** The identity alone (identifySource). */
export async function sourceIdentity(
  src: SourceSpec,
  scan?: TreeScan,
  opts: ScanOptions = {},
): Promise<string | undefined> {
  return (await identifySource(src, { ...opts, scan })).identity;
}

/** Top-level names a build never reads (archive.ts leaves them out of the stream too). */
export const UNREAD_TOP_LEVEL = ['.git', '_output'] as const;

/** One walk of a tree: its content fingerprint, the newest regular file's mtime, each file's sha256. */
export interface TreeScan {
  /** "tree2:" + sha256 hex (see scanTree) */
  fingerprint: string;
  /** seconds, floored: the buildDate of a directory source */
  newestFile: number;
  /** relative path ("/" separated) → sha256 hex of the content, for every regular file */
  files: ReadonlyMap<string, string>;
  /** how many regular files had to be read (the rest came from the digest memo) */
  hashed: number;
}

export interface ScanOptions {
  /** a tarball's pass begins */
  onTarballRead?: (file: string) => void;
  /** a tarball's pass: bytes read of its size */
  onTarballProgress?: (bytes: number, total: number) => void;
  /**
   * A directory for the per-file digest memo (the cache dir): a file whose (device, inode,
   * size, mtime, ctime) are what they were when it was hashed is not read again. Absent: every
   * file is read.
   */
  memoDir?: string;
}

/** Bumped when what the fingerprint covers changes, so old fingerprints never match new ones. */
export const FINGERPRINT_SCHEME = 'tree2';

/**
 * The content fingerprint of a tree: sha256 over, for every entry but the unread top-level
 * ones, sorted by path: its type and path, and for a regular file its permission bits, size and
 * the sha256 of its bytes, for a link its target text; then the newest file's mtime (seconds),
 * because a directory's buildDate comes from it and so changes the binary. Other mtimes, owners
 * and where the tree lives do not count: a `cp -a` elsewhere is the same source.
 *
 * Reading all 22.7k files (213 MB) of the 1.20.2 tree costs ~0.6-0.8 s here; the digest memo
 * brings a repeat scan down to the walk and the stats (~0.2 s), so a cache hit stays fast.
 *
 * Refuses a tree with no regular file (an empty directory, a link to a missing one): that is
 * never a Kubernetes source, and its fingerprint would be the same for all of them.
 */
export function scanTree(root: string, opts: ScanOptions = {}): TreeScan {
  const started = Date.now() / 1000;
  const listing = listTree(root);
  // the whole listing as it was when every file in it was last hashed (each file's device,
  // inode, size, mtime and ctime, every link's target, every folder's times): nothing can
  // have changed, so the fingerprint is the one recorded then and no entry is looked at (nor
  // the per-file memo read, unless a miss asks for the digests)
  const listingDigest = sha256Hex(listing.raw);
  const known = opts.memoDir ? loadListingMemo(opts.memoDir, root) : undefined;
  if (opts.memoDir && known?.digest === listingDigest) {
    const memoDir = opts.memoDir;
    return withLazyFiles({ fingerprint: known.fingerprint, newestFile: known.newestFile, hashed: 0 }, () =>
      loadMemo(memoDir, root),
    );
  }
  const memo = opts.memoDir ? loadMemo(opts.memoDir, root) : {};
  const fresh: Memo = {};
  const files = new Map<string, string>();
  // "path NUL type NUL what it holds": sorted as text, that is by path (NUL sorts first)
  const lines: string[] = [];
  let newest = 0;
  let hashed = 0;
  let racy = false;
  const f = listing.fields();
  for (let i = 0; i + LISTED_FIELDS <= f.length; i += LISTED_FIELDS) {
    const type = f[i]!;
    const rel = f[i + 1]!;
    if (type === 'f') {
      const size = f[i + 2]!;
      const mtime = Number(f[i + 6]);
      const memoKey = `${rel}\0${f[i + 4]} ${f[i + 5]} ${size} ${f[i + 6]} ${f[i + 7]}`;
      // own string values only (every key holds a NUL, so none is an Object.prototype member)
      let digest = Object.hasOwn(memo, memoKey) ? memo[memoKey] : undefined;
      if (typeof digest !== 'string' || digest.length !== 64) {
        digest = hashFile(`${root}/${rel}`);
        hashed++;
      }
      // racy: a file changed within the timestamp granularity of its hashing could keep its
      // stamp; only stamps older than the scan are remembered
      if (Number(f[i + 7]) < started - 2 && mtime < started - 2) fresh[memoKey] = digest;
      else racy = true;
      files.set(rel, digest);
      if (mtime > newest) newest = mtime;
      lines.push(`${rel}\0f\0${f[i + 3]}\0${size}\0${digest}`);
    } else if (type === 'l') lines.push(`${rel}\0l\0${f[i + 8]}`);
    else lines.push(`${rel}\0${type === 'd' ? 'd' : 'o'}`);
  }
  if (files.size === 0) throw emptyTreeError(root);
  lines.sort();
  const newestFile = Math.floor(newest);
  const hash = crypto.createHash('sha256');
  for (const line of lines) hash.update(`${line}\n`);
  hash.update(`newest-file-time\0${newestFile}`);
  const fingerprint = `${FINGERPRINT_SCHEME}:${hash.digest('hex')}`;
  if (opts.memoDir) {
    if (hashed > 0) saveMemo(opts.memoDir, root, fresh);
    // the listing is remembered only when no file in it was racy (every digest is in the memo)
    if (!racy) saveListingMemo(opts.memoDir, root, { digest: listingDigest, fingerprint, newestFile });
  }
  return { fingerprint, newestFile, files, hashed };
}

/**
 * A scan taken whole from the listing memo; each file's digest comes from the per-file memo,
 * read only if asked for (a digest it lacks is read from the file by whoever needs it).
 */
function withLazyFiles(scan: Omit<TreeScan, 'files'>, loadFiles: () => Memo): TreeScan {
  let files: Map<string, string> | undefined;
  return Object.defineProperty(scan, 'files', {
    enumerable: true,
    get: () => {
      if (!files) {
        files = new Map();
        for (const [key, digest] of Object.entries(loadFiles()))
          files.set(key.slice(0, key.indexOf('\0')), digest);
      }
      return files;
    },
  }) as TreeScan;
}

/**
 * A tree listing: LISTED_FIELDS strings per entry (no path or link target holds a NUL): type
 * (f, d, l, or another find letter), path, size, permission bits (octal), device, inode, mtime,
 * ctime (seconds), link target. The device, inode, size and times are the stamp the digest memo
 * checks: they change whenever the file may have.
 */
const LISTED_FIELDS = 9;
const FIND_FORMAT = '%y\\0%P\\0%s\\0%m\\0%D\\0%i\\0%T@\\0%C@\\0%l\\0';

/**
 * Every entry under `root` but the unread top-level names. GNU find lists the 22.7k entries of
 * a Kubernetes tree several times faster than a walk in JS; where find is missing, cannot
 * -printf (busybox) or fails (an unreadable directory), the walk gives the same listing (times
 * in another notation: the memo then misses, never errs) and names what it cannot read.
 */
function listTree(root: string): { raw: string; fields: () => string[] } {
  let out: string;
  try {
    const prune = UNREAD_TOP_LEVEL.flatMap((n, i) => [...(i ? ['-o'] : []), '-path', `./${n}`]);
    out = execFileSync(
      'find',
      ['.', '-mindepth', '1', '(', ...prune, ')', '-prune', '-o', '-printf', FIND_FORMAT],
      {
        cwd: root,
        maxBuffer: 512 * 1024 * 1024,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
  } catch {
    const fields = walkTree(root);
    return { raw: fields.join('\0'), fields: () => fields };
  }
  // split only when the entries are looked at: a repeat of a known listing needs its digest alone
  return { raw: out, fields: () => out.split('\0') };
}

function walkTree(root: string): string[] {
  const fields: string[] = [];
  const walk = (rel: string) => {
    const abs = rel ? `${root}/${rel}` : root;
    let names: fs.Dirent[];
    try {
      names = fs.readdirSync(abs, { withFileTypes: true });
    } catch (err) {
      throw listingError(root, abs, err);
    }
    for (const e of names) {
      if (rel === '' && (UNREAD_TOP_LEVEL as readonly string[]).includes(e.name)) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      let st: fs.BigIntStats;
      try {
        st = fs.lstatSync(`${root}/${r}`, { bigint: true });
      } catch (err) {
        throw listingError(root, `${root}/${r}`, err);
      }
      const type = st.isFile() ? 'f' : st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : 'o';
      const seconds = (ns: bigint) =>
        `${ns / 1_000_000_000n}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}`;
      fields.push(
        type,
        r,
        String(st.size),
        (Number(st.mode) & 0o7777).toString(8),
        String(st.dev),
        String(st.ino),
        seconds(st.mtimeNs),
        seconds(st.ctimeNs),
        type === 'l' ? fs.readlinkSync(`${root}/${r}`) : '',
      );
      if (type === 'd') walk(r);
    }
  };
  walk('');
  return fields;
}

/** The fingerprint alone. */
export function treeFingerprint(root: string, opts: ScanOptions = {}): string {
  return scanTree(root, opts).fingerprint;
}

/** sha256 of a source file, its OS error named with the path. */
function hashFile(file: string): string {
  try {
    return sha256FileSync(file);
  } catch (err) {
    throw sourceReadError(file, err);
  }
}

function codeOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? messageOf(err);
}

function listingError(root: string, at: string, err: unknown): KfError {
  if (at === root) return emptyTreeError(root, ` (listing it failed: ${codeOf(err)})`);
  return new KfError(
    `cannot list ${JSON.stringify(at)} in the source tree: ${codeOf(err)}`,
    'check the permissions of the source tree; nothing was built',
  );
}

// The digest memo: <memoDir>/source-digests/<sha256(root)>.json. Only ever a shortcut: an entry
// is used when the file's stamp is unchanged, so a wrong or foreign memo costs reads, never a
// wrong identity. Unreadable, oversized or malformed memos are ignored; writes are atomic and
// best effort (a read-only cache dir still builds).

/** "path NUL stamp" → sha256 hex */
type Memo = Record<string, string>;
/** The whole listing's digest when every file in it was in the memo, and what it fingerprinted to. */
interface ListingMemo {
  digest: string;
  fingerprint: string;
  newestFile: number;
}
const MEMO_VERSION = 2;
const LISTING_MEMO_VERSION = 1;
const MEMO_MAX_BYTES = 64 << 20;

function memoFile(memoDir: string, root: string): string {
  return path.join(memoDir, 'source-digests', `${sha256Hex(root).slice(0, 32)}.json`);
}

function loadMemo(memoDir: string, root: string): Memo {
  try {
    const file = memoFile(memoDir, root);
    if (fs.statSync(file).size > MEMO_MAX_BYTES) return {};
    const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as {
      version?: unknown;
      root?: unknown;
      files?: unknown;
    };
    if (
      doc.version !== MEMO_VERSION ||
      doc.root !== root ||
      typeof doc.files !== 'object' ||
      doc.files === null
    )
      return {};
    return doc.files as Memo;
  } catch {
    return {}; // no memo yet, or not one we can use: every file is read
  }
}

function saveMemo(memoDir: string, root: string, files: Memo): void {
  writeMemoFile(memoFile(memoDir, root), { version: MEMO_VERSION, root, files });
}

/** Beside the per-file memo, small: read first, so a hit of an unchanged tree parses nothing big. */
function listingMemoFile(memoDir: string, root: string): string {
  return memoFile(memoDir, root).replace(/\.json$/, '.listing.json');
}

function loadListingMemo(memoDir: string, root: string): ListingMemo | undefined {
  try {
    const file = listingMemoFile(memoDir, root);
    if (fs.statSync(file).size > 4096) return undefined;
    const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<ListingMemo> & {
      version?: unknown;
      root?: unknown;
    };
    if (doc.version !== LISTING_MEMO_VERSION || doc.root !== root) return undefined;
    if (
      typeof doc.digest !== 'string' ||
      typeof doc.fingerprint !== 'string' ||
      !doc.fingerprint.startsWith(`${FINGERPRINT_SCHEME}:`) ||
      typeof doc.newestFile !== 'number'
    )
      return undefined;
    return { digest: doc.digest, fingerprint: doc.fingerprint, newestFile: doc.newestFile };
  } catch {
    return undefined;
  }
}

function saveListingMemo(memoDir: string, root: string, listing: ListingMemo): void {
  writeMemoFile(listingMemoFile(memoDir, root), { version: LISTING_MEMO_VERSION, root, ...listing });
}

/** Atomic and best effort: a read-only cache dir still builds. */
function writeMemoFile(file: string, doc: object): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(tmp, JSON.stringify(doc), { mode: 0o600 });
    fs.renameSync(tmp, file);
  } catch {
    fs.rmSync(tmp, { force: true });
  }
}

/**
 * What a source volume is filled with (core/source-volume.ts filledDigest): every selected file
 * with its permission bits and content digest (from `scan` when it covered the file, else the
 * tree's) and every selected link with its target. `root`: a directory, or any TreeFs.
 */
export function selectionEntries(
  root: string | TreeFs,
  selection: { files: readonly string[]; symlinks: readonly string[] },
  scan?: TreeScan,
): FilledEntry[] {
  const tree = typeof root === 'string' ? diskTree(fs.realpathSync(root)) : root;
  const entries: FilledEntry[] = [];
  for (const f of selection.files) {
    const real = realRel(tree, f);
    const st = real === undefined ? undefined : tree.lstat(real);
    if (real === undefined || st?.type !== 'file')
      throw new KfError(`cannot read ${tree.describe(f)}: ENOENT`, 'check the source tree');
    entries.push({ path: f, kind: 'file', mode: st.mode, sha256: scan?.files.get(f) ?? tree.digest(real) });
  }
  for (const l of selection.symlinks) entries.push({ path: l, kind: 'symlink', target: tree.readlink(l) });
  return entries;
}

// The tarball record: <memoDir>/source-digests/tarball-<sha256(path)>.json holds the sha256 of
// the tarball at that path with the stamp (device, inode, size, mtime, ctime, to the ns) it had.
// A later run whose file has the same stamp takes the sha256 from it: a cache hit then reads
// none of the tarball. On a miss the build reads it anyway, and its pass checks the recorded
// sha256 (build/source.ts): a file changed under an unchanged stamp is refused, never built.

const TARBALL_RECORD_VERSION = 1;

function tarballRecordFile(memoDir: string, file: string): string {
  return path.join(memoDir, 'source-digests', `tarball-${sha256Hex(file).slice(0, 32)}.json`);
}

function stampOf(file: string): string | undefined {
  try {
    const st = fs.statSync(file, { bigint: true });
    return `${st.dev} ${st.ino} ${st.size} ${st.mtimeNs} ${st.ctimeNs}`;
  } catch {
    return undefined;
  }
}

/** The recorded sha256 of a tarball whose stamp is unchanged, else undefined. */
export function rememberedTarballDigest(memoDir: string, file: string): string | undefined {
  try {
    const record = tarballRecordFile(memoDir, file);
    if (fs.statSync(record).size > 4096) return undefined;
    const doc = JSON.parse(fs.readFileSync(record, 'utf8')) as Record<string, unknown>;
    const stamp = stampOf(file);
    if (
      doc.version !== TARBALL_RECORD_VERSION ||
      doc.file !== file ||
      stamp === undefined ||
      doc.stamp !== stamp
    )
      return undefined;
    return typeof doc.sha256 === 'string' && /^[0-9a-f]{64}$/.test(doc.sha256) ? doc.sha256 : undefined;
  } catch {
    return undefined; // no record, or not one we can use: the tarball is read
  }
}

/** Drops a tarball's record (its content no longer matched it). */
export function forgetTarballDigest(memoDir: string, file: string): void {
  fs.rmSync(tarballRecordFile(memoDir, file), { force: true });
}

/**
 * One pass over a tarball (adapters/tarball-tree.ts indexTarball), and its sha256 recorded
 * under the memo dir when the file's stamp did not move during the pass and is older than it
 * (racy: a change within the timestamp granularity could keep the stamp).
 */
export async function readTarball(file: string, opts: ScanOptions = {}): Promise<TarballIndex> {
  const started = Date.now() / 1000;
  const before = stampOf(file);
  opts.onTarballRead?.(file);
  // the tar reader is loaded only when a tarball is read: a cache hit from its record never is
  const { indexTarball } = await import('../../adapters/tarball-tree.js');
  const tarball = await indexTarball(file, { onProgress: opts.onTarballProgress });
  if (opts.memoDir && before !== undefined && stampOf(file) === before) {
    const [, , , mtimeNs, ctimeNs] = before.split(' ').map(Number);
    if (mtimeNs! / 1e9 < started - 2 && ctimeNs! / 1e9 < started - 2) {
      const record = tarballRecordFile(opts.memoDir, file);
      const tmp = `${record}.${process.pid}.tmp`;
      try {
        fs.mkdirSync(path.dirname(record), { recursive: true });
        const doc = { version: TARBALL_RECORD_VERSION, file, stamp: before, sha256: tarball.sha256 };
        fs.writeFileSync(tmp, JSON.stringify(doc), { mode: 0o600 });
        fs.renameSync(tmp, record);
      } catch {
        fs.rmSync(tmp, { force: true }); // best effort: a read-only cache dir still builds
      }
    }
  }
  return tarball;
}
