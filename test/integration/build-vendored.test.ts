import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { goImage, runCli, skipDockerTests } from '../helpers/env.js';
import { vendorCopies } from '../helpers/fixtures.js';
import { leftoverContainers, makeFixtureRepo, tempDir } from './docker-helpers.js';

// Vendored copies, for real: Kubernetes-shaped trees whose vendor/k8s.io/* are copies (not
// links into staging/), built through `build` in both modes. The CAs come out at 200 years only
// if the patch reached the vendored cert.go that `go build` compiles.

const YEAR_MS = 365 * 24 * 3600_000;
const VENDORED_CERT = 'vendor/k8s.io/client-go/util/cert/cert.go';

function yearsLeft(file: string): number {
  const out = execFileSync('openssl', ['x509', '-noout', '-enddate', '-in', file], { encoding: 'utf8' });
  return (new Date(out.trim().replace(/^notAfter=/, '')).getTime() - Date.now()) / YEAR_MS;
}

describe.skipIf(skipDockerTests)('build of trees with copied vendor dirs on a real Docker engine', () => {
  let work: string;

  beforeAll(() => {
    work = tempDir('kf-it-vendored-');
  });

  afterAll(async () => {
    fs.rmSync(work, { recursive: true, force: true });
    expect(await leftoverContainers()).toEqual([]);
  });

  it.each([
    ['gopath', 'v1.20.2', '20'],
    ['module', 'v1.27.3', '27'],
  ] as const)(
    '%s mode: the vendored cert.go is patched and compiled, CAs 200 years',
    (mode, gitVersion, minor) => {
      const repo = makeFixtureRepo(work, mode, vendorCopies);
      expect(fs.lstatSync(path.join(repo.dir, 'vendor/k8s.io/client-go')).isDirectory()).toBe(true);
      const out = path.join(work, `kubeadm-${mode}`);
      const r = runCli(
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
        ],
        { timeout: 10 * 60_000 },
      );
      expect(r.stderr).toBe(r.status === 0 ? r.stderr : '<build failed>');
      expect(r.status).toBe(0);
      const doc = JSON.parse(r.stdout);
      expect(doc.verify).toMatchObject({ executed: true, passed: true });
      // the manifest's recorded patch names the file that was compiled
      const manifest = JSON.parse(fs.readFileSync(doc.manifest, 'utf8'));
      expect(manifest.patches).toContain(`+++ b/${VENDORED_CERT}`);

      const version = JSON.parse(
        execFileSync(out, ['version', '-o', 'json'], { encoding: 'utf8' }),
      ).clientVersion;
      expect(version).toMatchObject({ gitVersion, gitCommit: repo.commit, minor });
      const pki = path.join(work, `pki-${mode}`);
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
      for (const ca of ['ca.crt', 'etcd/ca.crt', 'front-proxy-ca.crt'])
        expect(yearsLeft(path.join(pki, ca))).toBeGreaterThan(199.9);
      expect(yearsLeft(path.join(pki, 'apiserver.crt'))).toBeGreaterThan(198.9);
      expect(yearsLeft(path.join(pki, 'apiserver.crt'))).toBeLessThan(199.1);
    },
    10 * 60_000,
  );
});
