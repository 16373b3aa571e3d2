import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixturesDir, k8s1202, k8sTarball, repoRoot, skipDockerTests } from '../helpers/env.js';
import { requireFile } from '../helpers/fixtures.js';
import { leftoverContainers, tempDir } from '../integration/docker-helpers.js';

// The README's first command (`npm run quickstart` → scripts/quickstart.sh), run for real with
// the pieces scripts/test-env.sh prepared: the engine (reached through DOCKER_HOST, so nothing of
// the engine is installed or started), Debian's Go 1.19, golang:1.19.8-alpine (test-env makes it
// with the same image command) and the 1.20.2 source tarball. It builds kubeadm v1.20.2 with the
// tool; the Go cache and source volumes of earlier builds of the same tarball make that a warm
// build, and its binary cache lives under test/.fixtures so a second run is a cache hit.

describe.skipIf(skipDockerTests)('quickstart: the README first command', () => {
  let work: string;

  beforeAll(() => {
    requireFile(k8sTarball, "Debian's kubernetes source tarball");
    work = tempDir('kf-e2e-quickstart-');
  });

  afterAll(async () => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
    expect(await leftoverContainers()).toEqual([]);
  });

  it(
    'sets up, builds kubeadm v1.20.2 with the tool, verifies it and prints the 199/200-year table and what next',
    async () => {
      const started = Date.now();
      const r = spawnSync('npm', ['run', '--silent', 'quickstart'], {
        cwd: repoRoot,
        encoding: 'utf8',
        timeout: 30 * 60_000,
        maxBuffer: 64 * 1024 * 1024,
        env: {
          ...process.env,
          DOCKER_HOST: 'tcp://127.0.0.1:2375',
          KF_QUICKSTART_DIR: path.join(work, 'out'),
          KF_QUICKSTART_SOURCE_DIR: fixturesDir,
          KUBEADM_FOREVER_CACHE_DIR: path.join(fixturesDir, 'quickstart-cache'),
        },
      });
      const seconds = Math.round((Date.now() - started) / 1000);
      process.stderr.write(`quickstart took ${seconds} s\n`);
      expect(r.stderr + r.stdout).toBe(r.status === 0 ? r.stderr + r.stdout : '<quickstart failed>');
      expect(r.status).toBe(0);
      // an engine answered: nothing of it installed or started
      expect(r.stderr).toContain('docker engine already answering at tcp://127.0.0.1:2375');
      expect(r.stderr).not.toMatch(/installing .*docker\.io|starting dockerd/);
      // the image command ran (test-env made the image already: kept)
      expect(r.stderr).toMatch(/golang:1\.19\.8-alpine already present/);
      const out = path.join(work, 'out', 'kubeadm-v1.20.2-forever');
      expect(fs.existsSync(out)).toBe(true);
      // the expiry table of the certificates the built binary issued
      expect(r.stdout).toContain('verify: passed');
      expect(r.stdout).toContain(`version ${k8s1202.gitVersion} ${k8s1202.gitCommit}`);
      for (const ca of ['ca.crt', 'etcd/ca.crt', 'front-proxy-ca.crt'])
        expect(r.stdout).toMatch(
          new RegExp(`ok +${ca.replace('.', '\\.')} +ca +\\d{4}-\\d\\d-\\d\\d +(199\\.9\\d|200\\.00)y`),
        );
      for (const leaf of ['apiserver.crt', 'etcd/server.crt', 'front-proxy-client.crt'])
        expect(r.stdout).toMatch(
          new RegExp(`ok +${leaf.replace('.', '\\.')} +leaf +\\d{4}-\\d\\d-\\d\\d +(198\\.9\\d|199\\.00)y`),
        );
      expect(r.stdout).toContain('Next, with a real cluster');
      expect(r.stdout).toContain('kubeadm-forever renew --kubeadm ./kubeadm-custom --dry-run');
    },
    30 * 60_000,
  );
});
