import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fixturesDir, runCli } from './env.js';
import { buildKubeadmFixture, copyTree, k8sTree } from './fixtures.js';

export const customKubeadmName = 'kubeadm-v1.20.2-199y';

/**
 * kubeadm 1.20.2 patched by this tool (`patch DIR --validity 199y --ca-validity 200y` on a copy
 * of the pristine tree) and built like stockKubeadm(); cached under test/.fixtures. Needs a
 * built CLI (dist/cli.js).
 */
export function customKubeadm(): string {
  const out = path.join(fixturesDir, customKubeadmName);
  if (fs.existsSync(out)) return out;
  const tree = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-test-tree-'));
  try {
    copyTree(k8sTree(), tree);
    const r = runCli(['patch', tree, '--validity', '199y', '--ca-validity', '200y']);
    if (r.status !== 0) throw new Error(`\`kubeadm-forever patch\` failed (exit ${String(r.status)}):\n${r.stderr}`);
    return buildKubeadmFixture(tree, customKubeadmName);
  } finally {
    fs.rmSync(tree, { recursive: true, force: true });
  }
}
