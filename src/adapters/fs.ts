import crypto from 'node:crypto';
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

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
