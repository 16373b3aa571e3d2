import fs from 'node:fs/promises';
import path from 'node:path';
import { KfError, UsageError, messageOf } from '../core/errors.js';
import {
  CLIENT_GO_CERT_FILE,
  CLIENT_GO_CERT_IMPORTER,
  CLIENT_GO_CERT_PACKAGE,
  PATCH_FILES,
  type SourceFiles,
} from '../core/patch-targets.js';
import { compiledPackageDir } from './package-closure.js';
import { diskTree, readTreeText, realRel, type TreeFs } from './tree-fs.js';
import type { BuildMode, KubeVersion, TreePatch } from '../core/types.js';
import { replaceFiles, type StagedFile } from './file-transaction.js';

/**
 * The file-system side of a Kubernetes source tree: reading the patch targets and the build
 * mode, and writing a TreePatch all-or-nothing, through symlinks, keeping modes.
 */

/**
 * The real path of a source tree (links, link to link, "..", trailing "/", relative paths all
 * resolved), refused unless it is a directory with files and cmd/kubeadm in it. Everything that
 * reads a source tree reads it through this path: `find`-like walks do not descend into a
 * starting point that is a link, and a path is never what names a source (its content is).
 */
export async function resolveSourceTree(given: string): Promise<string> {
  let real: string;
  try {
    real = await fs.realpath(path.resolve(given));
  } catch (err) {
    throw await treeUnreadable(given, err);
  }
  await assertSourceTree(real, given);
  return real;
}

/** Why the tree's root cannot be read: missing (maybe a dangling link) or the OS error. */
async function treeUnreadable(given: string, err: unknown): Promise<UsageError> {
  const code = (err as NodeJS.ErrnoException).code ?? messageOf(err);
  if (code === 'ENOENT') return emptyTreeError(given, await linkNote(given));
  return new UsageError(
    `source tree ${JSON.stringify(given)} cannot be read: ${code}`,
    'pass the directory of an unpacked Kubernetes source tree',
  );
}

/** " (a link to X, which does not exist)" for a dangling link, else "". */
async function linkNote(given: string): Promise<string> {
  try {
    return ` (${JSON.stringify(given)} is a link to ${JSON.stringify(await fs.readlink(given))}, which does not exist)`;
  } catch {
    return '';
  }
}

/** The refusal of a tree with nothing in it, or none at all (every source kind says the same). */
export function emptyTreeError(given: string, note = ''): UsageError {
  return new UsageError(
    `source tree ${JSON.stringify(given)} has no files: is it a link to a missing directory?${note}`,
    'pass the directory of an unpacked Kubernetes source tree (ls -la shows where a link points); nothing was built',
  );
}

/** Refuses a path that is not a directory with files and cmd/kubeadm in it (`given`: the name the user gave, for messages). */
export async function assertSourceTree(root: string, given = root): Promise<void> {
  let st;
  try {
    st = await fs.stat(root);
  } catch (err) {
    throw await treeUnreadable(given, err);
  }
  if (!st.isDirectory())
    throw new UsageError(
      `source tree ${JSON.stringify(given)} is not a directory`,
      'pass the directory of an unpacked Kubernetes source tree',
    );
  let names: string[];
  try {
    names = await fs.readdir(root);
  } catch (err) {
    throw new UsageError(
      `source tree ${JSON.stringify(given)} has no files: is it a link to a missing directory? (listing it failed: ${(err as NodeJS.ErrnoException).code ?? messageOf(err)})`,
      'check the permissions of the source tree, or pass the directory of an unpacked Kubernetes source tree',
    );
  }
  if (names.length === 0) throw emptyTreeError(given);
  try {
    await fs.access(path.join(root, 'cmd/kubeadm'));
  } catch {
    throw new UsageError(
      `${JSON.stringify(given)} is not a Kubernetes source tree: it has no cmd/kubeadm`,
      'pass the top directory of the Kubernetes source (where go.mod and cmd/ are)',
    );
  }
}

/**
 * Small files of a tree by relative path (e.g. .go-version): regular files of at most
 * `maxBytes`, read through no link out of the tree; missing ones are undefined.
 */
export async function readTreeFiles(
  root: string,
  rels: readonly string[],
  maxBytes = 1 << 20,
): Promise<SourceFiles> {
  const tree = await treeOf(root);
  const files: SourceFiles = {};
  for (const rel of rels) files[rel] = readTreeText(tree, rel, maxBytes);
  return files;
}

/** A tree given as a directory path (its real path is read) or as a TreeFs. */
export type TreeLike = string | TreeFs;

export async function treeOf(tree: TreeLike): Promise<TreeFs> {
  return typeof tree === 'string' ? diskTree(await fs.realpath(tree)) : tree;
}

/** Reads every file the patch may touch (missing ones are undefined), links followed inside the tree. */
export async function readPatchSources(root: TreeLike): Promise<SourceFiles> {
  const tree = await treeOf(root);
  const files: SourceFiles = {};
  for (const rel of PATCH_FILES) files[rel] = readTreeText(tree, rel, MAX_PATCH_FILE);
  return files;
}

/** Generated constants files are large, a patch target is not: the bound is far above either. */
const MAX_PATCH_FILE = 16 << 20;

/** Where the build mode is read (GO111MODULE=off up to 1.29). */
export const INIT_SH = 'hack/lib/init.sh';

/** The patch's inputs: the files it may read, and which cert.go the build compiles. */
export interface PatchInputs {
  files: SourceFiles;
  /** CLIENT_GO_CERT_FILE, or the vendored copy's path when vendor/ holds a real copy */
  clientGoCertFile: string;
}

/**
 * Reads the patch targets the way `go build` will see them: client-go's util/cert is found
 * through vendor/ like any import (core/patch-targets.ts PatchOptions.clientGoCertFile). `mode`
 * unknown: read from the tree, module-mode lookup when hack/lib/init.sh is missing.
 */
export async function readPatchInputs(root: TreeLike, mode?: BuildMode): Promise<PatchInputs> {
  const tree = await treeOf(root);
  const files = await readPatchSources(tree);
  let buildMode = mode;
  if (buildMode === undefined) {
    buildMode = readTreeText(tree, INIT_SH) === undefined ? 'module' : await readBuildMode(tree);
  }
  const dir = compiledPackageDir(tree, buildMode, CLIENT_GO_CERT_PACKAGE, CLIENT_GO_CERT_IMPORTER);
  const clientGoCertFile = dir === undefined ? CLIENT_GO_CERT_FILE : `${dir}/cert.go`;
  if (!(clientGoCertFile in files))
    files[clientGoCertFile] = readTreeText(tree, clientGoCertFile, MAX_PATCH_FILE);
  return { files, clientGoCertFile };
}

/**
 * GOPATH mode where hack/lib/init.sh exports GO111MODULE=off (the official build up to 1.29),
 * module mode otherwise.
 */
export async function readBuildMode(root: TreeLike): Promise<BuildMode> {
  const tree = await treeOf(root);
  const initSh = readTreeText(tree, INIT_SH);
  if (initSh === undefined) {
    throw new KfError(
      `${tree.describe(INIT_SH)} is missing, so the build mode cannot be read`,
      'pass a complete Kubernetes source tree',
    );
  }
  return /^[ \t]*export[ \t]+GO111MODULE=["']?off\b/m.test(initSh) ? 'gopath' : 'module';
}

/**
 * The tree's major.minor from its changelog (CHANGELOG/CHANGELOG-1.N.md, or CHANGELOG-1.N.md at
 * the top in old trees): the highest N. Undefined when there is none. Only minor precision.
 */
export async function readTreeVersion(root: TreeLike): Promise<KubeVersion | undefined> {
  const tree = await treeOf(root);
  let best = -1;
  for (const dir of ['CHANGELOG', '']) {
    const real = realRel(tree, dir);
    if (real === undefined) continue;
    for (const { name } of tree.readdir(real)) {
      const m = /^CHANGELOG-1\.(\d+)\.md$/.exec(name);
      if (m) best = Math.max(best, Number(m[1]));
    }
  }
  return best < 0 ? undefined : { major: 1, minor: best, patch: 0, pre: '' };
}

/**
 * Writes the patched files: each to its real path (a symlinked directory or file stays a link),
 * with the original mode, all or nothing (replaceFiles: staged, swapped, put back on failure,
 * and a failed put-back named file by file). The tree came from someone else: a transaction
 * journal in it is never followed (it could name any file on this host), so a killed earlier
 * patch is simply redone (files already patched are left as they are).
 */
export async function writePatch(root: string, result: TreePatch): Promise<string[]> {
  const reals = await Promise.all(result.files.map((f) => fs.realpath(path.join(root, f.file))));
  const writes: StagedFile[] = [];
  for (const [i, f] of result.files.entries()) {
    const real = reals[i]!;
    let current: string;
    let mode: number;
    try {
      current = await fs.readFile(real, 'utf8');
      mode = (await fs.stat(real)).mode & 0o7777;
    } catch (err) {
      throw new KfError(
        `cannot read ${real}: ${messageOf(err)}`,
        'check that the source tree is readable; nothing was changed',
      );
    }
    if (current !== f.before) {
      throw new KfError(`${f.file} changed while it was being patched`, 'run the patch again');
    }
    writes.push({ file: real, data: f.after, mode });
  }
  replaceFiles(writes, { recover: false });
  return result.files.map((f) => f.file);
}
