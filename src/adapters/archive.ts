import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import tarFs from 'tar-fs';
import tarStream from 'tar-stream';
import { KfError } from '../core/errors.js';

export interface PackOptions {
  /** path prefix for every entry (no leading "/"), e.g. "go/src/k8s.io/kubernetes" */
  prefix?: string;
  /**
   * Files whose content is replaced in the stream, keyed by path relative to the directory
   * ("/" separated). The directory itself is never modified: this is how patched files reach
   * the container while --source-dir stays as it is.
   */
  overrides?: ReadonlyMap<string, string | Buffer>;
  /** top-level names left out, e.g. [".git"] */
  exclude?: readonly string[];
  /** empty directories to add (with their parents), e.g. ["tmp/out"] */
  extraDirs?: readonly string[];
}

/**
 * The parents of the prefix and the extra directories (with themselves), parents first: the
 * archive can then be put at "/" of any image (putArchive needs an existing target directory;
 * "/" always exists).
 */
export function leadingDirs(prefix: string, extraDirs: readonly string[] = []): Set<string> {
  const dirs = new Set<string>();
  const addParents = (p: string, self: boolean) => {
    const parts = p.split('/').filter(Boolean);
    for (let i = 1; i <= (self ? parts.length : parts.length - 1); i++) dirs.add(parts.slice(0, i).join('/'));
  };
  if (prefix) addParents(prefix, false);
  for (const d of extraDirs) addParents(d, true);
  return dirs;
}

/**
 * Packs a directory as a tar stream, read from disk as it is consumed (a 277 MB tree is never
 * held in memory). Symlinks are kept as symlinks; owners become root so the container's tree
 * is root-owned whatever the host uid was.
 */
export function packDirectory(dir: string, opts: PackOptions = {}): Readable {
  const prefix = (opts.prefix ?? '').replace(/^\/+|\/+$/g, '');
  const overrides = new Map<string, Buffer>();
  for (const [file, content] of opts.overrides ?? []) {
    overrides.set(
      file.replace(/^\.\//, ''),
      Buffer.isBuffer(content) ? content : Buffer.from(content, 'utf8'),
    );
  }
  const exclude = new Set(opts.exclude ?? []);
  const relOf = (name: string) => name.replace(/^\.\/?/, '');
  const lead = tarStream.pack();
  for (const name of leadingDirs(prefix, opts.extraDirs))
    lead.entry({ name, type: 'directory', mode: 0o755, uid: 0, gid: 0 });
  const pack = tarFs.pack(dir, {
    pack: lead,
    ignore: (abs) => exclude.has(path.relative(dir, abs).split(path.sep)[0] ?? ''),
    map: (header) => {
      const rel = relOf(header.name);
      const replacement = header.type === 'file' ? overrides.get(rel) : undefined;
      if (replacement) header.size = replacement.length;
      header.uid = 0;
      header.gid = 0;
      header.name = prefix ? (rel ? `${prefix}/${rel}` : prefix) : rel || '.';
      return header;
    },
    mapStream: (fileStream, header) => {
      const rel = prefix ? header.name.slice(prefix.length + 1) : header.name;
      const replacement = overrides.get(rel);
      if (!replacement) return fileStream;
      fileStream.destroy();
      return Readable.from([replacement]) as unknown as fs.ReadStream;
    },
  });
  return pack as unknown as Readable;
}

/**
 * Packs a chosen part of a directory (files and symlinks relative to it, "/" separated, as
 * package-closure.ts selects them) as a tar stream, read from disk as it is consumed. Parent
 * directories come before their contents; `overrides` replace file contents as in packDirectory.
 */
export function packSelection(
  dir: string,
  selection: { files: readonly string[]; symlinks: readonly string[] },
  opts: Omit<PackOptions, 'exclude'> = {},
): Readable {
  const prefix = (opts.prefix ?? '').replace(/^\/+|\/+$/g, '');
  const name = (rel: string) => (prefix ? (rel ? `${prefix}/${rel}` : prefix) : rel);
  const dirs = leadingDirs(prefix, opts.extraDirs);
  const inTree = new Set<string>();
  for (const f of [...selection.files, ...selection.symlinks]) {
    const parts = f.split('/');
    for (let i = 1; i < parts.length; i++) inTree.add(parts.slice(0, i).join('/'));
  }
  const pack = tarStream.pack();
  const run = async () => {
    for (const d of dirs) pack.entry({ name: d, type: 'directory', mode: 0o755, uid: 0, gid: 0 });
    if (prefix) pack.entry({ name: prefix, type: 'directory', mode: 0o755, uid: 0, gid: 0 });
    // sorted: a directory's own entry comes before anything inside it
    for (const d of [...inTree].sort()) {
      const st = fs.statSync(path.join(dir, d));
      pack.entry({
        name: name(d),
        type: 'directory',
        mode: st.mode & 0o7777,
        mtime: st.mtime,
        uid: 0,
        gid: 0,
      });
    }
    for (const l of selection.symlinks) {
      const st = fs.lstatSync(path.join(dir, l));
      pack.entry({
        name: name(l),
        type: 'symlink',
        linkname: fs.readlinkSync(path.join(dir, l)),
        mode: st.mode & 0o7777,
        mtime: st.mtime,
        uid: 0,
        gid: 0,
      });
    }
    for (const f of selection.files) {
      const abs = path.join(dir, f);
      const st = fs.statSync(abs);
      const override = opts.overrides?.get(f);
      const body =
        override === undefined
          ? undefined
          : Buffer.isBuffer(override)
            ? override
            : Buffer.from(override, 'utf8');
      const header = {
        name: name(f),
        type: 'file' as const,
        mode: st.mode & 0o7777,
        mtime: st.mtime,
        uid: 0,
        gid: 0,
        size: body ? body.length : st.size,
      };
      if (body) {
        pack.entry(header, body);
        continue;
      }
      await new Promise<void>((resolve, reject) => {
        const entry = pack.entry(header, (err) => (err ? reject(err) : resolve()));
        const input = fs.createReadStream(abs);
        input.on('error', reject);
        input.pipe(entry);
      });
    }
    pack.finalize();
  };
  run().catch((err: unknown) => pack.destroy(err instanceof Error ? err : new Error(String(err))));
  return pack as unknown as Readable;
}

/**
 * A small tar stream of in-memory files (path → text, "/" separated, no leading "/") and empty
 * directories, root-owned: what a rebuild writes over the source volume. Parent directories of
 * the files are not added; the engine creates missing ones, and existing ones keep their modes.
 */
export function packFiles(
  files: ReadonlyMap<string, string | Buffer>,
  dirs: readonly string[] = [],
): Readable {
  const pack = tarStream.pack();
  for (const d of dirs)
    pack.entry({ name: d.replace(/^\/+/, ''), type: 'directory', mode: 0o755, uid: 0, gid: 0 });
  for (const [name, content] of files) {
    const body = Buffer.isBuffer(content) ? content : Buffer.from(content, 'utf8');
    pack.entry(
      { name: name.replace(/^\/+/, ''), type: 'file', mode: 0o644, uid: 0, gid: 0, size: body.length },
      body,
    );
  }
  pack.finalize();
  return pack as unknown as Readable;
}

/** The text of one regular file in a tar stream, or undefined when the stream has no such file. */
export async function readOneFile(
  tar: NodeJS.ReadableStream,
  name: string,
  maxBytes = 1 << 20,
): Promise<string | undefined> {
  const extract = tarStream.extract();
  const source = tar as Readable;
  source.on('error', (err) => extract.destroy(err));
  source.pipe(extract as unknown as Writable);
  let text: string | undefined;
  for await (const entry of extract) {
    const base = entry.header.name.replace(/\/+$/, '').split('/').pop();
    if (
      text === undefined &&
      entry.header.type === 'file' &&
      base === name &&
      (entry.header.size ?? 0) <= maxBytes
    ) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry as AsyncIterable<Buffer>) chunks.push(chunk);
      text = Buffer.concat(chunks).toString('utf8');
    } else {
      entry.resume();
    }
  }
  return text;
}

/**
 * Takes exactly one regular file out of a tar stream (e.g. dockerode's getArchive) and writes
 * it to `sink`. Everything else in the stream is skipped. Fails when the file is missing.
 */
export async function takeOneFile(tar: NodeJS.ReadableStream, name: string, sink: Writable): Promise<number> {
  const extract = tarStream.extract();
  const source = tar as Readable;
  source.on('error', (err) => extract.destroy(err));
  source.pipe(extract as unknown as Writable);
  let found = false;
  let size = 0;
  for await (const entry of extract) {
    const base = entry.header.name.replace(/\/+$/, '').split('/').pop();
    if (!found && entry.header.type === 'file' && base === name) {
      found = true;
      for await (const chunk of entry as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (!sink.write(chunk)) await once(sink, 'drain');
      }
    } else {
      entry.resume();
    }
  }
  if (!found)
    throw new KfError(
      `the build produced no file named ${name}`,
      'rerun with --verbose to see the build log',
    );
  await new Promise<void>((resolve, reject) => {
    sink.once('error', reject);
    sink.end(() => resolve());
  });
  return size;
}

/** One entry of an archive assembled from several places (packEntries). */
export interface TarEntry {
  /** path in the archive, "/" separated, no leading "/" */
  name: string;
  type: 'file' | 'directory' | 'symlink';
  mode: number;
  /** file: its size; read from `source` (a host file) or taken from `content` */
  size?: number;
  source?: string;
  content?: Buffer;
  linkname?: string;
}

/** Files up to this size are read whole by packEntries. */
const SMALL_FILE = 1 << 20;

/**
 * A tar stream of the given entries in order, root-owned, files read from disk as the stream
 * is consumed (a 500 MB toolchain is never held in memory). A file whose size changed since it
 * was listed fails the stream instead of producing a short or long entry.
 */
export function packEntries(entries: readonly TarEntry[], mtime = new Date(0)): Readable {
  const pack = tarStream.pack();
  const run = async () => {
    for (const e of entries) {
      const header = { name: e.name, type: e.type, mode: e.mode, mtime, uid: 0, gid: 0 };
      if (e.type === 'directory') pack.entry(header);
      else if (e.type === 'symlink') pack.entry({ ...header, linkname: e.linkname });
      else if (e.content) pack.entry({ ...header, size: e.content.length }, e.content);
      else if ((e.size ?? 0) <= SMALL_FILE) {
        // small files in one read: a stream per file costs more than the bytes (13k files of a GOROOT)
        const body = await fs.promises.readFile(e.source!);
        if (body.length !== e.size) throw new Error(`${e.source} changed size while it was packed`);
        await new Promise<void>((resolve, reject) =>
          pack.entry({ ...header, size: body.length }, body, (err) => (err ? reject(err) : resolve())),
        );
      } else {
        await new Promise<void>((resolve, reject) => {
          const entry = pack.entry({ ...header, size: e.size }, (err) => (err ? reject(err) : resolve()));
          const input = fs.createReadStream(e.source!);
          input.on('error', reject);
          input.pipe(entry);
        });
      }
    }
    pack.finalize();
  };
  run().catch((err: unknown) => pack.destroy(err instanceof Error ? err : new Error(String(err))));
  return pack as unknown as Readable;
}
