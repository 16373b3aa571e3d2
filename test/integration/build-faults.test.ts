import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliPath, goImage, k8s1202, k8sTarball, runCli, skipDockerTests } from '../helpers/env.js';
import { requireFile } from '../helpers/fixtures.js';
import {
  docker,
  leftoverContainers,
  listDir,
  makeFixtureRepo,
  tempDir,
  toolContainers,
  type FixtureRepo,
} from './docker-helpers.js';

// Each fault: non-zero exit, the two-line error (no stack trace), nothing at --out, no container.

// m: progress lines (a phase of 2 s or more without a TTY) may come before the error
const TWO_LINES = /^error: .+\nnext: .+\n$/m;

describe.skipIf(skipDockerTests)('build faults on a real Docker engine', () => {
  let work: string;
  let outDir: string;
  let repo: FixtureRepo;
  const sigintVolume = `kf-test-gocache-${process.pid}`;

  beforeAll(() => {
    work = tempDir('kf-it-faults-');
    outDir = path.join(work, 'out');
    fs.mkdirSync(outDir);
    repo = makeFixtureRepo(work, 'gopath');
  });

  afterAll(async () => {
    fs.rmSync(work, { recursive: true, force: true });
    await docker
      .getVolume(sigintVolume)
      .remove()
      .catch(() => undefined);
    expect(await leftoverContainers()).toEqual([]);
  });

  const args = (r: FixtureRepo, extra: string[] = []) => [
    'build',
    '--kubernetes-version',
    'v1.20.2',
    '--commit',
    r.commit,
    '--go-version',
    '1.19.8',
    '--image',
    goImage,
    '--repo',
    r.dir,
    '--out',
    path.join(outDir, 'kubeadm-custom'),
    '--cache-dir',
    path.join(work, 'cache'),
    ...extra,
  ];

  function expectCleanFailure(r: { status: number | null; stderr: string }) {
    expect(r.status).toBe(1);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(listDir(outDir)).toEqual([]);
  }

  it('engine unreachable: names Docker and DOCKER_HOST', () => {
    const r = runCli(args(repo), { env: { DOCKER_HOST: 'tcp://127.0.0.1:1' }, timeout: 60_000 });
    expectCleanFailure(r);
    expect(r.stderr).toMatch(TWO_LINES);
    expect(r.stderr).toMatch(/^error: Docker engine unreachable at tcp:\/\/127\.0\.0\.1:1/m);
    expect(r.stderr).toMatch(/next: .*DOCKER_HOST/);
  }, 60_000);

  it(
    'image missing and not pullable: names `docker load -i` and --image',
    () => {
      const r = runCli(
        args(repo).map((a) => (a === goImage ? 'kubeadm-forever-test/no-such-image:0.0.0' : a)),
        { timeout: 3 * 60_000 },
      );
      expectCleanFailure(r);
      expect(r.stderr).toMatch(TWO_LINES);
      expect(r.stderr).toMatch(
        /^error: image kubeadm-forever-test\/no-such-image:0\.0\.0 is not on the engine and cannot be pulled/m,
      );
      expect(r.stderr).toContain('docker load -i');
      expect(r.stderr).toContain('--image');
    },
    3 * 60_000,
  );

  it('unknown commit: a clear error before any container', () => {
    const r = runCli(args({ dir: repo.dir, commit: '0123456789abcdef0123456789abcdef01234567' }), {
      timeout: 60_000,
    });
    expectCleanFailure(r);
    expect(r.stderr).toMatch(TWO_LINES);
    expect(r.stderr).toMatch(/^error: cannot fetch commit 0123456789abcdef0123456789abcdef01234567 from /m);
  }, 60_000);

  it(
    "compile error: shows the compiler's own message",
    async () => {
      const broken = makeFixtureRepo(work, 'gopath', (dir) => {
        fs.appendFileSync(
          path.join(dir, 'cmd/kubeadm/app/phases/certs.go'),
          '\nvar brokenOnPurpose int = "not an int"\n',
        );
      });
      const r = runCli(args(broken), { timeout: 10 * 60_000 });
      expectCleanFailure(r);
      expect(r.stderr).toMatch(/certs\.go:\d+:\d+: cannot use "not an int"/);
      expect(r.stderr).toMatch(
        /error: go build failed in .* \(exit code [1-9]\d*\): .*certs\.go:\d+:\d+: cannot use.*\nnext: .+\n$/,
      );
      expect(await leftoverContainers()).toEqual([]);
    },
    10 * 60_000,
  );

  it(
    'SIGINT during the build: the container is removed, exit non-zero, nothing at --out',
    async () => {
      // A fresh Go cache volume makes the build long enough to interrupt it mid-way.
      const childTmp = path.join(work, 'tmp');
      fs.mkdirSync(childTmp);
      const child = spawn(process.execPath, [cliPath, ...args(repo, ['--go-cache-volume', sigintVolume])], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, TMPDIR: childTmp },
      });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      const deadline = Date.now() + 120_000;
      let running = false;
      while (!running && Date.now() < deadline) {
        const mine = await toolContainers(child.pid);
        running = mine.some((c) => c.State === 'running');
        if (!running) await new Promise((r) => setTimeout(r, 200));
      }
      expect(running).toBe(true);
      await new Promise((r) => setTimeout(r, 1500));
      child.kill('SIGINT');
      const code = await exited;
      expect(code).toBe(130);
      expect(stderr).toMatch(
        /error: interrupted by SIGINT; removing build container [0-9a-f]{12}\nnext: .+\n$/,
      );
      expect(await toolContainers(child.pid)).toEqual([]);
      expect(listDir(outDir)).toEqual([]);
      // the checked-out source (a temp worktree) went with the container
      expect(fs.readdirSync(childTmp)).toEqual([]);
    },
    3 * 60_000,
  );

  it(
    'SIGINT while the source tarball is read: nothing unpacked or left, two-line error, exit 130',
    async () => {
      requireFile(k8sTarball, "Debian's kubernetes source tarball");
      const childTmp = path.join(work, 'tmp-read');
      fs.mkdirSync(childTmp);
      const versionFile = path.join(work, 'version.json');
      fs.writeFileSync(versionFile, k8s1202.versionJson);
      const cacheDir = path.join(work, 'cache-read');
      const child = spawn(
        process.execPath,
        [
          cliPath,
          'build',
          '--version-file',
          versionFile,
          '--source-tarball',
          k8sTarball,
          '--image',
          goImage,
          '--out',
          path.join(outDir, 'kubeadm-custom'),
          '--cache-dir',
          cacheDir,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: childTmp } },
      );
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      // the pass is under way while the tool holds the tarball open (about 3 s on the real one)
      const reading = () => {
        try {
          return fs
            .readdirSync(`/proc/${child.pid}/fd`)
            .some((fd) => fs.readlinkSync(`/proc/${child.pid}/fd/${fd}`) === fs.realpathSync(k8sTarball));
        } catch {
          return false;
        }
      };
      const deadline = Date.now() + 60_000;
      while (!reading() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(reading()).toBe(true);
      // no temp tree is ever made for it
      expect(fs.readdirSync(childTmp)).toEqual([]);
      child.kill('SIGINT');
      expect(await exited).toBe(130);
      expect(stderr).toMatch(
        /error: interrupted by SIGINT; stopping the read of source tarball .+\nnext: .+\n$/,
      );
      expect(fs.readdirSync(childTmp)).toEqual([]);
      expect(listDir(outDir)).toEqual([]);
      // no record of a pass cut short
      const records = path.join(cacheDir, 'source-digests');
      expect(fs.existsSync(records) ? fs.readdirSync(records) : []).toEqual([]);
    },
    3 * 60_000,
  );
});
