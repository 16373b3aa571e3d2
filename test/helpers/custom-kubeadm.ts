import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readPatchSources, writePatch } from '../../src/adapters/source-tree.js';
import { computePatch } from '../../src/core/patch.js';
import { resolveValidityPair } from '../../src/core/validity.js';
import { fixturesDir } from './env.js';
import { buildKubeadmFixture, copyTree, k8sTree } from './fixtures.js';

export const customKubeadmName = 'kubeadm-v1.20.2-199y';

/**
 * kubeadm 1.20.2 patched by this tool's patch stage (199y leaves, 200y CAs) on a copy of the
 * pristine tree, built like stockKubeadm() and cached under test/.fixtures. The patch goes
 * through the same core + adapter functions the `patch` command uses.
 */
export async function customKubeadm(): Promise<string> {
  const out = path.join(fixturesDir, customKubeadmName);
  if (fs.existsSync(out)) return out;
  const tree = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-test-tree-'));
  try {
    copyTree(k8sTree(), tree);
    const result = computePatch(await readPatchSources(tree), resolveValidityPair('199y', '200y'));
    await writePatch(tree, result);
    return buildKubeadmFixture(tree, customKubeadmName);
  } finally {
    fs.rmSync(tree, { recursive: true, force: true });
  }
}
