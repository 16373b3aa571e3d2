import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { go122Version, runCli, skipDockerTests } from '../helpers/env.js';
import { docker, leftoverContainers, makeFixtureRepo, tempDir, type FixtureRepo } from './docker-helpers.js';

// Module-era trees built for real with Debian's Go 1.22 (bookworm-backports), in the image
// scripts/test-env.sh made from golang-1.22-go and -src with `kubeadm-forever image`: `build`
// finds it by its name (golang:<go>-alpine) from --go-version alone, builds the vendored
// module-mode shape and the workspace shape (go.work, `## workspace` vendor/modules.txt, which
// Go before 1.22 cannot read), and `verify` passes. GOPATH mode stays covered by the real 1.20.2.

describe.skipIf(skipDockerTests)("build with Debian's Go 1.22: module and workspace mode", () => {
  let work: string;
  let go: string;
  const repos: Partial<Record<'module' | 'workspace', FixtureRepo>> = {};

  beforeAll(async () => {
    go = go122Version();
    await docker
      .getImage(`golang:${go}-alpine`)
      .inspect()
      .catch(() => {
        throw new Error(
          `image golang:${go}-alpine missing: run 'sudo bash scripts/test-env.sh up' first (it makes it with kubeadm-forever image)`,
        );
      });
    work = tempDir('kf-it-go122-');
    repos.module = makeFixtureRepo(work, 'module');
    repos.workspace = makeFixtureRepo(work, 'workspace');
  });

  afterAll(async () => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
    expect(await leftoverContainers()).toEqual([]);
  });

  for (const [shape, gitVersion, minor] of [
    ['module', 'v1.29.7', '29'],
    ['workspace', 'v1.30.2', '30'],
  ] as const) {
    it(
      `builds the ${shape}-mode shape through build and verify passes`,
      () => {
        const repo = repos[shape]!;
        if (shape === 'workspace') {
          expect(fs.readFileSync(path.join(repo.dir, 'vendor/modules.txt'), 'utf8')).toMatch(
            /^## workspace\n/,
          );
          expect(fs.existsSync(path.join(repo.dir, 'go.work'))).toBe(true);
        }
        const out = path.join(work, `kubeadm-${shape}`);
        const target = ['--kubernetes-version', gitVersion, '--commit', repo.commit];
        const plan = runCli(['plan', '--json', ...target, '--go-version', go, '--source-dir', repo.dir]);
        expect(plan.status).toBe(0);
        expect(JSON.parse(plan.stdout)).toMatchObject({ image: `golang:${go}-alpine`, buildMode: 'module' });

        const r = runCli(
          [
            'build',
            '--json',
            ...target,
            '--go-version',
            go,
            '--repo',
            repo.dir,
            '--out',
            out,
            '--cache-dir',
            path.join(work, 'cache'),
          ],
          { timeout: 15 * 60_000 },
        );
        expect(r.stderr).toBe(r.status === 0 ? r.stderr : '<build failed>');
        expect(r.status).toBe(0);
        const doc = JSON.parse(r.stdout);
        expect(doc).toMatchObject({
          image: `golang:${go}-alpine`,
          goVersion: `go${go}`,
          gitVersion,
          verify: { executed: true, passed: true },
        });

        const v = runCli(['verify', '--json', out, ...target]);
        expect(v.stderr).toBe(v.status === 0 ? v.stderr : '<verify failed>');
        expect(v.status).toBe(0);
        const report = JSON.parse(v.stdout);
        expect(report).toMatchObject({
          passed: true,
          version: { gitVersion, gitCommit: repo.commit, goVersion: `go${go}`, minor },
        });
        const cas = report.certificates.filter((c: { kind: string }) => c.kind === 'ca');
        expect(cas.map((c: { file: string }) => c.file)).toEqual([
          'ca.crt',
          'etcd/ca.crt',
          'front-proxy-ca.crt',
        ]);
        for (const c of report.certificates) expect(c.years).toBeGreaterThan(c.kind === 'ca' ? 199.9 : 198.9);
        // independent check of the binary itself
        const own = JSON.parse(
          execFileSync(out, ['version', '-o', 'json'], { encoding: 'utf8' }),
        ).clientVersion;
        expect(own).toMatchObject({ gitVersion, gitCommit: repo.commit, goVersion: `go${go}` });
      },
      15 * 60_000,
    );
  }
});
