import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { goImage, runCli, skipDockerTests } from '../helpers/env.js';
import { leftoverContainers, makeFixtureRepo, tempDir, type FixtureRepo } from './docker-helpers.js';

// `verify` on a real Go binary: the GOPATH-mode fixture built by the tool with kubeadm's stock
// validities (1 year leaves, 10 year CAs), so every expectation below can fail for real.

describe.skipIf(skipDockerTests)('verify', () => {
  let work: string;
  let repo: FixtureRepo;
  let binary: string;

  beforeAll(() => {
    work = tempDir('kf-it-verify-');
    repo = makeFixtureRepo(work, 'gopath');
    binary = path.join(work, 'kubeadm-stock-validity');
    const r = runCli(
      [
        'build',
        '--no-verify',
        '--validity',
        '1y',
        '--ca-validity',
        '10y',
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
        binary,
        '--cache-dir',
        path.join(work, 'cache'),
      ],
      { timeout: 10 * 60_000 },
    );
    if (r.status !== 0) throw new Error(`fixture build failed:\n${r.stderr}`);
  }, 10 * 60_000);

  afterAll(async () => {
    fs.rmSync(work, { recursive: true, force: true });
    expect(await leftoverContainers()).toEqual([]);
  });

  const target = () => ['--kubernetes-version', 'v1.20.2', '--commit', repo.commit];

  it('fails on the default 199y/200y: every certificate short, exit 1 with the two-line error', () => {
    const r = runCli(['verify', binary, '--json', ...target()], { timeout: 60_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/error: .+ failed verification: .+ \(leaf\) expires .+\nnext: .+\n$/);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({
      executed: true,
      passed: false,
      version: { gitVersion: 'v1.20.2', gitCommit: repo.commit, minor: '20', ok: true },
    });
    expect(doc.certificates.length).toBe(8);
    expect(doc.certificates.every((c: { ok: boolean }) => !c.ok)).toBe(true);
    expect(
      doc.certificates.filter((c: { kind: string }) => c.kind === 'ca').map((c: { file: string }) => c.file),
    ).toEqual(['ca.crt', 'etcd/ca.crt', 'front-proxy-ca.crt']);
  }, 60_000);

  it('passes with the validities it was built for (1y/10y)', () => {
    const r = runCli(['verify', binary, '--validity', '1y', '--ca-validity', '10y', ...target()], {
      timeout: 60_000,
    });
    // only progress lines (a phase of 2 s or more gets one without a TTY)
    expect(r.stderr).toMatch(/^(✔ .+ \(\d[^)]*\)\n)*$/);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^verify: passed/);
    expect(r.stdout).toMatch(/ok {3}etcd\/ca\.crt +ca +\d{4}-\d\d-\d\d +10\.00y/);
    expect(r.stdout).toMatch(/ok {3}apiserver\.crt +leaf +\d{4}-\d\d-\d\d +1\.00y/);
  }, 60_000);

  it('runs a bare file name from the current directory, not from PATH', () => {
    const r = runCli(
      ['verify', path.basename(binary), '--json', '--validity', '1y', '--ca-validity', '10y', ...target()],
      { timeout: 60_000, cwd: work },
    );
    expect(r.stderr).not.toMatch(/ENOENT/);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ executed: true, execution: 'native', passed: true });
  }, 60_000);

  it('fails when the binary is not the target commit', () => {
    const other = '0123456789abcdef0123456789abcdef01234567';
    const r = runCli(
      [
        'verify',
        binary,
        '--validity',
        '1y',
        '--ca-validity',
        '10y',
        '--kubernetes-version',
        'v1.20.2',
        '--commit',
        other,
      ],
      { timeout: 60_000 },
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`gitCommit is ${repo.commit}, expected ${other}`);
  }, 60_000);

  it('reports a foreign platform as not executed, never as passed, when no emulator runs it', () => {
    // --emulator none, and a PATH with no qemu: the same report (unless binfmt_misc registers one)
    const none = runCli(
      ['verify', binary, '--json', '--platform', 'linux/arm64', '--emulator', 'none', ...target()],
      { timeout: 60_000 },
    );
    expect(none.status).toBe(0);
    expect(JSON.parse(none.stdout)).toMatchObject({
      executed: false,
      execution: 'not executed',
      passed: false,
      certificates: [],
      reason: 'built for linux/arm64, this host is linux/amd64; no emulator (--emulator none)',
    });
    const emptyPath = path.join(work, 'empty-path');
    fs.mkdirSync(emptyPath, { recursive: true });
    const bare = runCli(['verify', binary, '--platform', 'linux/arm64', ...target()], {
      timeout: 60_000,
      env: { PATH: emptyPath },
    });
    expect(bare.status).toBe(0);
    if (fs.existsSync('/proc/sys/fs/binfmt_misc/qemu-aarch64')) {
      // a registered emulator runs it: this x86-64 binary then fails as an arm64 one
      expect(bare.stdout).not.toMatch(/passed/);
    } else {
      expect(bare.stdout).toMatch(
        /^verify: not executed \(built for linux\/arm64, this host is linux\/amd64; no emulator found: .* on PATH \(install qemu-user-static or pass --emulator\)\)\n$/,
      );
    }
  }, 60_000);

  it('an emulator that cannot run the binary is a failure, never a pass', () => {
    // an x86-64 binary named as linux/arm64 and handed to qemu-aarch64: it does not run
    const qemu = '/usr/bin/qemu-aarch64-static';
    expect(fs.existsSync(qemu), 'qemu-user-static is installed by scripts/test-env.sh').toBe(true);
    const r = runCli(['verify', binary, '--platform', 'linux/arm64', '--emulator', qemu, ...target()], {
      timeout: 60_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /^error: 'kubeadm-stock-validity version -o json' \(under \/usr\/bin\/qemu-aarch64-static\) failed: .+\nnext: .+--emulator none.*\n$/m,
    );
  }, 60_000);

  it('refuses a missing binary with the two-line error', () => {
    const r = runCli(['verify', '/nonexistent/kubeadm', ...target()], { timeout: 60_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^error: no binary at \/nonexistent\/kubeadm\nnext: .+\n$/);
  }, 60_000);
});
