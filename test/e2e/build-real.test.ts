import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { goImage, k8s1202, k8sTarball, runCli, skipDockerTests } from '../helpers/env.js';
import { k8sTree, requireFile } from '../helpers/fixtures.js';
import { leftoverContainers } from '../integration/docker-helpers.js';

// The real thing: kubeadm from Debian's kubernetes 1.20.2 source tarball, built in the local Go
// image, patched to 199/200 years, with version strings identical to the official v1.20.2.

const YEAR_MS = 365 * 24 * 3600_000;

function yearsLeft(file: string): number {
  const out = execFileSync('openssl', ['x509', '-noout', '-enddate', '-in', file], { encoding: 'utf8' });
  return (new Date(out.trim().replace(/^notAfter=/, '')).getTime() - Date.now()) / YEAR_MS;
}

describe.skipIf(skipDockerTests)('build of the real kubeadm v1.20.2', () => {
  let work: string;
  let first: { out: string; sha256: string; manifest: string } | undefined;

  beforeAll(() => {
    requireFile(k8sTarball, "Debian's kubernetes source tarball");
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-e2e-'));
  });

  afterAll(async () => {
    fs.rmSync(work, { recursive: true, force: true });
    expect(await leftoverContainers()).toEqual([]);
  });

  it(
    'builds from --source-tarball: v1.20.2 / faecb19… / minor 20, leaves ≥198.9 y, CAs ≥199.9 y',
    () => {
      const versionFile = path.join(work, 'kubeadm-version.json');
      fs.writeFileSync(versionFile, k8s1202.versionJson);
      const out = path.join(work, 'kubeadm-custom');
      const r = runCli(
        [
          'build',
          '--json',
          '--no-cache',
          '--version-file',
          versionFile,
          '--source-tarball',
          k8sTarball,
          '--image',
          goImage,
          '--out',
          out,
          '--cache-dir',
          path.join(work, 'cache'),
        ],
        { timeout: 25 * 60_000 },
      );
      expect(r.stderr).toBe(r.status === 0 ? r.stderr : '<build failed>');
      expect(r.status).toBe(0);
      const doc = JSON.parse(r.stdout);
      // kept aside for the reproducibility test below (a second build of the same key replaces the entry)
      first = { out, sha256: doc.sha256, manifest: path.join(work, 'manifest-first.json') };
      fs.copyFileSync(doc.manifest, first.manifest);
      expect(doc).toMatchObject({
        binary: out,
        gitVersion: k8s1202.gitVersion,
        gitCommit: k8s1202.gitCommit,
        image: goImage,
        platform: 'linux/amd64',
      });
      expect(doc.verify).toMatchObject({ executed: true, passed: true });

      const version = JSON.parse(
        execFileSync(out, ['version', '-o', 'json'], { encoding: 'utf8' }),
      ).clientVersion;
      expect(version).toMatchObject({
        gitVersion: 'v1.20.2',
        gitCommit: k8s1202.gitCommit,
        major: '1',
        minor: '20',
        gitTreeState: 'clean',
      });

      const pki = path.join(work, 'pki');
      execFileSync(
        out,
        ['init', 'phase', 'certs', 'all', '--cert-dir', pki, '--kubernetes-version', 'v1.20.2'],
        { stdio: 'ignore' },
      );
      for (const leaf of [
        'apiserver.crt',
        'apiserver-kubelet-client.crt',
        'apiserver-etcd-client.crt',
        'front-proxy-client.crt',
        'etcd/server.crt',
        'etcd/peer.crt',
        'etcd/healthcheck-client.crt',
      ]) {
        expect(yearsLeft(path.join(pki, leaf)), leaf).toBeGreaterThanOrEqual(198.9);
      }
      for (const ca of ['ca.crt', 'etcd/ca.crt', 'front-proxy-ca.crt']) {
        expect(yearsLeft(path.join(pki, ca)), ca).toBeGreaterThanOrEqual(199.9);
      }
    },
    25 * 60_000,
  );

  it(
    'builds from --source-dir without changing the tree (the patch travels in the tar stream)',
    () => {
      const tree = k8sTree();
      const watched = [
        'cmd/kubeadm/app/constants/constants.go',
        'staging/src/k8s.io/client-go/util/cert/cert.go',
      ].map((f) => path.join(tree, f));
      const before = watched.map((f) => fs.readFileSync(f, 'utf8'));
      const versionFile = path.join(work, 'kubeadm-version.json');
      fs.writeFileSync(versionFile, k8s1202.versionJson);
      const out = path.join(work, 'kubeadm-from-dir');
      const r = runCli(
        [
          'build',
          '--json',
          '--version-file',
          versionFile,
          '--source-dir',
          tree,
          '--image',
          goImage,
          '--out',
          out,
          '--cache-dir',
          path.join(work, 'cache'),
        ],
        {
          timeout: 25 * 60_000,
        },
      );
      expect(r.stderr).toBe(r.status === 0 ? r.stderr : '<build failed>');
      expect(r.status).toBe(0);
      expect(JSON.parse(r.stdout).verify).toMatchObject({ executed: true, passed: true });
      expect(watched.map((f) => fs.readFileSync(f, 'utf8'))).toEqual(before);
      expect(before[0]).toContain('CertificateValidity = time.Hour * 24 * 365');
    },
    25 * 60_000,
  );

  // Reproducible: two --no-cache builds of the same inputs give the same sha256, and audit
  // of the first binary with its manifest exits 0. The Go build cache volume makes both of these
  // a relink, so the whole file costs one cold kubeadm build.
  it(
    'a second --no-cache build of the same inputs is byte-identical, and audit of the first exits 0',
    () => {
      expect(first, 'needs the --source-tarball build above').toBeDefined();
      const versionFile = path.join(work, 'kubeadm-version.json');
      const out = path.join(work, 'kubeadm-second');
      const r = runCli(
        [
          'build',
          '--json',
          '--no-cache',
          '--version-file',
          versionFile,
          '--source-tarball',
          k8sTarball,
          '--image',
          goImage,
          '--out',
          out,
          '--cache-dir',
          path.join(work, 'cache'),
        ],
        { timeout: 25 * 60_000 },
      );
      expect(r.stderr).toBe(r.status === 0 ? r.stderr : '<build failed>');
      expect(r.status).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ cached: false, sha256: first!.sha256 });

      const manifest = JSON.parse(fs.readFileSync(first!.manifest, 'utf8'));
      expect(manifest.provenance).toMatchObject({
        source: { kind: 'tarball', location: k8sTarball },
        buildDateOrigin: 'newest tarball entry',
        reproducible: true,
      });
      const a = runCli(
        [
          'audit',
          first!.out,
          '--manifest',
          first!.manifest,
          '--json',
          '--cache-dir',
          path.join(work, 'cache'),
        ],
        { timeout: 25 * 60_000 },
      );
      expect(a.stderr).toBe(a.status === 0 ? a.stderr : '<audit failed>');
      expect(a.status).toBe(0);
      expect(JSON.parse(a.stdout)).toMatchObject({ identical: true, rebuiltSha256: first!.sha256 });
    },
    40 * 60_000,
  );
});
