import fs from 'node:fs/promises';
import path from 'node:path';

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
