import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { goImage, runCli, skipDockerTests } from '../helpers/env.js';
import { leftoverContainers, makeFixtureRepo, tempDir, type FixtureRepo } from './docker-helpers.js';

// Real engine, real Go: the Kubernetes-shaped fixtures built through `--repo PATH --commit SHA`,
// over the unix socket (GOPATH mode) and over tcp://127.0.0.1:2375 (module mode).

const YEAR_MS = 365 * 24 * 3600_000;

function endDate(file: string): Date {
  // openssl is the independent checker of what the built binary writes.
  const out = execFileSync('openssl', ['x509', '-noout', '-enddate', '-in', file], { encoding: 'utf8' });
  return new Date(out.trim().replace(/^notAfter=/, ''));
}

describe.skipIf(skipDockerTests)('build of Kubernetes-shaped fixtures on a real Docker engine', () => {
  let work: string;
  let gopathRepo: FixtureRepo;
  let moduleRepo: FixtureRepo;

  beforeAll(() => {
    work = tempDir('kf-it-build-');
    gopathRepo = makeFixtureRepo(work, 'gopath');
    moduleRepo = makeFixtureRepo(work, 'module');
  });

  afterAll(async () => {
    fs.rmSync(work, { recursive: true, force: true });
    expect(await leftoverContainers()).toEqual([]);
  });

  function build(
    repo: FixtureRepo,
    gitVersion: string,
    out: string,
    env: NodeJS.ProcessEnv = {},
    extra: string[] = [],
  ) {
    return runCli(
      [
        'build',
        '--json',
        '--kubernetes-version',
        gitVersion,
        '--commit',
        repo.commit,
        '--go-version',
        '1.19.8',
        '--image',
        goImage,
        '--repo',
        repo.dir,
        '--out',
        out,
        '--cache-dir',
        path.join(work, 'cache'),
        ...extra,
      ],
      { env, timeout: 10 * 60_000 },
    );
  }

  function checkBinary(out: string, gitVersion: string, commit: string, minor: string) {
    const version = JSON.parse(
      execFileSync(out, ['version', '-o', 'json'], { encoding: 'utf8' }),
    ).clientVersion;
    expect(version).toMatchObject({ gitVersion, gitCommit: commit, minor });
    const pki = path.join(work, `pki-${path.basename(out)}`);
    execFileSync(out, [
      'init',
      'phase',
      'certs',
      'all',
      '--cert-dir',
      pki,
      '--kubernetes-version',
      gitVersion,
    ]);
    const now = Date.now();
    expect((endDate(path.join(pki, 'apiserver.crt')).getTime() - now) / YEAR_MS).toBeGreaterThan(198.9);
    expect((endDate(path.join(pki, 'etcd/server.crt')).getTime() - now) / YEAR_MS).toBeGreaterThan(198.9);
    for (const ca of ['ca.crt', 'etcd/ca.crt', 'front-proxy-ca.crt']) {
      expect((endDate(path.join(pki, ca)).getTime() - now) / YEAR_MS).toBeGreaterThan(199.9);
    }
  }

  it(
    'builds the GOPATH-mode shape over the unix socket, verified, with the --json contract',
    () => {
      const out = path.join(work, 'kubeadm-gopath');
      const r = build(gopathRepo, 'v1.20.2', out, { DOCKER_HOST: 'unix:///var/run/docker.sock' });
      expect(r.stderr).toBe(r.status === 0 ? r.stderr : '<build failed>');
      expect(r.status).toBe(0);
      const doc = JSON.parse(r.stdout);
      expect(Object.keys(doc).sort()).toEqual(
        [
          'binary',
          'gitCommit',
          'gitVersion',
          'goVersion',
          'image',
          'imageId',
          'platform',
          'sha256',
          'validity',
          'verify',
          'cached',
          'manifest',
        ].sort(),
      );
      expect(doc).toMatchObject({
        binary: out,
        gitVersion: 'v1.20.2',
        gitCommit: gopathRepo.commit,
        goVersion: 'go1.19.8',
        image: goImage,
        platform: 'linux/amd64',
      });
      expect(doc.imageId).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(doc.verify).toMatchObject({ executed: true, passed: true });
      expect(doc.verify.certificates.length).toBeGreaterThanOrEqual(6);
      const sha = execFileSync('sha256sum', [out], { encoding: 'utf8' }).split(' ')[0];
      expect(doc.sha256).toBe(sha);
      expect(fs.statSync(out).mode & 0o777).toBe(0o755);
      checkBinary(out, 'v1.20.2', gopathRepo.commit, '20');
    },
    10 * 60_000,
  );

  it(
    'builds the module-mode shape over DOCKER_HOST=tcp://127.0.0.1:2375 and says what to do next',
    () => {
      const out = path.join(work, 'kubeadm-module');
      const r = runCli(
        [
          'build',
          '--kubernetes-version',
          'v1.27.3',
          '--commit',
          moduleRepo.commit,
          '--go-version',
          '1.19.8',
          '--image',
          goImage,
          '--repo',
          moduleRepo.dir,
          '--out',
          out,
          '--cache-dir',
          path.join(work, 'cache'),
        ],
        { env: { DOCKER_HOST: 'tcp://127.0.0.1:2375' }, timeout: 10 * 60_000 },
      );
      expect(r.stderr).toBe(r.status === 0 ? r.stderr : '<build failed>');
      expect(r.status).toBe(0);
      expect(r.stdout).toContain('verify: passed');
      // the next steps follow the node procedure: ca extend, renew (with its backup), check
      expect(r.stdout).toMatch(
        /next: copy \.\/kubeadm-module to each control-plane node.+\n {2}1\. kubeadm-forever ca extend --pki-dir \/etc\/kubernetes\/pki .+\n {2}2\. kubeadm-forever renew --kubeadm \.\/kubeadm-module --dry-run .+\n {2}3\. kubeadm-forever check --min-years 150\n/,
      );
      expect(r.stdout).not.toMatch(/certs renew all\n/);
      checkBinary(out, 'v1.27.3', moduleRepo.commit, '27');
    },
    10 * 60_000,
  );

  it(
    'builds the same commit again from the mirror in the cache, bit for bit the same binary',
    () => {
      const out = path.join(work, 'kubeadm-gopath-again');
      // --no-cache: a real second build (without it the binary cache would answer)
      const r = build(gopathRepo, 'v1.20.2', out, {}, ['--no-cache']);
      expect(r.status).toBe(0);
      expect(JSON.parse(r.stdout).cached).toBe(false);
      // Same inputs, same bytes: -trimpath, fixed version strings and build date.
      expect(JSON.parse(r.stdout).sha256).toBe(
        execFileSync('sha256sum', [path.join(work, 'kubeadm-gopath')], { encoding: 'utf8' }).split(' ')[0],
      );
    },
    10 * 60_000,
  );
});
