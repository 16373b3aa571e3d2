import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { sourceContentText, type FilledEntry } from '../core/source-volume.js';
import { emptyTreeError } from '../adapters/source-tree.js';
import { KfError, messageOf } from '../errors.js';
import { sha256File } from './store.js';

/**
 * What identifies a source for the cache key, computed WITHOUT preparing it (no unpack, no
 * checkout), so a hit is found before any slow step and before any container:
 *
 * - git: undefined: the commit in the plan already names the tree exactly;
 * - tarball: its sha256;
 * - dir: the tree's content fingerprint (below). Never a path: two paths to one tree are one
 *   source, and one path whose tree changed (a link moved to another release) is another.
 *
 * The caller passes a directory already resolved to its real path (adapters/source-tree.ts
 * resolveSourceTree): a walk that starts at a link, or at a missing directory, must never be
 * fingerprinted as an empty tree.
 */
export type SourceRef =
  | { kind: 'dir'; dir: string }
  | { kind: 'tarball'; file: string }
  | { kind: 'git'; repo: string; commit: string };

export async function sourceIdentity(src: SourceRef, scan?: TreeScan, opts: ScanOptions = {}): Promise<string | undefined> {
  switch (src.kind) {
    case 'git':
      return undefined;
    case 'tarball':
      return sourceContentText({ kind: 'tarball', sha256: await sha256File(path.resolve(src.file)) });
    case 'dir':
      return sourceContentText({ kind: 'dir', fingerprint: (scan ?? scanTree(src.dir, opts)).fingerprint });
  }
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
  const started = Date.now();
  const memo = opts.memoDir ? loadMemo(opts.memoDir, root) : new Map<string, MemoEntry>();
  const fresh = new Map<string, MemoEntry>();
  const files = new Map<string, string>();
  const lines: string[] = [];
  let newest = 0;
  let hashed = 0;
  const walk = (rel: string) => {
    const abs = rel ? path.join(root, rel) : root;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(abs, { withFileTypes: true });
    } catch (err) {
      throw listingError(root, abs, err);
    }
    for (const e of entries) {
      if (rel === '' && (UNREAD_TOP_LEVEL as readonly string[]).includes(e.name)) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      const p = path.join(root, r);
      let st: fs.Stats;
      try {
        st = fs.lstatSync(p);
      } catch (err) {
        throw listingError(root, p, err);
      }
      if (st.isDirectory()) {
        lines.push(JSON.stringify(['d', r]));
        walk(r);
      } else if (st.isSymbolicLink()) {
        lines.push(JSON.stringify(['l', r, fs.readlinkSync(p)]));
      } else if (st.isFile()) {
        const stamp: Stamp = [st.dev, st.ino, st.size, st.mtimeMs, st.ctimeMs];
        const known = memo.get(r);
        let digest: string;
        if (known && sameStamp(known.stamp, stamp)) digest = known.sha256;
        else {
          digest = hashFile(p);
          hashed++;
        }
        // racy: a file changed within the timestamp granularity of its hashing could keep its
        // stamp; only stamps older than the scan are remembered
        if (st.ctimeMs < started - 2000 && st.mtimeMs < started - 2000) fresh.set(r, { stamp, sha256: digest });
        files.set(r, digest);
        if (st.mtimeMs > newest) newest = st.mtimeMs;
        lines.push(JSON.stringify(['f', r, (st.mode & 0o777).toString(8), st.size, digest]));
      } else {
        lines.push(JSON.stringify(['o', r]));
      }
    }
  };
  walk('');
  if (files.size === 0) throw emptyTreeError(root);
  lines.sort();
  const newestFile = Math.floor(newest / 1000);
  lines.push(JSON.stringify(['newest-file-time', newestFile]));
  const digest = crypto.createHash('sha256').update(lines.join('\n')).digest('hex');
  if (opts.memoDir && hashed > 0) saveMemo(opts.memoDir, root, fresh);
  return { fingerprint: `${FINGERPRINT_SCHEME}:${digest}`, newestFile, files, hashed };
}

/** The fingerprint alone. */
export function treeFingerprint(root: string, opts: ScanOptions = {}): string {
  return scanTree(root, opts).fingerprint;
}

/**
 * The newest modification time (seconds) of the regular files under `root`, the unread
 * top-level names left out: the buildDate of an unpacked tarball (tar keeps each entry's
 * mtime). 0 when there is none.
 */
export function newestFileTime(root: string): number {
  let newest = 0;
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(rel ? path.join(root, rel) : root, { withFileTypes: true })) {
      if (rel === '' && (UNREAD_TOP_LEVEL as readonly string[]).includes(e.name)) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else if (e.isFile()) newest = Math.max(newest, fs.lstatSync(path.join(root, r)).mtimeMs);
    }
  };
  walk('');
  return Math.floor(newest / 1000);
}

/** sha256 of a file's bytes, read in 1 MiB pieces (memory bounded whatever its size). */
function hashFile(file: string): string {
  const hash = crypto.createHash('sha256');
  const buf = Buffer.allocUnsafe(1 << 20);
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    throw new KfError(`cannot read ${file}: ${codeOf(err)}`, 'check the permissions of the source tree');
  }
  try {
    let n: number;
    while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) hash.update(buf.subarray(0, n));
  } catch (err) {
    throw new KfError(`cannot read ${file}: ${codeOf(err)}`, 'check the source tree');
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
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

type Stamp = [dev: number, ino: number, size: number, mtimeMs: number, ctimeMs: number];
interface MemoEntry {
  stamp: Stamp;
  sha256: string;
}
const MEMO_VERSION = 1;
const MEMO_MAX_BYTES = 64 << 20;

function sameStamp(a: Stamp, b: Stamp): boolean {
  return a.length === 5 && a.every((v, i) => v === b[i]);
}

function memoFile(memoDir: string, root: string): string {
  return path.join(memoDir, 'source-digests', `${crypto.createHash('sha256').update(root).digest('hex').slice(0, 32)}.json`);
}

function loadMemo(memoDir: string, root: string): Map<string, MemoEntry> {
  const memo = new Map<string, MemoEntry>();
  try {
    const file = memoFile(memoDir, root);
    if (fs.statSync(file).size > MEMO_MAX_BYTES) return memo;
    const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as { version?: unknown; root?: unknown; files?: unknown };
    if (doc.version !== MEMO_VERSION || doc.root !== root || typeof doc.files !== 'object' || doc.files === null) return memo;
    for (const [rel, v] of Object.entries(doc.files as Record<string, unknown>)) {
      if (!Array.isArray(v) || v.length !== 6 || typeof v[5] !== 'string' || !/^[0-9a-f]{64}$/.test(v[5])) continue;
      const stamp = v.slice(0, 5) as unknown[];
      if (!stamp.every((n) => typeof n === 'number')) continue;
      memo.set(rel, { stamp: stamp as Stamp, sha256: v[5] });
    }
  } catch {
    /* no memo yet, or not one we can use: every file is read */
  }
  return memo;
}

function saveMemo(memoDir: string, root: string, entries: Map<string, MemoEntry>): void {
  const file = memoFile(memoDir, root);
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const files: Record<string, unknown> = {};
    for (const [rel, e] of entries) files[rel] = [...e.stamp, e.sha256];
    fs.writeFileSync(tmp, JSON.stringify({ version: MEMO_VERSION, root, files }), { mode: 0o600 });
    fs.renameSync(tmp, file);
  } catch {
    fs.rmSync(tmp, { force: true });
  }
}

/**
 * What a source volume is filled with (core/source-volume.ts filledEntries): every selected file
 * with its permission bits and content digest (from `scan` when it covered the file, else read
 * now) and every selected link with its target.
 */
export function selectionEntries(
  root: string,
  selection: { files: readonly string[]; symlinks: readonly string[] },
  scan?: TreeScan,
): FilledEntry[] {
  const entries: FilledEntry[] = [];
  for (const f of selection.files) {
    const abs = path.join(root, f);
    let st: fs.Stats;
    try {
      st = fs.statSync(abs);
    } catch (err) {
      throw new KfError(`cannot read ${abs}: ${codeOf(err)}`, 'check the source tree');
    }
    entries.push({ path: f, kind: 'file', mode: st.mode, sha256: scan?.files.get(f) ?? hashFile(abs) });
  }
  for (const l of selection.symlinks) entries.push({ path: l, kind: 'symlink', target: fs.readlinkSync(path.join(root, l)) });
  return entries;
}
