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

export async function sourceIdentity(src: SourceRef, scan?: TreeScan): Promise<string | undefined> {
  switch (src.kind) {
    case 'git':
      return undefined;
    case 'tarball':
      return `tarball:sha256:${await sha256File(path.resolve(src.file))}`;
    case 'dir':
      return `dir:${(scan ?? (await scanTree(path.resolve(src.dir)))).fingerprint}`;
  }
}

/** One walk of a tree: its fingerprint and the newest regular file's mtime (seconds, floored). */
export interface TreeScan {
  fingerprint: string;
  newestFile: number;
}

/**
 * sha256 over (type, relative path, size, mode, mtime, link target) of every entry, sorted;
 * .git left out. GNU find lists a 280 MB tree several times faster than a walk in JS; where
 * find is missing or cannot -printf (busybox), the walk below gives the same kind of list.
 */
export async function treeFingerprint(root: string): Promise<string> {
  return (await scanTree(root)).fingerprint;
}

/** treeFingerprint and newestFileTime from one walk (a --source-dir build needs both). */
export async function scanTree(root: string): Promise<TreeScan> {
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
  let newest = 0;
  for (const l of lines) {
    const t = fileMtimeOf(l);
    if (t !== undefined && t > newest) newest = t;
  }
  lines.sort();
  return { fingerprint: crypto.createHash('sha256').update(lines.join('\n')).digest('hex'), newestFile: Math.floor(newest) };
}

/**
 * The mtime of a regular file's line, "f PATH SIZE MODE MTIME " (a file's link target is
 * empty): second from the right whatever spaces PATH holds. Undefined for other entries.
 */
function fileMtimeOf(line: string): number | undefined {
  if (!line.startsWith('f ')) return undefined;
  const parts = line.split(' ');
  return Number(parts[parts.length - 2]);
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

/**
 * The newest modification time (seconds) of the regular files under `root`, .git left out: the
 * buildDate of a directory or an unpacked tarball (tar keeps each entry's mtime). 0 when empty.
 */
export async function newestFileTime(root: string): Promise<number> {
  let times: number[];
  try {
    const { stdout } = await execFileAsync(
      'find',
      [root, '-mindepth', '1', '-path', path.join(root, '.git'), '-prune', '-o', '-type', 'f', '-printf', '%T@\\n'],
      { maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
    );
    times = stdout.split('\n').filter((l) => l !== '').map(Number);
  } catch {
    times = (await walkTree(root)).map(fileMtimeOf).filter((t): t is number => t !== undefined);
  }
  return Math.floor(times.reduce((a, b) => (b > a ? b : a), 0));
}
