import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nodeLayout, type NodeLayout } from '../../src/node/renew/node.js';
import { repoRoot } from '../helpers/env.js';

let dir: string;
let layout: NodeLayout;
const fixtures = path.join(repoRoot, 'test/fixtures/renew/manifests-v1.20.2');

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-test-restart-'));
  layout = nodeLayout(path.join(dir, 'k8s'), path.join(dir, 'kubelet'));
  fs.mkdirSync(layout.kubernetesDir);
  fs.cpSync(fixtures, layout.manifestsDir, { recursive: true });
  fs.writeFileSync(path.join(layout.manifestsDir, 'my-addon.yaml'), 'kind: Pod\n');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

// A signal during the restart, seen where only a process shows it: the exit code and the
// two-line error of the interrupt guard (the built dist/node/renew/restart.js in a child).

describe('restart interrupted (the interrupt guard)', () => {
  const restartModule = pathToFileURL(path.join(repoRoot, 'dist/node/renew/restart.js')).href;

  /** restartControlPlane --restart manifests in a child, SIGINT once it has moved the manifests. */
  async function interruptedRestart(
    whileParked: () => void,
  ): Promise<{ code: number | null; stderr: string }> {
    const script = `
      const { restartControlPlane } = await import(${JSON.stringify(restartModule)});
      await restartControlPlane(${JSON.stringify(layout)}, {
        strategy: 'manifests', waitSeconds: 60, crictl: ${JSON.stringify(path.join(dir, 'no-crictl'))},
        progress: { detail: (l) => process.stdout.write(l + '\\n') },
      });
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve) =>
      child.stdout.on('data', (c: Buffer) => {
        stdout += c.toString();
        if (stdout.includes('waiting 60s')) resolve();
      }),
    );
    whileParked();
    child.kill('SIGINT');
    return { code: await exited, stderr };
  }

  it('Ctrl-C during the wait puts the manifests back, says so in the two-line error, exits 130', async () => {
    const before = fs.readdirSync(layout.manifestsDir).sort();
    const r = await interruptedRestart(() => undefined);
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(
      new RegExp(
        `^\\nerror: interrupted by SIGINT; putting the static pod manifests back in ${layout.manifestsDir}\\nnext: .+\\n$`,
      ),
    );
    expect(fs.readdirSync(layout.manifestsDir).sort()).toEqual(before);
    expect(fs.readdirSync(layout.kubernetesDir)).toEqual(['manifests']);
  }, 20_000);

  it('a put-back that fails names where the manifests are', async () => {
    const r = await interruptedRestart(() => fs.rmSync(layout.manifestsDir, { recursive: true }));
    expect(r.code).toBe(130);
    const parked = fs
      .readdirSync(layout.kubernetesDir)
      .find((n) => n.startsWith('.kubeadm-forever-manifests-'));
    expect(parked).toBeDefined();
    expect(fs.readdirSync(path.join(layout.kubernetesDir, parked!))).toContain('etcd.yaml');
    expect(r.stderr).toContain(
      `warning: the static pod manifests are not all back in ${layout.manifestsDir} (`,
    );
    expect(r.stderr).toContain(`move the files left in ${path.join(layout.kubernetesDir, parked!)} there\n`);
  }, 20_000);
});
