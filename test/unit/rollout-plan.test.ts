import { describe, expect, it } from 'vitest';
import { formatPlan, planRollout } from '../../src/core/rollout-plan.js';
import type { FleetNode } from '../../src/core/inventory.js';
import { UsageError } from '../../src/core/errors.js';

const cp = (name: string): FleetNode => ({ name, role: 'control-plane', address: name });
const wk = (name: string): FleetNode => ({ name, role: 'worker', address: name });
const nodes = [wk('w3'), cp('cp2'), wk('w1'), cp('cp1'), wk('w2'), cp('cp3'), wk('w4')];

describe('rollout plan', () => {
  it('orders preflight, one ca extend, CA installs, control planes one by one, worker batches, cluster objects', () => {
    const p = planRollout({ nodes, maxUnavailable: 2, clusterSteps: true });
    expect(p.seed).toBe('cp1');
    expect(p.steps.map((s) => s.id)).toEqual([
      'preflight',
      'copy-tool:cp1',
      'copy-tool:cp2',
      'copy-tool:cp3',
      'copy-tool:w1',
      'copy-tool:w2',
      'copy-tool:w3',
      'copy-tool:w4',
      'ca-extend:cp1',
      'ca-install:cp2',
      'ca-install:cp3',
      'ca-install:w1',
      'ca-install:w2',
      'ca-install:w3',
      'ca-install:w4',
      'renew:cp1',
      'renew:cp2',
      'renew:cp3',
      'kubelet-cert:cp1',
      'kubelet-cert:cp2',
      'kubelet-cert:cp3',
      'kubelet-cert:w1',
      'kubelet-cert:w2',
      'kubelet-cert:w3',
      'kubelet-cert:w4',
      'cluster-objects',
    ]);
    expect(p.steps.filter((s) => s.phase === 'workers').map((s) => s.batch)).toEqual([1, 1, 2, 2]);
    const renew = p.steps.find((s) => s.id === 'renew:cp2')!;
    expect(renew.gates.map((g) => g.kind)).toEqual([
      'apiserver-readyz',
      'etcd-healthy',
      'node-ready',
      'served-cert-not-after',
    ]);
    expect(p.steps.find((s) => s.id === 'kubelet-cert:w1')!.actions).toEqual([
      'kubelet-csr',
      'kubelet-sign',
      'kubelet-install',
      'kubelet-restart',
    ]);
    expect(p.steps.filter((s) => s.actions.includes('ca-extend'))).toHaveLength(1);
  });

  it('files-only leaves out every step and gate that needs a running cluster', () => {
    const p = planRollout({ nodes, maxUnavailable: 1, clusterSteps: false, seed: 'cp2' });
    expect(p.steps.some((s) => s.id.startsWith('renew:') || s.phase === 'cluster-objects')).toBe(false);
    // the control planes' kubelet certificates stay: they are files, signed on the seed
    expect(p.steps.filter((s) => s.phase === 'control-plane').map((s) => s.id)).toEqual([
      'kubelet-cert:cp1',
      'kubelet-cert:cp2',
      'kubelet-cert:cp3',
    ]);
    expect(p.steps.flatMap((s) => s.gates).some((g) => g.cluster)).toBe(false);
    expect(p.steps.filter((s) => s.phase === 'workers').map((s) => s.batch)).toEqual([1, 2, 3, 4]);
    expect(p.steps.find((s) => s.phase === 'ca-extend')!.id).toBe('ca-extend:cp2');
    expect(formatPlan(p)).toContain('--files-only');
  });

  it('refuses duplicates, no control plane, a worker as seed and a bad --max-unavailable', () => {
    expect(() => planRollout({ nodes: [cp('a'), cp('a')], maxUnavailable: 1, clusterSteps: true })).toThrow(
      /node "a" is listed twice/,
    );
    expect(() => planRollout({ nodes: [wk('a')], maxUnavailable: 1, clusterSteps: true })).toThrow(
      /no control-plane node/,
    );
    expect(() => planRollout({ nodes, maxUnavailable: 1, clusterSteps: true, seed: 'w1' })).toThrow(
      UsageError,
    );
    for (const m of [0, -1, 1.5, NaN])
      expect(() => planRollout({ nodes, maxUnavailable: m, clusterSteps: true })).toThrow(
        /--max-unavailable/,
      );
  });

  it('prints one numbered line per step and its gates', () => {
    const text = formatPlan(
      planRollout({ nodes: [cp('cp1'), wk('w1')], maxUnavailable: 1, clusterSteps: true }),
    );
    expect(text).toMatch(/^ {2}1\. preflight: every node in parallel \(2\)/);
    expect(text).toContain('gate: apiserver-readyz on cp1');
    expect(text).toContain('workers [batch 1]: w1: a CSR from its own key, signed on cp1');
  });
});
