import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleBench, runBench } from '../helpers/bench.js';
import { goImage, k8s1202, skipDockerTests } from '../helpers/env.js';
import { composeShape } from '../helpers/fixtures.js';
import { sourceVolumes } from '../helpers/source-volumes.js';
import { tempDir } from './docker-helpers.js';

// The benchmark (bench/run.ts, bundled as npm run bench does) on the small Kubernetes-shaped fixture: a real plain
// `go build` and real runs of the tool (from the tree, from a tarball the bench packs of it, for
// two platforms), so the table it prints is made of measurements.
// Its numbers are not checked against the targets here (that is the real bench's job on the
// 277 MB tree); its shape, its exit codes and its cleanup are.

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
    bundleBench();
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
    'prints every row (a)-(h) with measured times, ratios to the baseline, RSS and container counts',
    () => {
      const sourcesBefore = sourceVolumeNames();
      const r = runBench(['--tree', tree, '--version-file', versionFile, '--image', goImage, '--json']);
      expect(r.stderr).toBe(r.status === 0 ? r.stderr : '<bench failed>');
      expect(r.status).toBe(0);
      const doc = JSON.parse(r.stdout);
      const ids = ['a', 'b', 'c', 'd', 'e', 'f1', 'f2', 'f3', 'g1', 'g2', 'h1', 'h2'];
      expect(doc.rows.map((row: { id: string }) => row.id)).toEqual(ids);
      for (const row of doc.rows) expect(row.step.startsWith(`(${row.id}) `)).toBe(true);
      const byId = Object.fromEntries(doc.rows.map((row: { id: string }) => [row.id, row]));
      const { a, d, e, f3, g1, g2, h1, h2 } = byId;
      expect(a.ratio).toBe(1);
      for (const id of ids.filter((x) => x !== 'e')) {
        const row = byId[id];
        expect(row.seconds, id).toBeGreaterThan(0);
        expect(Number.isFinite(row.ratio), id).toBe(true);
        expect(row.ratio, id).toBeCloseTo(row.seconds / a.seconds, 1);
      }
      // Builds (b), (c), (f1) and (f2) each ran exactly one container, and its phases were timed.
      for (const id of ['b', 'c', 'f1', 'f2']) {
        const row = byId[id];
        expect(row.containers, id).toBe(1);
        expect(row.phases, id).toHaveLength(1);
        expect(row.phases[0].goBuild, id).toBeGreaterThan(0);
        expect(row.phases[0].streamTree, id).toBeGreaterThanOrEqual(0);
        expect(typeof row.pass, id).toBe('boolean');
      }
      // A cache hit starts no container, whatever the machine's load does to its seconds.
      for (const row of [d, f3]) {
        expect(row.containers).toBe(0);
        expect(row.pass).toBe(row.seconds <= 0.3 && row.containers === 0);
      }
      // Start-up: --help has a target, check none.
      expect(g1.pass).toBe(g1.seconds <= 0.2);
      expect(g2.target).toBe('-');
      expect(g2.pass).toBeNull();
      // One build for two platforms runs two containers; the two single builds one each.
      expect(h1.containers).toBe(2);
      expect(h1.phases).toHaveLength(2);
      expect(h2.containers).toBe(2);
      expect(h2.containersEach).toEqual([1, 1]);
      expect(h1.pass).toBeNull();
      expect(h2.pass).toBeNull();
      expect(h1.ratioToH2).toBeCloseTo(h1.seconds / h2.seconds, 1);
      expect(e.rssMb).toBeGreaterThan(20);
      expect(typeof e.pass).toBe('boolean');
      expect(e.rssAt).toMatch(/^(b|c|d|f1|f2|f3|g1|g2|g2-setup|h1|h2)$/);
      expect(doc.machine.cores).toBeGreaterThan(0);
      expect(doc.machine.loadAtStart).toHaveLength(3);
      // the floor under the start-up rows, measured in the same run
      expect(doc.machine.bareNodeSeconds).toBeGreaterThan(0);
      expect(doc.machine.bareNodeSeconds).toBeLessThan(
        doc.rows.find((row: { id: string }) => row.id === 'g1').seconds,
      );
      // the tarball the bench packed from the tree (in its temp dir, removed with it)
      expect(doc.machine.tarball).toMatch(/source\.tar\.gz$/);
      expect(doc.machine.tarballSha256).toMatch(/^[0-9a-f]{64}$/);
      expect(fs.existsSync(doc.machine.tarball)).toBe(false);
      // The human table goes to stderr with --json.
      expect(r.stderr).toMatch(/\| \(e\) tool peak RSS/);
      expect(r.stderr).toMatch(/\| \(h2\) tool amd64, then arm64/);
      expect(r.stderr).toMatch(/\(h1\) \/ \(h2\): [\d.]+/);
      expect(r.stderr).not.toMatch(/WARNING: \(\w+\) ran/);
      expect(benchLeftovers()).toEqual(before);
      // (b) and (f1) filled the source volumes of the tree and the tarball (the stream phase);
      // the bench removed both again
      expect(r.stderr).toMatch(/\(b\) container phases: before [\d.]+ s, stream tree in [\d.]+ s/);
      expect(r.stderr).toMatch(/\(f1\) container phases: before [\d.]+ s, stream tree in [\d.]+ s/);
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

  it('refuses a --tarball that is not a file with exit 2, before building anything', () => {
    const missing = path.join(work, 'missing.tar.gz');
    const r = runBench([
      '--tree',
      tree,
      '--version-file',
      versionFile,
      '--tarball',
      missing,
      '--image',
      goImage,
    ]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(
      `error: --tarball ${missing} is not a file\nnext: pass a .tar.gz of the same tree\n`,
    );
    expect(benchLeftovers()).toEqual(before);
  });
});
