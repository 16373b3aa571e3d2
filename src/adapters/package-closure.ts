import fs from 'node:fs';
import path from 'node:path';
import { isStandardImport } from '../core/go-imports.js';
import type { BuildMode } from '../core/types.js';
import { KfError } from '../core/errors.js';
import { diskTree, isTreeDir, isTreeFile, joinRel, readTreeText, realRel, type TreeFs } from './tree-fs.js';

/**
 * The part of a Kubernetes tree one command needs: the files of every package it imports,
 * directly or not (about 3.4k files and 33 MB of 1.20.2's 22.7k files and 233 MB for kubeadm).
 * Filling a source volume with only these is what makes a first build cost little more than the
 * compiler's own work: writing 22k files through the engine took longer than streaming them.
 *
 * It errs on the side of more: every .go file of a package counts whatever its build tags,
 * an import that resolves nowhere is skipped (the standard library, or a file `go build` would
 * ignore), and a package with a //go:embed directive is taken with everything below it.
 * `go build` stays the judge: a package missed here fails the build with "cannot find package",
 * never a different binary; --no-source-volume ships the whole tree instead.
 */
export interface SourceSelection {
  /** regular files, relative to the root through no symlink ("/" separated) */
  files: string[];
  /** symlinks the resolution went through (vendor/k8s.io/api → ../../staging/src/k8s.io/api) */
  symlinks: string[];
  /** packages found */
  packages: number;
}

/** Files at the top that the go command reads in module mode (kept in GOPATH mode: they are small). */
const MODULE_FILES = ['go.mod', 'go.sum', 'go.work', 'go.work.sum', 'vendor/modules.txt'];

/** The closure of `pkg` in a tree on this host (its real path is taken first). */
export function packageClosure(root: string, mode: BuildMode, pkg: string): SourceSelection {
  return treePackageClosure(diskTree(fs.realpathSync(root)), mode, pkg);
}

/** The closure of `pkg` in any tree (a directory, a tarball read as a stream). */
export function treePackageClosure(tree: TreeFs, mode: BuildMode, pkg: string): SourceSelection {
  const files = new Set<string>();
  const symlinks = new Set<string>();
  const { dirExists, resolve } = packageResolver(tree, mode, files);
  for (const f of MODULE_FILES) if (isTreeFile(tree, f)) files.add(f);

  const start = pkg.replace(/^\.\//, '').replace(/\/+$/, '');
  if (!dirExists(start)) {
    throw new KfError(
      `${tree.describe(start)} is missing, so the packages it needs cannot be found`,
      'pass a complete Kubernetes source tree',
    );
  }
  const seen = new Set<string>();
  const queue = [start];
  while (queue.length > 0) {
    const lexical = queue.shift()!;
    const real = realRel(tree, lexical, symlinks);
    if (real === undefined || seen.has(real)) continue;
    seen.add(real);
    let embeds = false;
    for (const e of tree.readdir(real)) {
      if (e.type !== 'file' || e.name.endsWith('_test.go')) continue;
      const rel = joinRel(real, e.name);
      files.add(rel);
      if (!e.name.endsWith('.go')) continue;
      const header = tree.goHeader(rel);
      embeds ||= header.embeds;
      for (const imp of header.imports) {
        if (isStandardImport(imp)) continue;
        const dir = resolve(imp, lexical);
        if (dir !== undefined) queue.push(dir);
      }
    }
    if (embeds) addTree(tree, real, files);
  }
  return { files: [...files].sort(), symlinks: [...symlinks].sort(), packages: seen.size };
}

/**
 * How the go command finds an import's directory in this tree and build mode (one rule for the
 * package closure and for finding the file a patch target is compiled from). `files` collects
 * the go.mod files of the main modules read on the way.
 */
function packageResolver(tree: TreeFs, mode: BuildMode, files: Set<string>) {
  const dirExists = memo((rel: string) => isTreeDir(tree, rel));
  const mainModules = mode === 'module' ? readMainModules(tree, files) : [];
  /** The package dir (relative, lexical: may pass through symlinks) an import resolves to, or undefined. */
  const resolve = (importPath: string, fromDir: string): string | undefined => {
    if (mode === 'module') {
      const main = mainModules
        .filter((m) => importPath === m.path || importPath.startsWith(`${m.path}/`))
        .sort((a, b) => b.path.length - a.path.length)[0];
      if (main) return joinRel(main.dir, importPath.slice(main.path.length + 1));
      const vendored = joinRel('vendor', importPath);
      return dirExists(vendored) ? vendored : undefined;
    }
    // GOPATH mode: vendor directories from the importing package up to the root, then GOPATH
    for (let d = fromDir; ; d = parentRel(d)) {
      const candidate = joinRel(joinRel(d, 'vendor'), importPath);
      if (dirExists(candidate)) return candidate;
      if (d === '') break;
    }
    const own = 'k8s.io/kubernetes';
    if (importPath === own) return '';
    if (importPath.startsWith(`${own}/`)) return importPath.slice(own.length + 1);
    return undefined;
  };
  return { dirExists, resolve };
}

/**
 * The directory, relative to the root and through no symlink, that `go build` compiles for
 * `importPath` imported from `fromDir`: `staging/src/k8s.io/client-go/util/cert` when
 * vendor/k8s.io/client-go links into staging, `vendor/k8s.io/client-go/util/cert` when the
 * vendored module is a copy. Undefined when it resolves outside the tree or nowhere.
 */
export function compiledPackageDir(
  tree: TreeFs,
  mode: BuildMode,
  importPath: string,
  fromDir: string,
): string | undefined {
  const lexical = packageResolver(tree, mode, new Set()).resolve(importPath, fromDir);
  return lexical === undefined ? undefined : realRel(tree, lexical);
}

interface MainModule {
  path: string;
  dir: string;
}

/** The root module and the workspace's modules (go.work `use`), by module path. */
function readMainModules(tree: TreeFs, files: Set<string>): MainModule[] {
  const modules: MainModule[] = [];
  const add = (dir: string) => {
    const goMod = joinRel(dir, 'go.mod');
    const text = readTreeText(tree, goMod);
    const m = text && /^module[ \t]+("?)([^"\s]+)\1[ \t]*$/m.exec(text);
    if (!m) return;
    modules.push({ path: m[2]!, dir });
    files.add(goMod);
    if (isTreeFile(tree, joinRel(dir, 'go.sum'))) files.add(joinRel(dir, 'go.sum'));
  };
  add('');
  const work = readTreeText(tree, 'go.work');
  if (work) {
    const uses: string[] = [];
    for (const m of work.matchAll(/^use[ \t]*\(([^)]*)\)/gm)) uses.push(...m[1]!.split('\n'));
    for (const m of work.matchAll(/^use[ \t]+([^(\s][^\n]*)$/gm)) uses.push(m[1]!);
    for (const u of uses) {
      const dir = u
        .replace(/\/\/.*$/, '')
        .trim()
        .replace(/^"|"$/g, '');
      if (!dir || dir === '.') continue;
      const rel = path.posix.normalize(dir).replace(/^\.\//, '');
      if (rel.startsWith('..') || path.isAbsolute(rel)) continue;
      add(rel);
    }
  }
  return modules;
}

function addTree(tree: TreeFs, rel: string, files: Set<string>): void {
  for (const e of tree.readdir(rel)) {
    const child = joinRel(rel, e.name);
    if (e.type === 'directory') addTree(tree, child, files);
    else if (e.type === 'file' && !e.name.endsWith('_test.go')) files.add(child);
  }
}

function memo(fn: (rel: string) => boolean): (rel: string) => boolean {
  const cache = new Map<string, boolean>();
  return (rel) => {
    let v = cache.get(rel);
    if (v === undefined) cache.set(rel, (v = fn(rel)));
    return v;
  };
}

const parentRel = (rel: string) => (rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '');
