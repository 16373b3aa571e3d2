import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nodeLayout, type NodeLayout } from '../../src/node/renew/node.js';
import {
  chooseStrategy,
  crictlPsArgs,
  presentComponents,
  restartControlPlane,
} from '../../src/node/renew/restart.js';
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

describe('restart strategies', () => {
  it('auto picks crictl only when it answers', () => {
    expect(chooseStrategy('auto', true)).toBe('crictl');
    expect(chooseStrategy('auto', false)).toBe('manifests');
    expect(chooseStrategy('manifests', true)).toBe('manifests');
    expect(chooseStrategy('none', true)).toBe('none');
  });

  it('asks crictl for one component by an anchored name', () => {
    expect(crictlPsArgs('etcd')).toEqual(['ps', '--quiet', '--state', 'running', '--name', '^etcd$']);
  });

  it('knows which control-plane manifests the node has', () => {
    fs.rmSync(path.join(layout.manifestsDir, 'etcd.yaml'));
    expect(presentComponents(layout)).toEqual([
      'kube-apiserver',
      'kube-controller-manager',
      'kube-scheduler',
    ]);
  });

  it('manifests: moves the control-plane manifests out for the wait, then back byte-identical', async () => {
    const before = Object.fromEntries(
      fs
        .readdirSync(layout.manifestsDir)
        .map((n) => [n, fs.readFileSync(path.join(layout.manifestsDir, n), 'utf8')]),
    );
    const seen: string[][] = [];
    const watch = setInterval(() => seen.push(fs.readdirSync(layout.manifestsDir).sort()), 100);
    const t0 = Date.now();
    const r = await restartControlPlane(layout, {
      strategy: 'manifests',
      waitSeconds: 1,
      crictl: path.join(dir, 'no-crictl'),
    });
    clearInterval(watch);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
    expect(r.strategy).toBe('manifests');
    expect(r.components).toEqual(['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler']);
    // during the wait only the non-control-plane manifest stayed
    expect(seen.some((names) => names.length === 1 && names[0] === 'my-addon.yaml')).toBe(true);
    const after = Object.fromEntries(
      fs
        .readdirSync(layout.manifestsDir)
        .map((n) => [n, fs.readFileSync(path.join(layout.manifestsDir, n), 'utf8')]),
    );
    expect(after).toEqual(before);
    expect(fs.readdirSync(layout.kubernetesDir)).toEqual(['manifests']);
  });

  it('auto without a crictl falls back to manifests; none touches nothing', async () => {
    const r = await restartControlPlane(layout, {
      strategy: 'auto',
      waitSeconds: 0,
      crictl: path.join(dir, 'no-crictl'),
    });
    expect(r.strategy).toBe('manifests');
    const none = await restartControlPlane(layout, {
      strategy: 'none',
      waitSeconds: 0,
      crictl: 'crictl',
    });
    expect(none).toMatchObject({ strategy: 'none', components: [] });
    expect(fs.readdirSync(layout.manifestsDir)).toHaveLength(5);
  });
});
