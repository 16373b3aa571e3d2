import fs from 'node:fs/promises';
import path from 'node:path';
import { KfError, UsageError, messageOf } from '../errors.js';
import {
  CLIENT_GO_CERT_FILE,
  CLIENT_GO_CERT_IMPORTER,
  CLIENT_GO_CERT_PACKAGE,
  PATCH_FILES,
  type SourceFiles,
} from '../core/patch.js';
import { compiledPackageDir } from './package-closure.js';
import type { BuildMode, KubeVersion, PatchResult } from '../core/types.js';

/**
 * The file-system side of a Kubernetes source tree: reading the patch targets and the build
 * mode, and writing a PatchResult all-or-nothing, through symlinks, keeping modes.
 */

/** Refuses a path that is not a directory with cmd/kubeadm in it. */
export async function assertSourceTree(root: string): Promise<void> {
  let st;
  try {
    st = await fs.stat(root);
  } catch (err) {
    throw new UsageError(
      `source tree ${JSON.stringify(root)} cannot be read: ${(err as NodeJS.ErrnoException).code ?? messageOf(err)}`,
      'pass the directory of an unpacked Kubernetes source tree',
    );
  }
  if (!st.isDirectory())
    throw new UsageError(
      `source tree ${JSON.stringify(root)} is not a directory`,
      'pass the directory of an unpacked Kubernetes source tree',
    );
  try {
    await fs.access(path.join(root, 'cmd/kubeadm'));
  } catch {
    throw new UsageError(
      `${JSON.stringify(root)} is not a Kubernetes source tree: it has no cmd/kubeadm`,
      'pass the top directory of the Kubernetes source (where go.mod and cmd/ are)',
    );
  }
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KfError(`cannot read ${file}: ${messageOf(err)}`, 'check the permissions of the source tree');
  }
}

/**
 * Small files of a tree by relative path (e.g. .go-version): regular files of at most
 * `maxBytes`, read through no link out of the tree; missing ones are undefined.
 */
export async function readTreeFiles(root: string, rels: readonly string[], maxBytes = 1 << 20): Promise<SourceFiles> {
  const files: SourceFiles = {};
  const realRoot = await fs.realpath(root);
  for (const rel of rels) {
    files[rel] = undefined;
    let real: string;
    try {
      real = await fs.realpath(path.join(root, rel));
    } catch {
      continue;
    }
    if (path.relative(realRoot, real).startsWith('..')) continue;
    const st = await fs.stat(real);
    if (!st.isFile()) continue;
    if (st.size > maxBytes) {
      throw new KfError(`${path.join(root, rel)} is ${st.size} bytes, more than ${maxBytes}`, 'check the source tree');
    }
    files[rel] = await readIfExists(real);
  }
  return files;
}

/** Reads every file the patch may touch (missing ones are undefined). */
export async function readPatchSources(root: string): Promise<SourceFiles> {
  const files: SourceFiles = {};
  for (const rel of PATCH_FILES) files[rel] = await readIfExists(path.join(root, rel));
  return files;
}

const INIT_SH = 'hack/lib/init.sh';

/** The patch's inputs: the files it may read, and which cert.go the build compiles. */
export interface PatchInputs {
  files: SourceFiles;
  /** CLIENT_GO_CERT_FILE, or the vendored copy's path when vendor/ holds a real copy */
  clientGoCertFile: string;
}

/**
 * Reads the patch targets the way `go build` will see them: client-go's util/cert is found
 * through vendor/ like any import (core/patch.ts PatchOptions.clientGoCertFile). `mode`
 * unknown: read from the tree, module-mode lookup when hack/lib/init.sh is missing.
 */
export async function readPatchInputs(root: string, mode?: BuildMode): Promise<PatchInputs> {
  const files = await readPatchSources(root);
  let buildMode = mode;
  if (buildMode === undefined) {
    buildMode = (await readIfExists(path.join(root, INIT_SH))) === undefined ? 'module' : await readBuildMode(root);
  }
  const dir = compiledPackageDir(root, buildMode, CLIENT_GO_CERT_PACKAGE, CLIENT_GO_CERT_IMPORTER);
  const clientGoCertFile = dir === undefined ? CLIENT_GO_CERT_FILE : `${dir}/cert.go`;
  if (!(clientGoCertFile in files)) files[clientGoCertFile] = await readIfExists(path.join(root, clientGoCertFile));
  return { files, clientGoCertFile };
}

/**
 * GOPATH mode where hack/lib/init.sh exports GO111MODULE=off (the official build up to 1.29),
 * module mode otherwise.
 */
export async function readBuildMode(root: string): Promise<BuildMode> {
  const initSh = await readIfExists(path.join(root, INIT_SH));
  if (initSh === undefined) {
    throw new KfError(
      `${path.join(root, INIT_SH)} is missing, so the build mode cannot be read`,
      'pass a complete Kubernetes source tree',
    );
  }
  return /^[ \t]*export[ \t]+GO111MODULE=["']?off\b/m.test(initSh) ? 'gopath' : 'module';
}

/**
 * The tree's major.minor from its changelog (CHANGELOG/CHANGELOG-1.N.md, or CHANGELOG-1.N.md at
 * the top in old trees): the highest N. Undefined when there is none. Only minor precision.
 */
export async function readTreeVersion(root: string): Promise<KubeVersion | undefined> {
  let best = -1;
  for (const dir of [path.join(root, 'CHANGELOG'), root]) {
    let names: string[] = [];
    try {
      names = await fs.readdir(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      const m = /^CHANGELOG-1\.(\d+)\.md$/.exec(name);
      if (m) best = Math.max(best, Number(m[1]));
    }
  }
  return best < 0 ? undefined : { major: 1, minor: best, patch: 0, pre: '' };
}

interface PendingWrite {
  rel: string;
  real: string;
  tmp: string;
  before: string;
  after: string;
}

/**
 * Writes the patched files: each to its real path (a symlinked directory or file stays a link),
 * with the original mode. All or nothing: every temp file is written and checked first, then
 * renamed; if a rename fails, the files already replaced get their old content back.
 */
export async function writePatch(root: string, result: PatchResult): Promise<string[]> {
  const pending: PendingWrite[] = [];
  try {
    for (const f of result.files) {
      const real = await fs.realpath(path.join(root, f.file));
      const current = await fs.readFile(real, 'utf8');
      if (current !== f.before) {
        throw new KfError(`${f.file} changed while it was being patched`, 'run the patch again');
      }
      const { mode } = await fs.stat(real);
      const tmp = path.join(path.dirname(real), `.${path.basename(real)}.kf-${process.pid}.tmp`);
      pending.push({ rel: f.file, real, tmp, before: f.before, after: f.after });
      await fs.writeFile(tmp, f.after, { mode: mode & 0o7777, flag: 'wx' });
      await fs.chmod(tmp, mode & 0o7777);
    }
  } catch (err) {
    await Promise.all(pending.map((p) => fs.rm(p.tmp, { force: true })));
    if (err instanceof KfError) throw err;
    throw new KfError(
      `cannot write the patched files: ${messageOf(err)}`,
      'check that the source tree is writable; nothing was changed',
    );
  }
  const done: PendingWrite[] = [];
  try {
    for (const p of pending) {
      await fs.rename(p.tmp, p.real);
      done.push(p);
    }
  } catch (err) {
    for (const p of done) await fs.writeFile(p.real, p.before).catch(() => undefined);
    await Promise.all(pending.map((p) => fs.rm(p.tmp, { force: true })));
    throw new KfError(
      `cannot replace the patched files: ${messageOf(err)}`,
      'check the source tree; files already replaced were restored',
    );
  }
  return pending.map((p) => p.rel);
}
