import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CacheManifest } from '../../src/core/cache-manifest.js';
import { goImage, runCli, skipDockerTests } from '../helpers/env.js';
import { docker, leftoverContainers, makeFixtureRepo, tempDir, type FixtureRepo } from './docker-helpers.js';

// Reproducible, auditable builds with the Kubernetes-shaped GOPATH fixture, a real engine and
// real Go: two builds with empty binary caches and separate, fresh Go cache volumes give the
// same bytes; audit rebuilds from the manifest and passes; a changed recorded input fails.

const sha = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');
const readManifest = (f: string) => JSON.parse(fs.readFileSync(f, 'utf8')) as CacheManifest;

describe.skipIf(skipDockerTests)('reproducible builds and audit', () => {
  let work: string;
  let repo: FixtureRepo;
  const volumes = [1, 2, 3].map((i) => `kf-test-repro-${process.pid}-${Date.now()}-${i}`);
  const builds: { out: string; manifest: string }[] = [];

  const build = (n: number) => {
    const out = path.join(work, `kubeadm-${n}`);
    const r = runCli(
      [
        'build',
        '--json',
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
        out,
        '--cache-dir',
        path.join(work, `cache-${n}`),
        '--go-cache-volume',
        volumes[n - 1]!,
      ],
      { timeout: 15 * 60_000, env: { SOURCE_DATE_EPOCH: '' } },
    );
    expect(r.stderr).toBe(r.status === 0 ? r.stderr : '<build failed>');
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout) as { sha256: string; manifest: string; cached: boolean };
    expect(doc.cached).toBe(false);
    expect(doc.sha256).toBe(sha(out));
    return { out, manifest: doc.manifest };
  };

  beforeAll(() => {
    work = tempDir('kf-it-repro-');
    repo = makeFixtureRepo(work, 'gopath');
  });
  afterAll(async () => {
    fs.rmSync(work, { recursive: true, force: true });
    for (const v of volumes)
      await docker
        .getVolume(v)
        .remove()
        .catch(() => undefined);
    expect(await leftoverContainers()).toEqual([]);
  });

  it(
    'two builds, empty caches, fresh Go cache volumes: identical sha256 and a full provenance',
    () => {
      builds.push(build(1), build(2));
      expect(sha(builds[0]!.out)).toBe(sha(builds[1]!.out));

      const m = readManifest(builds[0]!.manifest);
      const p = m.provenance!;
      const commitTime = Number(
        execFileSync('git', ['show', '-s', '--format=%ct', repo.commit], {
          cwd: repo.dir,
          encoding: 'utf8',
        }).trim(),
      );
      const tree = execFileSync('git', ['rev-parse', `${repo.commit}^{tree}`], {
        cwd: repo.dir,
        encoding: 'utf8',
      }).trim();
      expect(p.source).toMatchObject({
        kind: 'git',
        commit: repo.commit,
        tree,
        location: `file://${repo.dir}`,
      });
      expect(p.buildDate).toBe(new Date(commitTime * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'));
      expect(p.buildDateOrigin).toBe('git commit time');
      expect(p.reproducible).toBe(true);
      expect(p.args!.slice(0, 3)).toEqual(['go', 'build', '-tags=selinux,notest']);
      const ldflags = p.args![p.args!.indexOf('-ldflags') + 1]!;
      expect(ldflags.split(' ')).toContain('-buildid=');
      expect(ldflags).toContain(`version.buildDate=${p.buildDate}`);
      expect(p.env).toMatchObject({ CGO_ENABLED: '0', GOOS: 'linux', GOARCH: 'amd64', GO111MODULE: 'off' });
      expect(m.patches).toContain('+++ b/cmd/kubeadm/app/constants/constants.go');
      expect(m.imageId).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(m.goVersion).toBe('go1.19.8');
      expect(Object.keys(p.inputDigests!)).toEqual(
        expect.arrayContaining(['validity', 'version', 'ldflags', 'env', 'patches']),
      );

      // no host path or user name in the bytes
      const text = execFileSync('strings', ['-n', '6', builds[0]!.out], {
        encoding: 'utf8',
        maxBuffer: 256 * 1024 * 1024,
      });
      expect(text).not.toContain(work);
      expect(text).not.toMatch(/\/tmp\/kubeadm-forever-src-|\/tmp\/kf-it-/);
      expect(text).not.toContain('/root/');
    },
    30 * 60_000,
  );

  it(
    'audit: the rebuild from the recorded inputs is identical (exit 0)',
    () => {
      const [first] = builds;
      expect(first, 'needs the builds of the test above').toBeDefined();
      const r = runCli(
        [
          'audit',
          first!.out,
          '--manifest',
          first!.manifest,
          '--json',
          '--cache-dir',
          path.join(work, 'cache-audit'),
          '--go-cache-volume',
          volumes[2]!,
        ],
        {
          timeout: 15 * 60_000,
        },
      );
      expect(r.stderr).toBe(r.status === 0 ? r.stderr : '<audit failed>');
      expect(r.status).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({
        identical: true,
        sha256: sha(first!.out),
        rebuiltSha256: sha(first!.out),
      });
    },
    15 * 60_000,
  );

  it(
    'audit: a recorded input changed after the build (validity) exits 1 naming it',
    () => {
      const [first] = builds;
      expect(first, 'needs the builds of the test above').toBeDefined();
      const m = readManifest(first!.manifest);
      const hundred = { hours: 100 * 8760, text: '100y' };
      m.validity = hundred;
      (m.inputs.validity as { leaf: unknown }).leaf = hundred;
      const edited = path.join(work, 'manifest-edited.json');
      fs.writeFileSync(edited, JSON.stringify(m, null, 2));
      const r = runCli(
        ['audit', first!.out, '--manifest', edited, '--cache-dir', path.join(work, 'cache-audit')],
        { timeout: 15 * 60_000 },
      );
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/^error: recorded input validity changed/m);
      expect(r.stderr).toMatch(/^next: /m);
    },
    15 * 60_000,
  );

  it('audit: a binary that is not the one recorded exits 1 at once', () => {
    const [first] = builds;
    expect(first, 'needs the builds of the test above').toBeDefined();
    const other = path.join(work, 'kubeadm-other');
    fs.copyFileSync(first!.out, other);
    fs.appendFileSync(other, Buffer.from([0]));
    const r = runCli(
      ['audit', other, '--manifest', first!.manifest, '--cache-dir', path.join(work, 'cache-audit')],
      { timeout: 60_000 },
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^error: binary differs from its manifest/m);
  }, 60_000);
});
