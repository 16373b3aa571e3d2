import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { goImage, k8s1202, repoRoot, skipDockerTests } from '../helpers/env.js';
import { composeShape } from '../helpers/fixtures.js';
import { sourceVolumes } from '../helpers/source-volumes.js';
import { tempDir } from './docker-helpers.js';

// The benchmark script (bench/run.mjs) on the small Kubernetes-shaped fixture: a real plain
// `go build` and three real runs of the tool, so the table it prints is made of measurements.
// Its numbers are not checked against the targets here (that is the real bench's job on the
// 277 MB tree); its shape, its exit codes and its cleanup are.

const benchScript = path.join(repoRoot, 'bench/run.mjs');

function runBench(args: string[]) {
  return spawnSync(process.execPath, [benchScript, ...args], {
    encoding: 'utf8',
    timeout: 20 * 60_000,
    maxBuffer: 16 * 1024 * 1024,
  });
}

function benchLeftovers() {
  const volumes = execFileSync('docker', ['volume', 'ls', '-q', '--filter', 'name=kf-bench-gocache-'], {
    encoding: 'utf8',
  });
  const containers = execFileSync('docker', ['ps', '-aq', '--filter', 'label=kubeadm-forever-bench=1'], {
    encoding: 'utf8',
  });
  return {
    volumes: volumes.split('\n').filter(Boolean).sort(),
    containers: containers.split('\n').filter(Boolean),
  };
}

function sourceVolumeNames(): string[] {
  return sourceVolumes().map((v) => v.name);
}

describe.skipIf(skipDockerTests)('npm run bench on the small fixture tree', () => {
  let work: string;
  let versionFile: string;
  let tree: string;
  let before: ReturnType<typeof benchLeftovers>;

  beforeAll(() => {
    work = tempDir('kf-it-bench-');
    versionFile = path.join(work, 'kubeadm-version.json');
    tree = composeShape('gopath', path.join(work, 'tree'));
    fs.writeFileSync(versionFile, k8s1202.versionJson);
    before = benchLeftovers();
  });

  afterAll(() => {
    fs.rmSync(work, { recursive: true, force: true });
  });

  it(
    'prints the five rows with measured times, ratios to the baseline, RSS and container counts',
    () => {
      const sourcesBefore = sourceVolumeNames();
      const r = runBench(['--tree', tree, '--version-file', versionFile, '--image', goImage, '--json']);
      expect(r.stderr).toBe(r.status === 0 ? r.stderr : '<bench failed>');
      expect(r.status).toBe(0);
      const doc = JSON.parse(r.stdout);
      expect(doc.rows.map((row: { step: string }) => row.step.slice(0, 3))).toEqual([
        '(a)',
        '(b)',
        '(c)',
        '(d)',
        '(e)',
      ]);
      const [a, b, c, d, e] = doc.rows;
      expect(a.ratio).toBe(1);
      for (const row of [a, b, c, d]) {
        expect(row.seconds).toBeGreaterThan(0);
        expect(Number.isFinite(row.ratio)).toBe(true);
        expect(row.ratio).toBeCloseTo(row.seconds / a.seconds, 1);
      }
      // Builds (b) and (c) each ran exactly one container, and its phases were timed.
      for (const row of [b, c]) {
        expect(row.containers).toBe(1);
        expect(row.phases[0].goBuild).toBeGreaterThan(0);
        expect(row.phases[0].streamTree).toBeGreaterThanOrEqual(0);
      }
      // A cache hit starts no container, whatever the machine's load does to its seconds.
      expect(d.containers).toBe(0);
      expect(d.pass).toBe(d.seconds <= 1.5 && d.containers === 0);
      expect(e.rssMb).toBeGreaterThan(20);
      expect(typeof e.pass).toBe('boolean');
      expect(doc.machine.cores).toBeGreaterThan(0);
      expect(doc.machine.loadAtStart).toHaveLength(3);
      // The human table goes to stderr with --json.
      expect(r.stderr).toMatch(/\| \(e\) tool peak RSS/);
      expect(benchLeftovers()).toEqual(before);
      // (b) filled the tree's source volume (the stream phase); the bench removed it again
      expect(r.stderr).toMatch(/\(b\) container phases: before [\d.]+ s, stream tree in [\d.]+ s/);
      expect(sourceVolumeNames().filter((v) => !sourcesBefore.includes(v))).toEqual([]);
    },
    20 * 60_000,
  );

  it(
    "exits non-zero naming the step when the tool's build fails, and still cleans up",
    () => {
      const bad = path.join(work, 'bad-version.txt');
      fs.writeFileSync(bad, 'this is not the output of kubeadm version\n');
      const r = runBench(['--tree', tree, '--version-file', bad, '--image', goImage]);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/error: \(b\) the tool's build failed/);
      expect(r.stderr).toMatch(/\nnext: /);
      expect(benchLeftovers()).toEqual(before);
    },
    20 * 60_000,
  );

  it('refuses bad arguments with exit 2 before building anything', () => {
    const r = runBench(['--tree', tree]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^error: --tree needs --version-file\nnext: /);
  });
});
