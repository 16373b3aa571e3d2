import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { planRollout } from '../../src/core/rollout-plan.js';
import type { FleetNode } from '../../src/core/inventory.js';
import { Journal } from '../../src/fleet/journal.js';
import { formatProgressTable, nodeProgress } from '../../src/fleet/run-steps.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-progress-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const nodes: FleetNode[] = [
  { name: 'cp1', role: 'control-plane', address: 'cp1' },
  { name: 'w1', role: 'worker', address: 'w1' },
  { name: 'w2', role: 'worker', address: 'w2' },
  { name: 'w3', role: 'worker', address: 'w3' },
];
const plan = planRollout({ nodes, maxUnavailable: 1, clusterSteps: false });

describe('rollout progress by the journal', () => {
  it('names each node done, failed (at its step), in progress or untouched', () => {
    const j = Journal.open(path.join(tmp, 'j.json'), plan, { resume: false });
    for (const id of ['preflight', 'copy-tool:cp1', 'ca-extend:cp1', 'kubelet-cert:cp1', 'copy-tool:w1'])
      j.mark(id, 'done');
    j.mark('ca-install:w1', 'failed', { detail: 'node w1: copy failed' });
    j.mark('copy-tool:w2', 'running');
    const rows = nodeProgress(plan, nodes, j);
    expect(rows.map((r) => [r.name, r.state, `${r.stepsDone}/${r.steps}`, r.at])).toEqual([
      ['cp1', 'done', '3/3', undefined],
      ['w1', 'failed', '1/3', 'ca-install:w1'],
      ['w2', 'in progress', '0/3', 'copy-tool:w2'],
      ['w3', 'untouched', '0/3', undefined],
    ]);
    expect(formatProgressTable(rows).split('\n')).toEqual([
      'NODE  ROLE           STATE        STEPS  AT',
      'cp1   control-plane  done         3/3',
      'w1    worker         failed       1/3    ca-install:w1',
      'w2    worker         in progress  0/3    copy-tool:w2',
      'w3    worker         untouched    0/3',
    ]);
  });
});
