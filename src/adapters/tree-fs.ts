import fs from 'node:fs';
import path from 'node:path';
import { KfError, messageOf } from '../core/errors.js';
import { scanGoHeader, type GoFileHeader } from '../core/go-imports.js';
import { sha256FileSync } from './fs.js';

/**
 * A read-only view of a source tree by relative path ("/" separated, "" is the root), whatever
 * holds it: a directory on this host (diskTree) or a tarball read as a stream, never unpacked
 * (tarball-tree.ts). Everything that reads a tree to decide the build (the patch inputs, the
 * build mode, the package closure, what a source volume is filled with) reads it through this,
 * so a tarball and the directory it unpacks to give the same answers.
 */
export interface TreeFs {
  /** for messages: where `rel` is ("/src/k8s/go.mod", "k8s.tar.gz: kubernetes/go.mod") */
  describe(rel: string): string;
  /** the entry itself, no link followed; undefined when missing */
  lstat(rel: string): TreeStat | undefined;
  /** a link's target text */
  readlink(rel: string): string;
  /** a directory's entries (no link followed); [] when it is missing or not a directory */
  readdir(rel: string): TreeDirent[];
  /** the text of a regular file at a real path (no link on the way); undefined when missing */
  readText(realRel: string): string | undefined;
  /** the import header of a .go file at a real path */
  goHeader(realRel: string): GoFileHeader;
  /** sha256 hex of a regular file at a real path */
  digest(realRel: string): string;
}

export type TreeEntryType = 'file' | 'directory' | 'symlink' | 'other';

export interface TreeStat {
  type: TreeEntryType;
  /** permission bits */
  mode: number;
  size: number;
  /** seconds */
  mtime: number;
}

export interface TreeDirent {
  name: string;
  type: TreeEntryType;
}

export const joinRel = (a: string, b: string): string => (a && b ? `${a}/${b}` : a || b);

/** How many links one path may pass through before it counts as a loop (Linux's own limit). */
const MAX_LINKS = 40;

/**
 * The path of `lexical` through no symlink, relative to the root, following links the way the
 * kernel does (a link's target is read relative to its directory, absolute targets are not
 * inside the tree); every link met on the way is recorded in `links` by its real path.
 * Undefined when it leaves the root, loops, or does not exist.
 */
export function realRel(tree: TreeFs, lexical: string, links?: Set<string>): string | undefined {
  let budget = MAX_LINKS;
  const walk = (parts: string[]): string | undefined => {
    let real = '';
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      if (part === '' || part === '.') continue;
      if (part === '..') {
        if (real === '') return undefined; // above the root
        real = real.includes('/') ? real.slice(0, real.lastIndexOf('/')) : '';
        continue;
      }
      const next = joinRel(real, part);
      const st = tree.lstat(next);
      if (!st) return undefined;
      if (st.type !== 'symlink') {
        real = next;
        continue;
      }
      if (--budget < 0) return undefined;
      const target = tree.readlink(next);
      if (target.startsWith('/')) return undefined;
      links?.add(next);
      const base = real;
      const resolved = walk([...base.split('/'), ...target.split('/')].filter((p) => p !== ''));
      if (resolved === undefined) return undefined;
      real = resolved;
    }
    return real;
  };
  return walk(lexical.split('/'));
}

/** The stat of what `rel` names, links followed inside the tree; undefined when it resolves nowhere. */
export function statFollow(tree: TreeFs, rel: string): (TreeStat & { real: string }) | undefined {
  const real = realRel(tree, rel);
  const st = real === undefined ? undefined : tree.lstat(real);
  return st && real !== undefined ? { ...st, real } : undefined;
}

export const isTreeDir = (tree: TreeFs, rel: string): boolean => statFollow(tree, rel)?.type === 'directory';
export const isTreeFile = (tree: TreeFs, rel: string): boolean => statFollow(tree, rel)?.type === 'file';

/** The text of a regular file, links followed inside the tree; undefined when missing (or not a file). */
export function readTreeText(tree: TreeFs, rel: string, maxBytes = 1 << 20): string | undefined {
  const st = statFollow(tree, rel);
  if (!st || st.type !== 'file') return undefined;
  if (st.size > maxBytes)
    throw new KfError(
      `${tree.describe(rel)} is ${st.size} bytes, more than ${maxBytes}`,
      'check the source tree',
    );
  return tree.readText(st.real);
}

function typeOf(st: fs.Stats | fs.Dirent): TreeEntryType {
  return st.isFile() ? 'file' : st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symlink' : 'other';
}

/** A source file that cannot be read, its OS error named with the path. */
export function sourceReadError(file: string, err: unknown): KfError {
  const code = (err as NodeJS.ErrnoException).code ?? messageOf(err);
  const denied = code === 'EACCES' || code === 'EPERM';
  return new KfError(
    `cannot read ${file}: ${code}`,
    denied ? 'check the permissions of the source tree' : 'check the source tree',
  );
}

/** A directory on this host (its real path) as a TreeFs. */
export function diskTree(root: string): TreeFs {
  const abs = (rel: string) => (rel ? `${root}/${rel}` : root);
  return {
    describe: (rel) => (rel ? path.join(root, rel) : root),
    lstat(rel) {
      let st: fs.Stats;
      try {
        st = fs.lstatSync(abs(rel));
      } catch {
        return undefined;
      }
      return { type: typeOf(st), mode: st.mode & 0o7777, size: st.size, mtime: st.mtimeMs / 1000 };
    },
    readlink: (rel) => fs.readlinkSync(abs(rel)),
    readdir(rel) {
      try {
        return fs
          .readdirSync(abs(rel), { withFileTypes: true })
          .map((e) => ({ name: e.name, type: typeOf(e) }));
      } catch {
        return [];
      }
    },
    readText(rel) {
      try {
        return fs.readFileSync(abs(rel), 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw sourceReadError(abs(rel), err);
      }
    },
    goHeader(rel) {
      try {
        return scanGoHeader(fs.readFileSync(abs(rel), 'utf8'));
      } catch (err) {
        throw sourceReadError(abs(rel), err);
      }
    },
    digest(rel) {
      try {
        return sha256FileSync(abs(rel));
      } catch (err) {
        throw sourceReadError(abs(rel), err);
      }
    },
  };
}
