import { describe, expect, it } from 'vitest';
import { mergeNodes } from '../../src/fleet/cluster-nodes.js';
import type { FleetNode } from '../../src/core/inventory.js';

describe('rollout --kubeconfig with --inventory: mergeNodes', () => {
  const fromCluster: FleetNode[] = [
    { name: 'cp-1', role: 'control-plane', address: '10.0.0.1' },
    { name: 'w-1', role: 'worker', address: '10.0.0.11' },
    { name: 'w-2', role: 'worker', address: '10.0.0.12' },
  ];

  it('takes the roles from the cluster and how ssh reaches a node from the inventory', () => {
    const inv: FleetNode[] = [
      // the inventory calls it a worker: the cluster's label wins
      { name: 'cp-1', role: 'worker', address: 'bastion-cp-1', user: 'admin', port: 2222 },
    ];
    expect(mergeNodes(fromCluster, inv)).toEqual([
      { name: 'cp-1', role: 'control-plane', address: 'bastion-cp-1', user: 'admin', port: 2222 },
      { name: 'w-1', role: 'worker', address: '10.0.0.11' },
      { name: 'w-2', role: 'worker', address: '10.0.0.12' },
    ]);
  });

  it('keeps an inventory node the cluster does not list (a node that could not register)', () => {
    const inv: FleetNode[] = [{ name: 'w-3', role: 'worker', address: '10.0.0.13' }];
    expect(mergeNodes(fromCluster, inv).map((n) => n.name)).toEqual(['cp-1', 'w-1', 'w-2', 'w-3']);
  });

  it('is the cluster alone without an inventory', () => {
    expect(mergeNodes(fromCluster, [])).toEqual(fromCluster);
  });
});
