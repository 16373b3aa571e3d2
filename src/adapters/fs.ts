import crypto from 'node:crypto';
import {
  closeSync,
  createReadStream,
  lstatSync,
  openSync,
  readSync,
  realpathSync,
  type Stats,
} from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../core/errors.js';

/** Files are hashed in pieces of this size: memory stays bounded whatever the file's size. */
const HASH_CHUNK_BYTES = 1 << 20;

/** sha256 of a file's bytes, lowercase hex, read as a stream (the event loop keeps running). */
export async function sha256File(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: HASH_CHUNK_BYTES }))
    hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** sha256File for synchronous callers (the source tree scan); OS errors are thrown as they are. */
export function sha256FileSync(file: string): string {
  const hash = crypto.createHash('sha256');
  const buf = Buffer.allocUnsafe(HASH_CHUNK_BYTES);
  const fd = openSync(file, 'r');
  try {
    let n: number;
    while ((n = readSync(fd, buf, 0, buf.length, null)) > 0) hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/**
 * mkdir -p that reports the real reason: Node's recursive mkdir answers ENOENT where a parent
 * cannot be made (a read-only mount, say), so on ENOENT the missing parts are made one by one
 * and the first one that fails gives its own error (EROFS, EACCES…). Returns the first
 * directory it made, like fs.mkdir.
 */
export async function makeDirs(dir: string, mode?: number): Promise<string | undefined> {
  try {
    return await fs.mkdir(dir, { recursive: true, ...(mode === undefined ? {} : { mode }) });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const missing: string[] = [];
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    const st = await fs.lstat(d).catch(() => undefined);
    if (st || path.dirname(d) === d) break;
    missing.unshift(d);
  }
  for (const d of missing) await fs.mkdir(d, mode === undefined ? {} : { mode });
  return missing[0];
}

/** What a directory entry is, in words, for an error naming it. */
function kindOf(st: Stats): string {
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** The real path of `p`, whether or not it exists: its nearest existing parent resolved. */
function realPathOf(p: string): string {
  const abs = path.resolve(p);
  const rest: string[] = [];
  for (let d = abs; ; d = path.dirname(d)) {
    try {
      return path.join(realpathSync(d), ...rest);
    } catch {
      if (path.dirname(d) === d) return abs;
      rest.unshift(path.basename(d));
    }
  }
}

export interface OutputFileRules {
  /** the flag that named the path, e.g. "--textfile" */
  flag: string;
  /** directories it must not lie in, each with what it is (the PKI a check reads, say) */
  notUnder?: { dir: string; what: string }[];
  /** an example of a good value, for the "next:" line */
  example: string;
}

/**
 * The one check of every file path the tool writes its output to (check --textfile, build --out,
 * bundle export --out): a regular file (replaced atomically) or nothing yet. A link, device,
 * FIFO, socket or directory there is refused, as is any path inside the directories named in
 * `notUnder` (through links too), before anything is written.
 */
export function assertOutputFile(file: string, rules: OutputFileRules): void {
  let st: Stats | undefined;
  try {
    st = lstatSync(file, { throwIfNoEntry: false });
  } catch {
    st = undefined; // ENOTDIR, EACCES…: the write itself fails and names the OS error with the path
  }
  if (st && !st.isFile()) {
    throw new UsageError(
      `${rules.flag} ${file} is ${kindOf(st)}, not a regular file`,
      `pass the path of a regular file or of one to create, e.g. ${rules.flag} ${rules.example}; nothing was written`,
    );
  }
  const real = realPathOf(file);
  for (const { dir, what } of rules.notUnder ?? []) {
    const realDir = realPathOf(dir);
    if (real === realDir || real.startsWith(realDir.endsWith(path.sep) ? realDir : realDir + path.sep)) {
      throw new UsageError(
        `${rules.flag} ${file} is inside ${what} ${dir}`,
        `write it outside the files being read, e.g. ${rules.flag} ${rules.example}; nothing was written`,
      );
    }
  }
}
