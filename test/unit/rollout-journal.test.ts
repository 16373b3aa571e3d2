import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { planRollout } from '../../src/core/rollout-plan.js';
import type { FleetNode } from '../../src/core/inventory.js';
import { Journal, planDigest, type JournalDoc } from '../../src/fleet/journal.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-journal-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const nodes: FleetNode[] = [
  { name: 'cp1', role: 'control-plane', address: 'cp1' },
  { name: 'w1', role: 'worker', address: 'w1' },
  { name: 'w2', role: 'worker', address: 'w2' },
];
const plan = planRollout({ nodes, maxUnavailable: 1, clusterSteps: false });

describe('rollout journal', () => {
  it('is written atomically, 0600, and read back by --resume with the finished steps', () => {
    const file = path.join(tmp, 'a', 'journal.json');
    const j = Journal.open(file, plan, { resume: false });
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    j.mark('preflight', 'done');
    j.mark('ca-extend:cp1', 'running');
    expect(fs.readdirSync(path.dirname(file))).toEqual(['journal.json']);
    const again = Journal.open(file, plan, { resume: true });
    expect(again.isDone('preflight')).toBe(true);
    expect(again.isDone('ca-extend:cp1')).toBe(false);
    expect(again.document.steps['ca-extend:cp1']!.state).toBe('running');
  });

  it("keeps what each step's gates saw with its state, without the step repeated", () => {
    const file = path.join(tmp, 'gates.json');
    const j = Journal.open(file, plan, { resume: false });
    const seen = { node: 'w1', gate: 'node-ready' as const, saw: 'Ready, lease renewed', seconds: 4.2 };
    j.mark('kubelet-cert:w1', 'done', { gates: [{ step: 'kubelet-cert:w1', ok: true, ...seen }] });
    j.mark('kubelet-cert:w2', 'failed', {
      detail: 'w2: gate node-ready not passed within 300 s',
      gates: [{ step: 'kubelet-cert:w2', ok: false, ...seen, node: 'w2', seconds: 300 }],
    });
    j.mark('preflight', 'done');
    const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as JournalDoc;
    expect(doc.steps['kubelet-cert:w1']).toMatchObject({ state: 'done', gates: [{ ok: true, ...seen }] });
    expect(doc.steps['kubelet-cert:w1']!.gates![0]).not.toHaveProperty('step');
    expect(doc.steps['kubelet-cert:w2']).toMatchObject({
      state: 'failed',
      detail: 'w2: gate node-ready not passed within 300 s',
      gates: [{ node: 'w2', ok: false, seconds: 300 }],
    });
    expect(doc.steps.preflight).not.toHaveProperty('gates');
  });

  it('refuses to start over an existing journal, to resume another plan, or to resume nothing', () => {
    const file = path.join(tmp, 'b.json');
    Journal.open(file, plan, { resume: false }).mark('preflight', 'done');
    expect(() => Journal.open(file, plan, { resume: false })).toThrow(
      /a rollout journal exists at .*1 of 10 steps done/,
    );
    const other = planRollout({ nodes, maxUnavailable: 2, clusterSteps: false });
    expect(planDigest(other)).not.toBe(planDigest(plan));
    expect(() => Journal.open(file, other, { resume: true })).toThrow(/is of another plan/);
    expect(() => Journal.open(path.join(tmp, 'none.json'), plan, { resume: true })).toThrow(
      /no rollout journal/,
    );
  });

  it('refuses a journal that is not one: a directory, garbage, another document', () => {
    const dir = path.join(tmp, 'dir.json');
    fs.mkdirSync(dir);
    expect(() => Journal.open(dir, plan, { resume: true })).toThrow(/is not a regular file/);
    const junk = path.join(tmp, 'junk.json');
    fs.writeFileSync(junk, '{not json');
    expect(() => Journal.open(junk, plan, { resume: true })).toThrow(/is not JSON/);
    fs.writeFileSync(junk, '{"kind":"other"}');
    expect(() => Journal.open(junk, plan, { resume: true })).toThrow(/is not a rollout journal/);
  });
});
