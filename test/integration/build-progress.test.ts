import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { goImage, runCli, skipDockerTests } from '../helpers/env.js';
import { runCliInPty } from '../helpers/pty.js';
import { leftoverContainers, makeFixtureRepo, tempDir, type FixtureRepo } from './docker-helpers.js';

// Progress of a real build of the Kubernetes-shaped GOPATH fixture: without a TTY
// one line per long phase with its elapsed time, --verbose streams `go build -v`; on a real pty
// the spinner tells how far the source fill and the compile are.

const ESC = String.fromCharCode(27);

describe.skipIf(skipDockerTests)('build progress', () => {
  let work: string;
  let repo: FixtureRepo;
  beforeAll(() => {
    work = tempDir('kf-it-progress-');
    repo = makeFixtureRepo(work, 'gopath');
  });
  afterAll(async () => {
    fs.rmSync(work, { recursive: true, force: true });
    expect(await leftoverContainers()).toEqual([]);
  });

  // a cache dir per run and --no-source-volume off: every run fills its own source volume
  const args = (name: string, extra: string[]) => [
    'build',
    '--kubernetes-version',
    'v1.20.2',
    '--commit',
    repo.commit,
    '--go-version',
    '1.19.8',
    '--image',
    goImage,
    '--repo',
    repo.dir,
    '--out',
    path.join(work, name),
    '--cache-dir',
    path.join(work, `cache-${name}`),
    '--no-cache',
    ...extra,
  ];

  // first: source volumes are per source (not per cache dir), so only the first build fills one
  it(
    'on a pty the spinner shows the fill in MB and the packages compiled, and stays bounded',
    () => {
      const r = runCliInPty(args('k-pty', ['--verbose', '--validity', '151y']), {
        cols: 120,
        term: 'xterm-256color',
        timeout: 10 * 60_000,
      });
      expect(r.status, r.text.slice(-2000)).toBe(0);
      expect(r.text).toMatch(
        /filling source volume kubeadm-forever-src-[0-9a-f]+ \(once per source\) \d+\.\d\/\d+\.\d MB/,
      );
      expect(r.text).toMatch(/compiling kubeadm v1\.20\.2 for linux\/amd64 \d+ packages compiled \(\d/);
      expect(r.bytes).toBeLessThan(4 * 1024 * 1024);
    },
    10 * 60_000,
  );

  it(
    '--verbose without a TTY: each phase named, the compiler names its packages, long phases end with their time',
    () => {
      const r = runCli(args('k-verbose', ['--verbose', '--validity', '150y']), { timeout: 10 * 60_000 });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/^• building kubeadm v1\.20\.2 for linux\/amd64 in /m);
      // `go build -v` prints the import path of every package it compiles: kubeadm's main package last
      expect(r.stderr).toMatch(/^k8s\.io\/kubernetes\/cmd\/kubeadm$/m);
      // the compile is a phase of its own, named after the fill, ending with its time
      expect(r.stderr).toMatch(/^• compiling kubeadm v1\.20\.2 for linux\/amd64\nk8s\.io\/kubernetes/m);
      // a phase gets its ✔ line only when it took 2 s or more (how long depends on the machine;
      // the rule itself is in test/unit/ui-output.test.ts): every such line carries its time
      for (const line of r.stderr.split('\n').filter((l) => l.startsWith('✔'))) {
        const m = /^✔ .+ \((?:(\d+\.\d)s|(\d+)m\d\ds)\)$/.exec(line);
        expect(m, line).not.toBeNull();
        if (m![1] !== undefined) expect(Number(m![1]), line).toBeGreaterThanOrEqual(2);
      }
      expect(r.stderr).not.toContain(ESC);
    },
    10 * 60_000,
  );
});
