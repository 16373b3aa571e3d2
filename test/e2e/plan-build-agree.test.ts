import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { k8s1202, k8sTarball, runCli, skipDockerTests } from '../helpers/env.js';
import { k8sTree, requireFile } from '../helpers/fixtures.js';

/**
 * `plan` and `build` make one decision (build/prepare.ts, core/build-decision.ts), so they can
 * never disagree. The case that once did: the real 1.20.2 tree with a 1.31 target.
 * `plan` said "source drift" while `build` would have patched the tree as 1.20 and stamped the
 * binary v1.31.0. Both now refuse it the same way, before any engine is contacted.
 */

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-agree-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

// no engine here: a build that got as far as Docker would fail on this instead
const noEngine = { DOCKER_HOST: 'tcp://127.0.0.1:1' };

function target(version: string): string[] {
  return ['--kubernetes-version', version, '--commit', k8s1202.gitCommit, '--go-version', '1.22.5'];
}

function run(
  cmd: 'plan' | 'build',
  tree: string,
  version: string,
  json: boolean,
  opts: { flag?: string; env?: NodeJS.ProcessEnv } = {},
) {
  const source = [opts.flag ?? '--source-dir', tree];
  const args = [cmd, ...source, ...target(version), '--cache-dir', path.join(work, 'cache')];
  if (cmd === 'build') args.push('--out', path.join(work, 'kubeadm'));
  return runCli(json ? [...args, '--json'] : args, { env: opts.env ?? noEngine, timeout: 5 * 60_000 });
}

const refusal =
  'error: the source tree is Kubernetes 1.20 (its newest changelog) but the target is v1.31.0: the binary would report v1.31.0 and be built from 1.20 code';

describe('plan and build on the real 1.20.2 tree', () => {
  it('a 1.31 target on the 1.20 tree: the same refusal, message and exit class from both, with and without --json', () => {
    const tree = k8sTree();
    for (const json of [false, true]) {
      const plan = run('plan', tree, 'v1.31.0', json);
      const build = run('build', tree, 'v1.31.0', json);
      expect(plan.status, plan.stderr).toBe(2);
      expect(build.status, build.stderr).toBe(plan.status);
      const lines = plan.stderr.trimEnd().split('\n');
      expect(lines).toHaveLength(2);
      expect(lines[0]).toBe(refusal);
      expect(lines[1]).toMatch(/^next: pass the source of v1\.31\.0 /);
      // build's stderr may carry progress lines before the error; its two-line error is plan's
      expect(build.stderr.trimEnd().split('\n').slice(-2)).toEqual(lines);
      expect(build.stderr).not.toMatch(/source drift|127\.0\.0\.1:1|Docker engine/);
      if (json) {
        const doc = JSON.parse(plan.stdout);
        expect(doc.error).toBe(lines[0]!.slice('error: '.length));
        expect(JSON.parse(build.stdout)).toEqual(doc);
      } else {
        expect(plan.stdout).toBe('');
        expect(build.stdout).toBe('');
      }
    }
    expect(fs.existsSync(path.join(work, 'kubeadm'))).toBe(false);
  });

  it('the 1.20.2 target on the same tree: plan reads the tree as build would (GOPATH mode, the 1.20 patch) and exits 0', () => {
    const tree = k8sTree();
    const r = run('plan', tree, 'v1.20.2', true);
    expect(r.status, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.buildMode).toBe('gopath');
    expect(doc.buildModeSource).toBe('tree');
    expect(doc.patches.diff).toContain('+\tCertificateValidity = time.Hour * 24 * 365 * 199');
    // a plan of a directory carries the tree's identity, like build's cache key
    const again = run('plan', tree, 'v1.20.2', true);
    expect(JSON.parse(again.stdout).cacheKey).toBe(doc.cacheKey);
  });

  it.skipIf(skipDockerTests)(
    "the same from Debian's tarball: plan reads its tree as build does after a miss, and both refuse alike",
    () => {
      requireFile(k8sTarball, "Debian's kubernetes source tarball");
      // the tree of a tarball is read after the cache lookup, on the engine's side of the build
      const withEngine = { env: {}, flag: '--source-tarball' };
      const plan = run('plan', k8sTarball, 'v1.31.0', true, withEngine);
      const build = run('build', k8sTarball, 'v1.31.0', true, withEngine);
      expect(plan.status, plan.stderr).toBe(2);
      expect(build.status, build.stderr).toBe(2);
      expect(plan.stderr.trimEnd().split('\n')[0]).toBe(refusal);
      expect(build.stderr.trimEnd().split('\n').slice(-2)).toEqual(plan.stderr.trimEnd().split('\n'));
      expect(JSON.parse(build.stdout)).toEqual(JSON.parse(plan.stdout));
      expect(fs.existsSync(path.join(work, 'kubeadm'))).toBe(false);
    },
    8 * 60_000,
  );
});
