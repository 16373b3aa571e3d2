import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  readBuildMode,
  readPatchSources,
  readTreeVersion,
  writePatch,
} from '../../src/adapters/source-tree.js';
import { CLIENT_GO_CERT_FILE, CONSTANTS_FILE } from '../../src/core/patch-targets.js';
import { computePatch } from '../../src/core/patch.js';
import { resolveValidityPair } from '../../src/core/validity.js';
import { KfError } from '../../src/core/errors.js';
import { makeMiniTree, snapshot } from './fixtures/mini-tree.js';

const trees: string[] = [];
const tree = (opts?: Parameters<typeof makeMiniTree>[0]) => {
  const t = makeMiniTree(opts);
  trees.push(t);
  return t;
};
afterEach(() => {
  for (const t of trees.splice(0)) fs.rmSync(t, { recursive: true, force: true });
});
const v = resolveValidityPair('199y', '200y');

describe('source tree adapter', () => {
  it('reads the build mode from hack/lib/init.sh and the version from the changelog', async () => {
    expect(await readBuildMode(tree())).toBe('gopath');
    expect(await readBuildMode(tree({ gopath: false }))).toBe('module');
    expect(await readTreeVersion(tree({ minor: 31 }))).toEqual({ major: 1, minor: 31, patch: 0, pre: '' });
  });

  it('writes the real file behind the vendor symlink, keeps the link and the modes', async () => {
    const root = tree();
    const result = computePatch(await readPatchSources(root), v);
    // Patch through the vendored path: the link must survive and the staging file change.
    const viaVendor = {
      ...result,
      files: result.files.map((f) =>
        f.file === CLIENT_GO_CERT_FILE ? { ...f, file: 'vendor/k8s.io/client-go/util/cert/cert.go' } : f,
      ),
    };
    await writePatch(root, viaVendor);
    const link = path.join(root, 'vendor/k8s.io/client-go');
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.readlinkSync(link)).toBe('../../staging/src/k8s.io/client-go');
    const cert = path.join(root, CLIENT_GO_CERT_FILE);
    expect(fs.readFileSync(cert, 'utf8')).toContain('now.Add(time.Hour * 24 * 365 * 200).UTC()');
    expect(fs.statSync(cert).mode & 0o777).toBe(0o640);
    expect(fs.statSync(path.join(root, CONSTANTS_FILE)).mode & 0o777).toBe(0o644);
    expect(fs.readdirSync(path.dirname(cert)).filter((n) => n.includes('.tmp'))).toEqual([]);
  });

  it('writes a symlinked file through to its target', async () => {
    const root = tree();
    const real = path.join(root, CONSTANTS_FILE);
    const moved = path.join(root, 'elsewhere-constants.go');
    fs.renameSync(real, moved);
    fs.symlinkSync(path.relative(path.dirname(real), moved), real);
    await writePatch(root, computePatch(await readPatchSources(root), v));
    expect(fs.lstatSync(real).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(moved, 'utf8')).toContain('CertificateValidity = time.Hour * 24 * 365 * 199');
  });

  it('is all or nothing: a file that changed underneath stops every write, temp files removed', async () => {
    const root = tree();
    const result = computePatch(await readPatchSources(root), v);
    fs.appendFileSync(path.join(root, CLIENT_GO_CERT_FILE), '// edited meanwhile\n');
    const before = snapshot(root);
    await expect(writePatch(root, result)).rejects.toThrow(KfError);
    expect(snapshot(root)).toEqual(before);
  });
});
