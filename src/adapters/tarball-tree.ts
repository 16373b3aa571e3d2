import crypto from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { Readable, Transform, Writable } from 'node:stream';
import zlib from 'node:zlib';
import tarStream from 'tar-stream';
import { KfError, messageOf } from '../core/errors.js';
import { scanGoHeader, type GoFileHeader } from '../core/go-imports.js';
import { PATCH_FILES } from '../core/patch-targets.js';
import { TREE_GO_VERSION_FILES } from '../core/tree-go-version.js';
import { leadingDirs } from './archive.js';
import { onInterrupt } from './interrupt.js';
import { INIT_SH } from './source-tree.js';
import { type TreeDirent, type TreeFs, type TreeStat } from './tree-fs.js';

/**
 * A source tarball read as a stream, never unpacked: one pass (indexTarball) gives its sha256,
 * every entry's type, mode, size, mtime and digest, the import header of every .go file and
 * the text of the few files the plan and the patch read; it is then a TreeFs like a directory.
 * A second pass (packTarball) streams exactly the entries a build needs into the container.
 * Unpacking the 22.7k files of the 1.20.2 tarball cost 13 s of mostly system time on these
 * disks; a pass costs the gunzip and the hashes.
 *
 * The tarball is untrusted: a path that leaves the tree (absolute, ".."), a link whose target
 * does, a hard link, a device, a path given twice, more entries or bytes than any Kubernetes
 * tree has are refused before anything is built; modes are masked (no setuid, nothing group- or
 * world-writable); memory is bounded (only headers and a few small files are kept).
 */

/** Far above Kubernetes' own (1.20.2: 27.6k entries, 233 MB unpacked; 1.35 about twice that). */
export const TARBALL_LIMITS = {
  entries: 400_000,
  bytes: 8 * 2 ** 30,
  pathLength: 4096,
  goFileScan: 16 << 20,
  /**
   * Unpacked bytes allowed after the last entry's data: the end-of-archive blocks and tar's own
   * record padding (10 KiB by default, 1 MiB with -b 2048), and room for one long pax/GNU header
   * (tar-stream takes up to 1 MiB) before the next entry shows. Anything longer is refused
   * rather than skipped: the source's digest covers the whole file, so it would have to be read
   * to its end, and a gzip can unpack gigabytes of padding from a few megabytes.
   */
  trailer: 4 << 20,
};
/** The bound on a kept text file (a patch target, go.mod, hack/lib/init.sh). */
const MAX_KEPT_TEXT = 16 << 20;

interface IndexedEntry extends TreeStat {
  linkname?: string;
  sha256?: string;
  header?: GoFileHeader;
}

export interface TarballIndex extends TreeFs {
  file: string;
  /** sha256 hex of the tarball's bytes */
  sha256: string;
  /** seconds: the newest regular file's mtime (the buildDate of a tarball source) */
  newestFile: number;
  /** every regular file, link and directory by relative path */
  entries: ReadonlyMap<string, IndexedEntry>;
}

/** What the patch, the plan and the closure read as text (everything else: headers only). */
function keepsText(rel: string): boolean {
  if ((PATCH_FILES as readonly string[]).includes(rel)) return true;
  if ((TREE_GO_VERSION_FILES as readonly string[]).includes(rel)) return true;
  if (rel === INIT_SH) return true;
  const base = rel.slice(rel.lastIndexOf('/') + 1);
  // go.mod/go.work: the main modules; a vendored client-go cert.go: the patch target `go build` compiles
  return base === 'go.mod' || base === 'go.work' || rel.endsWith('/util/cert/cert.go');
}

function isGzip(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(2);
    fs.readSync(fd, b, 0, 2, 0);
    return b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    fs.closeSync(fd);
  }
}

/** Thrown by the guard of entriesOf: no entry, or too much after the last one. */
class NotTar extends Error {}

/**
 * The tarball's entries as they stream by; `onBytes` sees the raw (compressed) bytes. The
 * unpacked stream is counted against the entries' own sizes: tar-stream reads zero blocks (the
 * end of the archive, padding) silently to the end, so unpacked data that no entry accounts for
 * stops the read after TARBALL_LIMITS.trailer bytes, whatever the file unpacks to.
 */
function entriesOf(file: string, onBytes?: (chunk: Buffer) => void) {
  let gz: boolean;
  try {
    gz = isGzip(file);
  } catch (err) {
    throw new KfError(
      `cannot read source tarball ${file}: ${messageOf(err)}`,
      'pass --source-tarball an existing .tar or .tar.gz file',
    );
  }
  // the default 64 KiB chunks: 1 MiB ones raised the peak RSS by ~35 MB for no speed
  const input = fs.createReadStream(file);
  if (onBytes) input.on('data', (c) => onBytes(c as Buffer));
  const extract = tarStream.extract();
  const state = { fed: 0, accounted: 0, entries: 0 };
  const what = gz ? 'is gzip but not a tar archive' : 'is not a tar archive';
  const guard = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      state.fed += chunk.length;
      if (state.fed - state.accounted <= TARBALL_LIMITS.trailer) return cb(null, chunk);
      cb(
        new NotTar(
          state.entries === 0
            ? `no tar entry in its first ${TARBALL_LIMITS.trailer >> 20} MiB`
            : `it has more than ${TARBALL_LIMITS.trailer >> 20} MiB of data after the end of its tar archive`,
        ),
      );
    },
  });
  const source: Readable = gz ? input.pipe(zlib.createGunzip()) : input;
  input.on('error', (err) => extract.destroy(err));
  source.on('error', (err) => extract.destroy(err));
  guard.on('error', (err) => extract.destroy(err));
  source.pipe(guard).pipe(extract as unknown as Writable);
  async function* entries() {
    try {
      for await (const entry of extract) {
        const h = entry.header;
        state.entries++;
        // what this entry takes (tar-stream reads no data for a folder); the count so far
        // already includes its header, and whatever is buffered ahead of it (counted leniently)
        const size = h.type === 'directory' ? 0 : Math.ceil((h.size ?? 0) / 512) * 512;
        state.accounted = Math.max(state.accounted, state.fed) + size;
        yield entry;
      }
    } catch (err) {
      const notTar = (why: string) =>
        new KfError(
          `source tarball ${file} ${what} (${why})`,
          'pass a .tar or .tar.gz of a Kubernetes source tree (one top folder, as released); nothing was built',
        );
      if (err instanceof NotTar) throw state.entries === 0 ? notTar(err.message) : refused(file, err.message);
      // tar-stream's "Invalid tar header" before any entry: not a tar at all
      if (state.entries === 0 && /invalid tar header/i.test(messageOf(err)))
        throw notTar('its first block is not a tar header');
      throw err;
    }
  }
  return { extract: entries(), close: () => input.destroy() };
}

/** Printable, for messages: control characters escaped. */
const shown = (text: string) => JSON.stringify(text);

/** A read that failed: our own refusal as it is, anything else (gzip, tar, the OS) named. */
function unreadable(file: string, err: unknown): KfError {
  if (err instanceof KfError) return err;
  return new KfError(
    `cannot read source tarball ${file}: ${messageOf(err)}`,
    'pass a .tar or .tar.gz of a Kubernetes source tree (one top folder), or unpack it and use --source-dir',
  );
}

function refused(file: string, why: string): KfError {
  return new KfError(
    `source tarball ${file} is refused: ${why}`,
    'pass a .tar or .tar.gz of a Kubernetes source tree (one top folder, as released), or unpack it and use --source-dir; nothing was built',
  );
}

/** The entry's path below the top folder ("" for the folder itself), as `tar --strip-components=1` gives it. */
function strippedPath(file: string, name: string): string | undefined {
  if (name.length > TARBALL_LIMITS.pathLength)
    throw refused(file, `an entry's name is ${name.length} characters long`);
  if (name.startsWith('/')) throw refused(file, `entry ${shown(name)} is an absolute path`);
  const parts = name
    .replace(/^(\.\/)+/, '')
    .split('/')
    .filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw refused(file, `entry ${shown(name)} leaves the tree ("..")`);
  if (parts.length === 0) return undefined;
  return parts.slice(1).join('/');
}

/** Whether a link's target, read from the link's directory, stays inside the tree (lexically). */
function linkStaysInside(rel: string, target: string): boolean {
  if (target.startsWith('/') || target === '') return false;
  const joined = path.posix.normalize(path.posix.join(path.posix.dirname(rel), target));
  return joined !== '..' && !joined.startsWith('../');
}

/** Any //go:embed counts (more files shipped, never fewer). */
const EMBED = Buffer.from('//go:embed');
/** How much of a .go file is held before checking whether its imports are complete. */
const GO_PREFIX = 8 << 10;

/**
 * Whether a top-level declaration other than import has begun after the last import: Go puts
 * every import before it. A wrong "yes" (a comment line starting with "func" between import
 * blocks) could only lose packages, which `go build` reports as missing, never a wrong binary.
 */
function importsComplete(head: Buffer): boolean {
  const text = head.toString('latin1');
  let from = 0;
  for (const m of text.matchAll(/^import\b/gm)) from = m.index;
  return /^(func|type|var|const)\b/m.test(text.slice(from));
}

const maskFile = (mode: number) => mode & 0o755;
const maskDir = (mode: number) => (mode & 0o755) | 0o700;

/**
 * One streaming pass over a source tarball: its sha256 and its index (TarballIndex). Memory
 * holds the headers, the digests and the kept texts, never the tree.
 */
export async function indexTarball(
  file: string,
  opts: { onProgress?: (bytes: number, total: number) => void } = {},
): Promise<TarballIndex> {
  const total = fs.statSync(file).size;
  const hash = crypto.createHash('sha256');
  let read = 0;
  const { extract, close } = entriesOf(file, (chunk) => {
    hash.update(chunk);
    read += chunk.length;
    opts.onProgress?.(read, total);
  });
  // Ctrl-C during the pass: nothing was written anywhere, the read just stops
  const unregister = onInterrupt({
    doing: `stopping the read of source tarball ${file}`,
    next: 'run the command again; nothing was written',
    run: () => {
      close();
    },
  });
  const entries = new Map<string, IndexedEntry>();
  const texts = new Map<string, string>();
  const interned = new Map<string, string>();
  let count = 0;
  let bytes = 0;
  let newest = 0;
  try {
    for await (const entry of extract) {
      const h = entry.header;
      const rel = strippedPath(file, h.name);
      if (++count > TARBALL_LIMITS.entries)
        throw refused(file, `it has more than ${TARBALL_LIMITS.entries} entries`);
      const type = h.type === 'contiguous-file' ? 'file' : h.type;
      if (rel === undefined || (rel === '' && type === 'directory')) {
        entry.resume();
        continue;
      }
      if (rel === '') throw refused(file, `its top entry ${shown(h.name)} is not a folder`);
      const mtime = (h.mtime?.getTime() ?? 0) / 1000;
      const before = entries.get(rel);
      if (before && (type !== 'directory' || before.type !== 'directory'))
        throw refused(file, `${shown(rel)} appears twice`);
      if (type === 'directory') {
        entries.set(rel, { type: 'directory', mode: maskDir(h.mode ?? 0o755), size: 0, mtime });
        entry.resume();
        continue;
      }
      if (type === 'symlink') {
        const target = h.linkname ?? '';
        if (!linkStaysInside(rel, target))
          throw refused(file, `link ${shown(rel)} points outside the tree (${shown(target)})`);
        entries.set(rel, { type: 'symlink', mode: 0o777, size: 0, mtime, linkname: target });
        entry.resume();
        continue;
      }
      if (type === 'link')
        throw refused(file, `${shown(rel)} is a hard link (to ${shown(h.linkname ?? '')})`);
      if (type !== 'file')
        throw refused(file, `${shown(rel)} is a ${type ?? 'special file'}, not a file, link or folder`);
      const size = h.size ?? 0;
      bytes += size;
      if (bytes > TARBALL_LIMITS.bytes)
        throw refused(file, `it unpacks to more than ${TARBALL_LIMITS.bytes / 2 ** 30} GiB`);
      const fileHash = crypto.createHash('sha256');
      const isGo = rel.endsWith('.go') && !rel.endsWith('_test.go');
      const keep = keepsText(rel) && size <= MAX_KEPT_TEXT;
      // a .go file is held only until its imports are complete (Go puts them before any other
      // declaration); the rest streams through the hash and a search for //go:embed
      const chunks: Buffer[] = [];
      let held = 0;
      let holding = isGo || keep;
      let embeds = false;
      let tail: Buffer = Buffer.alloc(0);
      for await (const chunk of entry as AsyncIterable<Buffer>) {
        fileHash.update(chunk);
        if (isGo && !embeds) {
          // the chunk itself, and the few bytes across its boundary with the one before
          embeds =
            chunk.includes(EMBED) ||
            (tail.length > 0 && Buffer.concat([tail, chunk.subarray(0, EMBED.length - 1)]).includes(EMBED));
          tail = chunk.subarray(Math.max(0, chunk.length - (EMBED.length - 1)));
        }
        if (holding) {
          chunks.push(chunk);
          held += chunk.length;
          if (held >= TARBALL_LIMITS.goFileScan) holding = false;
          else if (!keep && held >= GO_PREFIX && importsComplete(Buffer.concat(chunks))) holding = false;
        }
      }
      const indexed: IndexedEntry = {
        type: 'file',
        mode: maskFile(h.mode ?? 0o644),
        size,
        mtime,
        sha256: fileHash.digest('hex'),
      };
      if (isGo || keep) {
        const text = Buffer.concat(chunks).toString('utf8');
        if (keep) texts.set(rel, text);
        if (isGo) {
          const header = scanGoHeader(text);
          // a header cut short by the bound: its embeds unknown, so the package is taken whole
          const cutShort = held >= TARBALL_LIMITS.goFileScan && size > held;
          // the same import paths recur in thousands of files: one string each
          const imports = header.imports.map((i) => interned.get(i) ?? (interned.set(i, i), i));
          indexed.header = { imports, embeds: embeds || header.embeds || cutShort };
        }
      }
      entries.set(rel, indexed);
      if (mtime > newest) newest = mtime;
    }
  } catch (err) {
    close();
    throw unreadable(file, err);
  } finally {
    unregister();
  }
  return tarballTree(file, hash.digest('hex'), entries, texts, Math.floor(newest));
}

function tarballTree(
  file: string,
  sha256: string,
  entries: Map<string, IndexedEntry>,
  texts: Map<string, string>,
  newestFile: number,
): TarballIndex {
  // parents a tarball lists no entry for are folders all the same (tar creates them)
  const children = new Map<string, TreeDirent[]>([['', []]]);
  const addChild = (rel: string, type: TreeDirent['type']) => {
    const slash = rel.lastIndexOf('/');
    const parent = slash < 0 ? '' : rel.slice(0, slash);
    let list = children.get(parent);
    if (!list) {
      const existing = entries.get(parent);
      if (existing && existing.type !== 'directory')
        throw refused(file, `${shown(parent)} is a ${existing.type} and holds ${shown(rel)}`);
      if (!existing) entries.set(parent, { type: 'directory', mode: 0o755, size: 0, mtime: 0 });
      children.set(parent, (list = []));
      // a parent the tarball lists is added under its own parent when the loop reaches it
      if (!existing && parent !== '') addChild(parent, 'directory');
    }
    list.push({ name: rel.slice(slash + 1), type });
  };
  for (const [rel, e] of [...entries]) addChild(rel, e.type);
  const entryAt = (rel: string) => entries.get(rel);
  const notRead = (rel: string) =>
    new Error(`${rel} was not kept when ${file} was read (tarball-tree.ts keepsText)`);
  return {
    file,
    sha256,
    newestFile,
    entries,
    describe: (rel) => `${file}: ${rel || '(top folder)'}`,
    lstat(rel) {
      if (rel === '') return { type: 'directory', mode: 0o755, size: 0, mtime: 0 };
      const e = entryAt(rel);
      return e && { type: e.type, mode: e.mode, size: e.size, mtime: e.mtime };
    },
    readlink(rel) {
      const e = entryAt(rel);
      if (e?.type !== 'symlink') throw new Error(`${rel} is not a link in ${file}`);
      return e.linkname!;
    },
    readdir: (rel) => children.get(rel) ?? [],
    readText(rel) {
      const e = entryAt(rel);
      if (e?.type !== 'file') return undefined;
      const text = texts.get(rel);
      if (text === undefined) throw notRead(rel);
      return text;
    },
    goHeader(rel) {
      const header = entryAt(rel)?.header;
      if (!header) throw notRead(rel);
      return header;
    },
    digest(rel) {
      const digest = entryAt(rel)?.sha256;
      if (!digest) throw notRead(rel);
      return digest;
    },
  };
}

export interface TarballPackOptions {
  /** path prefix for every entry (no leading "/"), e.g. "go/src/k8s.io/kubernetes" */
  prefix?: string;
  /** the files and links to stream; absent: all of them but `exclude`d top-level names */
  selection?: { files: readonly string[]; symlinks: readonly string[] };
  /** top-level names left out of a whole-tree stream, e.g. [".git"] */
  exclude?: readonly string[];
  /** file contents replaced in the stream (the patch), by relative path */
  overrides?: ReadonlyMap<string, string | Buffer>;
  /** empty directories to add (with their parents), e.g. ["tmp/out"] */
  extraDirs?: readonly string[];
}

/**
 * The second pass: a tar stream of the tarball's entries the build needs, root-owned, modes
 * masked, under `prefix`, the overrides in place of their files. Folders and links come first
 * (from the index), then the files as the tarball streams by. A file whose bytes differ from
 * what the first pass saw fails the stream: the tarball changed between the passes.
 */
export function packTarball(index: TarballIndex, opts: TarballPackOptions = {}): Readable {
  const prefix = (opts.prefix ?? '').replace(/^\/+|\/+$/g, '');
  const name = (rel: string) => (prefix ? (rel ? `${prefix}/${rel}` : prefix) : rel);
  const exclude = new Set(opts.exclude ?? []);
  const topOf = (rel: string) => rel.split('/')[0]!;
  const wanted = new Set<string>();
  const links: string[] = [];
  if (opts.selection) {
    for (const f of opts.selection.files) wanted.add(f);
    links.push(...opts.selection.symlinks);
  } else {
    for (const [rel, e] of index.entries) {
      if (exclude.has(topOf(rel))) continue;
      if (e.type === 'file') wanted.add(rel);
      else if (e.type === 'symlink') links.push(rel);
    }
  }
  // the prefix and the extra directories with their parents, then every folder the entries need
  const lead = leadingDirs(prefix, opts.extraDirs);
  if (prefix) lead.add(prefix);
  const dirs = new Set<string>();
  for (const f of [...wanted, ...links]) for (const d of leadingDirs(f)) dirs.add(d);
  if (!opts.selection)
    for (const [rel, e] of index.entries)
      if (e.type === 'directory' && !exclude.has(topOf(rel))) dirs.add(rel);

  const pack = tarStream.pack();
  const run = async () => {
    for (const d of lead) pack.entry({ name: d, type: 'directory', mode: 0o755, uid: 0, gid: 0 });
    // sorted: a directory's own entry comes before anything inside it
    for (const d of [...dirs].sort()) {
      const e = index.entries.get(d);
      if (e && e.type !== 'directory') throw new Error(`${d} is not a folder in ${index.file}`);
      const mtime = new Date((e?.mtime ?? 0) * 1000);
      pack.entry({ name: name(d), type: 'directory', mode: e?.mode ?? 0o755, mtime, uid: 0, gid: 0 });
    }
    for (const l of links) {
      const e = index.entries.get(l);
      if (e?.type !== 'symlink') throw new Error(`${l} is not a link in ${index.file}`);
      const mtime = new Date(e.mtime * 1000);
      pack.entry({
        name: name(l),
        type: 'symlink',
        linkname: e.linkname,
        mode: 0o777,
        mtime,
        uid: 0,
        gid: 0,
      });
    }
    const pending = new Set(wanted);
    const { extract, close } = entriesOf(index.file);
    try {
      for await (const entry of extract) {
        const h = entry.header;
        const rel = strippedPath(index.file, h.name);
        const type = h.type === 'contiguous-file' ? 'file' : h.type;
        if (rel === undefined || type !== 'file' || !pending.has(rel)) {
          entry.resume();
          continue;
        }
        pending.delete(rel);
        const e = index.entries.get(rel)!;
        if ((h.size ?? 0) !== e.size) throw changedWhileRead(index.file, `${shown(rel)} has another size`);
        const header = {
          name: name(rel),
          type: 'file' as const,
          mode: e.mode,
          mtime: h.mtime,
          uid: 0,
          gid: 0,
        };
        const override = opts.overrides?.get(rel);
        if (override !== undefined) {
          entry.resume();
          const body = Buffer.isBuffer(override) ? override : Buffer.from(override, 'utf8');
          await new Promise<void>((resolve, reject) =>
            pack.entry({ ...header, size: body.length }, body, (err) => (err ? reject(err) : resolve())),
          );
          continue;
        }
        const digest = crypto.createHash('sha256');
        let out!: Writable;
        const written = new Promise<void>((resolve, reject) => {
          out = pack.entry({ ...header, size: e.size }, (err) =>
            err ? reject(err) : resolve(),
          ) as unknown as Writable;
        });
        for await (const chunk of entry as AsyncIterable<Buffer>) {
          digest.update(chunk);
          if (!out.write(chunk)) await once(out, 'drain');
        }
        out.end();
        await written;
        if (digest.digest('hex') !== e.sha256)
          throw changedWhileRead(index.file, `${shown(rel)} differs from the first pass`);
      }
    } finally {
      close();
    }
    if (pending.size > 0) throw changedWhileRead(index.file, `${shown([...pending][0]!)} is gone`);
    pack.finalize();
  };
  run().catch((err: unknown) => pack.destroy(err instanceof Error ? err : new Error(String(err))));
  return pack as unknown as Readable;
}

function changedWhileRead(file: string, why: string): KfError {
  return new KfError(
    `source tarball ${file} changed while it was read (${why})`,
    'leave the tarball alone while a build reads it, and build again',
  );
}

/** The sizes of the given files of a tree, for progress (missing ones count 0). */
export function entrySizes(index: TarballIndex, files: readonly string[]): number {
  let total = 0;
  for (const f of files) total += index.entries.get(f)?.size ?? 0;
  return total;
}

/**
 * Small files of a source tarball by their path below the top folder (as `--strip-components=1`
 * sees them), in one pass that keeps nothing else. Only regular files of at most `maxBytes` are
 * taken; missing ones are undefined.
 */
export async function readTarballFiles(
  file: string,
  rels: readonly string[],
  maxBytes = 1 << 20,
): Promise<Record<string, string | undefined>> {
  const out: Record<string, string | undefined> = {};
  for (const r of rels) out[r] = undefined;
  const { extract, close } = entriesOf(file);
  try {
    for await (const entry of extract) {
      const rel = strippedPath(file, entry.header.name);
      if (
        rel !== undefined &&
        entry.header.type === 'file' &&
        rel in out &&
        out[rel] === undefined &&
        (entry.header.size ?? 0) <= maxBytes
      ) {
        const chunks: Buffer[] = [];
        for await (const chunk of entry as AsyncIterable<Buffer>) chunks.push(chunk);
        out[rel] = Buffer.concat(chunks).toString('utf8');
      } else {
        entry.resume();
      }
    }
  } catch (err) {
    close();
    throw unreadable(file, err);
  }
  return out;
}
