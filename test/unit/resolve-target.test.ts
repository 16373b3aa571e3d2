import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatPlanResult, runPlan, type PlanInput } from '../../src/commands/plan.js';
import { captureIo, expectFailure } from '../helpers/command-io.js';
import { composeShape } from '../helpers/fixtures.js';

// `--kubernetes-version vX.Y.Z` alone. The commit comes from the repository's
// tag (ls-remote, peeled), the Go version from the tree; plan labels both. A real git repository
// with an annotated and a lightweight tag; no Docker.

function git(cwd: string, args: string[]): string {
  return execFileSync('git', ['-c', 'user.email=test@kubeadm-forever', '-c', 'user.name=test', ...args], {
    cwd,
    encoding: 'utf8',
  }).trim();
}

let work: string;
let repo: string;
let first: string;
let second: string;
let third: string;
let annotatedTagObject: string;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-resolve-'));
  repo = composeShape('module', path.join(work, 'repo'));
  fs.writeFileSync(path.join(repo, '.go-version'), '1.19.8\n');
  git(repo, ['init', '-q']);
  git(repo, ['add', '-A']);
  git(repo, ['commit', '-qm', 'v1.27.3']);
  first = git(repo, ['rev-parse', 'HEAD']);
  git(repo, ['tag', '-a', 'v1.27.3', '-m', 'Kubernetes v1.27.3']);
  annotatedTagObject = git(repo, ['rev-parse', 'v1.27.3']);
  // the next release: no .go-version, the kube-cross tag instead
  fs.rmSync(path.join(repo, '.go-version'));
  fs.mkdirSync(path.join(repo, 'build/build-image/cross'), { recursive: true });
  fs.writeFileSync(path.join(repo, 'build/build-image/cross/VERSION'), 'v1.27.0-go1.20.5-bullseye.0\n');
  git(repo, ['add', '-A']);
  git(repo, ['commit', '-qm', 'v1.27.4']);
  second = git(repo, ['rev-parse', 'HEAD']);
  git(repo, ['tag', 'v1.27.4']);
  // a broken one
  fs.writeFileSync(path.join(repo, '.go-version'), 'tip\x07\n');
  git(repo, ['add', '-A']);
  git(repo, ['commit', '-qm', 'v1.27.5']);
  third = git(repo, ['rev-parse', 'HEAD']);
  git(repo, ['tag', '-a', 'v1.27.5', '-m', 'broken']);
});

afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** `plan` asked for `kubernetesVersion` with these flags and the test's cache dir. */
const plan = (kubernetesVersion: string, more: Partial<PlanInput> = {}) =>
  runPlan({ kubernetesVersion, cacheDir: path.join(work, 'cache'), ...more }, captureIo());

describe('plan --kubernetes-version alone with --repo', () => {
  it('an annotated tag: the peeled commit (not the tag object), Go from .go-version, both labelled', async () => {
    const io = captureIo();
    const doc = await runPlan({ kubernetesVersion: 'v1.27.3', repo, cacheDir: path.join(work, 'cache') }, io);
    expect(io.told()).toBe('');
    expect(doc.gitCommit).toBe(first);
    expect(doc.gitCommit).not.toBe(annotatedTagObject);
    expect(doc.goVersion).toBe('go1.19.8');
    expect(doc.image).toBe('golang:1.19.8-alpine');
    expect(doc.resolved.gitCommit).toEqual({ value: first, from: `annotated tag v1.27.3 of file://${repo}` });
    expect(doc.resolved.goVersion).toEqual({
      value: 'go1.19.8',
      from: `.go-version "1.19.8" at commit ${first.slice(0, 12)}`,
    });
    expect(doc.notes.join('\n')).not.toMatch(/commit unknown|Go version unknown/);
    expect(doc.ldflags).toContain(`gitCommit=${first}`);

    const text = formatPlanResult(doc);
    expect(text).toContain(`commit      ${first} (resolved from annotated tag v1.27.3 of file://${repo})`);
    expect(text).toContain(
      `go          go1.19.8 (resolved from .go-version "1.19.8" at commit ${first.slice(0, 12)})`,
    );
  });

  it('a lightweight tag, and the kube-cross tag when there is no .go-version', async () => {
    const doc = await plan('v1.27.4', { repo });
    expect(doc.gitCommit).toBe(second);
    expect(doc.resolved.gitCommit!.from).toBe(`tag v1.27.4 of file://${repo}`);
    expect(doc.goVersion).toBe('go1.20.5');
    expect(doc.resolved.goVersion!.from).toContain(
      'build/build-image/cross/VERSION "v1.27.0-go1.20.5-bullseye.0"',
    );
  });

  it('what is given stays: --commit and --go-version are not looked up', async () => {
    const doc = await plan('v1.27.3', { commit: second, goVersion: '1.21.0', repo });
    expect(doc).toMatchObject({
      gitCommit: second,
      goVersion: 'go1.21.0',
      resolved: { gitCommit: null, goVersion: null },
    });
    // only --commit: the Go version comes from that commit's tree
    const only = await plan('v1.27.3', { commit: second, repo });
    expect(only).toMatchObject({ gitCommit: second, goVersion: 'go1.20.5', resolved: { gitCommit: null } });
  });

  it('without a named source plan reads nothing (and says what is unknown)', async () => {
    const doc = await plan('v1.27.3');
    expect(doc).toMatchObject({
      gitCommit: null,
      goVersion: null,
      resolved: { gitCommit: null, goVersion: null },
    });
  });

  it('--source-dir: the Go version from the directory', async () => {
    const dir = composeShape('gopath', path.join(work, 'dir'));
    fs.writeFileSync(path.join(dir, '.go-version'), '1.22.5');
    const doc = await plan('v1.29.7', { sourceDir: dir });
    expect(doc.goVersion).toBe('go1.22.5');
    expect(doc.resolved.goVersion!.from).toBe(`.go-version "1.22.5" in ${dir}`);
    expect(doc.gitCommit).toBeNull();
  });

  it('a tag the repository does not have: two lines, nothing resolved', async () => {
    await expectFailure(plan('v1.27.9', { repo }), 1, /has no tag v1.27.9/);
  });

  it('a .go-version that says something else: two lines naming the file, escaped', async () => {
    await expectFailure(
      plan('v1.27.5', { repo }),
      1,
      /^\.go-version in the source tree says "tip\\u0007": expected a Go version/,
    );
    expect(third).toMatch(/^[0-9a-f]{40}$/);
  });

  it('a --repo that is no repository: two lines', async () => {
    await expectFailure(plan('v1.27.3', { repo: work }), 1, /cannot list the tags of/);
  });
});
