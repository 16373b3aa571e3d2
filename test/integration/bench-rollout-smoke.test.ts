import fs from 'node:fs';
import os from 'node:os';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RolloutGrowth, RolloutRow } from '../../bench/rollout-rows.js';
import { bundleBench, runBench } from '../helpers/bench.js';

// The bench's rollout rows (npm run bench -- --rollout), kept small: one control plane and one,
// then two files-only workers, at --max-unavailable 2, per-node rows measured once. Its numbers are not judged here
// (they depend on the machine); its rows, their ratios to the plain-ssh baseline of the same run
// and its cleanup are.

const tmpEntries = () => fs.readdirSync(os.tmpdir()).filter((e) => e.startsWith('kf-bench-rollout-'));

describe('npm run bench -- --rollout, small', { timeout: 540_000 }, () => {
  beforeAll(() => bundleBench());

  it('prints the per-node rows and one row per changing run, as ratios to one plain ssh', () => {
    const before = tmpEntries();
    const r = runBench(
      ['--rollout', '--workers', '1,2', '--max-unavailable', '2', '--runs', '1', '--json'],
      8 * 60_000,
    );
    expect(r.status, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { rows: RolloutRow[]; growth: RolloutGrowth[] };
    const ids = doc.rows.map((row) => row.id);
    expect(ids).toEqual(['r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'w1m2', 'w2m2']);
    const r0 = doc.rows[0]!;
    expect(r0.ratio).toBe(1);
    for (const row of doc.rows) {
      expect(row.step.startsWith(`(${row.id}) `), row.id).toBe(true);
      expect(row.seconds, row.id).toBeGreaterThan(0);
      expect(row.ratio, row.id).toBeCloseTo(row.seconds / r0.seconds, 0);
    }
    for (const row of doc.rows.filter((x) => x.workers !== undefined)) {
      expect(row.nodes).toBe(row.workers! + 1);
      expect(row.perNodeSeconds!).toBeCloseTo(row.seconds / row.nodes!, 2);
      // a changing run reaches every node several times: more than one plain ssh per node
      expect(row.seconds).toBeGreaterThan(r0.seconds * row.nodes!);
    }
    expect(doc.growth.map((g) => g.maxUnavailable)).toEqual([2]);
    for (const g of doc.growth) expect(Number.isFinite(g.secondsPerWorker)).toBe(true);
    // the human table on stderr beside the document
    expect(r.stderr).toMatch(/\| \(r0\) plain `ssh node true`/);
    expect(r.stderr).toMatch(/--max-unavailable 2: each added worker [\d.]+ s/);
    // its nodes and temp dirs are gone
    expect(tmpEntries()).toEqual(before);
  });

  it('refuses a bad worker list with exit 2 before starting a node', () => {
    const r = runBench(['--rollout', '--workers', '2,x']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^error: --workers "2,x" is not a list of whole numbers\nnext: /);
  });

  it('refuses two groups at once with exit 2 before starting anything', () => {
    const r = runBench(['--rollout', '--rollout-cluster']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /^error: more than one of --startup, --rollout and --rollout-cluster given\nnext: /,
    );
  });
});
