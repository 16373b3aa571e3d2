import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { sha256File } from './store.js';

const execFileAsync = promisify(execFile);

/**
 * What identifies a source for the cache key, computed WITHOUT preparing it (no unpack, no
 * checkout), so a hit is found before any slow step and before any container:
 *
 * - git: undefined: the commit in the plan already names the tree exactly;
 * - tarball: its sha256;
 * - dir: a fingerprint of every file's path, size, mode and mtime (a directory can change, and
 *   a path alone would give stale hits; contents are not read, to stay fast on 280 MB trees).
 */
export type SourceRef =
  | { kind: 'dir'; dir: string }
  | { kind: 'tarball'; file: string }
  | { kind: 'git'; repo: string; commit: string };

export async function sourceIdentity(src: SourceRef): Promise<string | undefined> {
  switch (src.kind) {
    case 'git':
      return undefined;
    case 'tarball':
      return `tarball:sha256:${await sha256File(path.resolve(src.file))}`;
    case 'dir':
      return `dir:${await treeFingerprint(path.resolve(src.dir))}`;
  }
}

/**
 * sha256 over (type, relative path, size, mode, mtime, link target) of every entry, sorted;
 * .git left out. GNU find lists a 280 MB tree several times faster than a walk in JS; where
 * find is missing or cannot -printf (busybox), the walk below gives the same kind of list.
 */
export async function treeFingerprint(root: string): Promise<string> {
  let lines: string[];
  try {
    const { stdout } = await execFileAsync(
      'find',
      [
        root,
        '-mindepth',
        '1',
        '-path',
        path.join(root, '.git'),
        '-prune',
        '-o',
        '-printf',
        '%y %P %s %m %T@ %l\\0',
      ],
      { maxBuffer: 512 * 1024 * 1024, encoding: 'utf8' },
    );
    lines = stdout.split('\0').filter((l) => l !== '');
  } catch {
    lines = await walkTree(root);
  }
  lines.sort();
  return crypto.createHash('sha256').update(lines.join('\n')).digest('hex');
}

async function walkTree(root: string, rel = ''): Promise<string[]> {
  const lines: string[] = [];
  for (const e of await fs.readdir(path.join(root, rel), { withFileTypes: true })) {
    if (rel === '' && e.name === '.git') continue;
    const r = rel ? `${rel}/${e.name}` : e.name;
    const st = await fs.lstat(path.join(root, r));
    const link = e.isSymbolicLink() ? await fs.readlink(path.join(root, r)) : '';
    lines.push(
      `${e.isDirectory() ? 'd' : e.isSymbolicLink() ? 'l' : 'f'} ${r} ${st.size} ${(st.mode & 0o7777).toString(8)} ${st.mtimeMs / 1000} ${link}`,
    );
    if (e.isDirectory()) lines.push(...(await walkTree(root, r)));
  }
  return lines;
}
