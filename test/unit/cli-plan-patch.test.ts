import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLIENT_GO_CERT_FILE, CONSTANTS_FILE } from '../../src/core/patch-targets.js';
import { formatPatchResult, runPatch, type PatchInput } from '../../src/commands/patch.js';
import { formatPlanResult, runPlan, type PlanInput } from '../../src/commands/plan.js';
import { captureIo, expectFailure } from '../helpers/command-io.js';
import { certGo, constants131 } from './fixtures/go-sources.js';
import { makeMiniTree, snapshot } from './fixtures/mini-tree.js';
import { COMMIT, V12415_DEFAULT, V12415_JSON } from './fixtures/version-outputs.js';

const temps: string[] = [];
const temp = (p: string) => (temps.push(p), p);
afterEach(() => {
  for (const t of temps.splice(0)) fs.rmSync(t, { recursive: true, force: true });
});

/** `plan ARGS` as the CLI would ask it, from flag words (the flags these tests use). */
function planInput(args: string[]): PlanInput {
  const input: Record<string, string> = {};
  for (let i = 0; i < args.length; i += 2) {
    const key = args[i]!.replace(/^--/, '').replace(/-(.)/g, (_m, c: string) => c.toUpperCase());
    input[key] = args[i + 1]!;
  }
  return { cacheDir: path.join(os.tmpdir(), 'kf-plan-cache-unused'), ...input } as PlanInput;
}

const plan = (args: string[], stdin?: string, env?: NodeJS.ProcessEnv) =>
  runPlan(planInput(args), captureIo({ stdin, env }));

const patchInput = (dir: string, more: Partial<PatchInput> = {}): PatchInput => ({
  dir,
  check: false,
  ...more,
});
const patch = (dir: string, more: Partial<PatchInput> = {}) => runPatch(patchInput(dir, more), captureIo());

describe('plan', () => {
  it('plans v1.24.15 from a default-format version file', async () => {
    const dir = temp(fs.mkdtempSync(path.join(os.tmpdir(), 'kf-plan-')));
    fs.writeFileSync(path.join(dir, 'version.txt'), V12415_DEFAULT);
    const io = captureIo();
    const doc = await runPlan(planInput(['--version-file', path.join(dir, 'version.txt')]), io);
    expect(io.told()).toBe('');
    expect(doc.image).toBe('golang:1.19.10-alpine');
    expect(doc.gitCommit).toBe(COMMIT);
    expect(doc.gitVersion).toBe('v1.24.15');
    expect(doc.goVersion).toBe('go1.19.10');
    expect(doc.platforms).toEqual(['linux/amd64']);
    expect(doc.buildMode).toBe('gopath');
    expect(doc.buildModeSource).toBe('inferred');
    expect(doc.validity.leaf).toEqual({ hours: 1743240, text: '199y' });
    expect(doc.cacheKey).toMatch(/^[0-9a-f]{64}$/);
    expect(doc.patches).toBeNull();
    for (const key of ['ldflags', 'env', 'notes']) expect(doc).toHaveProperty(key);
  });

  it('gives the same plan from -o json on stdin', async () => {
    const fromFile = temp(fs.mkdtempSync(path.join(os.tmpdir(), 'kf-plan-')));
    fs.writeFileSync(path.join(fromFile, 'v'), V12415_DEFAULT);
    const a = await plan(['--version-file', path.join(fromFile, 'v')]);
    const b = await plan(['--version-file', '-'], V12415_JSON);
    expect(b.image).toBe('golang:1.19.10-alpine');
    expect(b.gitCommit).toBe(COMMIT);
    expect(b).toEqual(a);
  });

  /** A stand-in kubeadm: a shell script that answers `version` like a real one (or fails -o json). */
  function fakeKubeadm(jsonWorks: boolean): string {
    const dir = temp(fs.mkdtempSync(path.join(os.tmpdir(), 'kf-fake-kubeadm-')));
    fs.writeFileSync(path.join(dir, 'json.txt'), V12415_JSON);
    fs.writeFileSync(path.join(dir, 'default.txt'), V12415_DEFAULT);
    const bin = path.join(dir, 'kubeadm');
    fs.writeFileSync(
      bin,
      [
        '#!/bin/sh',
        `echo "$@" >> "${dir}/calls"`,
        '[ "$1" = version ] || exit 3',
        `if [ "$2" = -o ]; then ${jsonWorks ? `cat "${dir}/json.txt"; exit 0` : 'echo "invalid output format" >&2; exit 1'}; fi`,
        `cat "${dir}/default.txt"`,
      ].join('\n'),
      { mode: 0o755 },
    );
    return bin;
  }

  it('runs --kubeadm PATH with version -o json', async () => {
    const bin = fakeKubeadm(true);
    expect((await plan(['--kubeadm', bin])).gitCommit).toBe(COMMIT);
    expect(fs.readFileSync(path.join(path.dirname(bin), 'calls'), 'utf8')).toBe('version -o json\n');
  });

  it('falls back to the default output when -o json fails', async () => {
    const bin = fakeKubeadm(false);
    expect((await plan(['--kubeadm', bin])).image).toBe('golang:1.19.10-alpine');
    expect(fs.readFileSync(path.join(path.dirname(bin), 'calls'), 'utf8')).toBe('version -o json\nversion\n');
  });

  it('reports a kubeadm that fails both ways with exit 1 and two lines', async () => {
    const dir = temp(fs.mkdtempSync(path.join(os.tmpdir(), 'kf-fake-kubeadm-')));
    const bin = path.join(dir, 'kubeadm');
    fs.writeFileSync(bin, '#!/bin/sh\necho "segfault" >&2\nexit 139\n', { mode: 0o755 });
    await expectFailure(plan(['--kubeadm', bin]), 1, /version` failed/);
  });

  it('uses kubeadm on PATH by default', async () => {
    const bin = fakeKubeadm(true);
    const doc = await plan([], undefined, {
      ...process.env,
      PATH: `${path.dirname(bin)}:${process.env.PATH}`,
    });
    expect(doc.gitVersion).toBe('v1.24.15');
  });

  it('prints human text by default', async () => {
    const text = formatPlanResult(await plan(['--kubernetes-version', 'v1.24.15']));
    expect(text).toContain('commit      (unknown: build needs --commit)');
    expect(text).toContain('image       (none: Go version unknown)');
    expect(text).toMatch(/^ldflags {5}\d+ -X version flags \(--verbose or --json shows them\)$/m);
  });

  it('reads the build mode and shows the patch with --source-dir', async () => {
    const root = temp(makeMiniTree());
    const before = snapshot(root);
    const doc = await plan([
      '--source-dir',
      root,
      '--kubernetes-version',
      'v1.20.2',
      '--go-version',
      '1.15.5',
    ]);
    expect(doc.buildMode).toBe('gopath');
    expect(doc.buildModeSource).toBe('tree');
    expect(doc.patches!.diff).toContain('+\tCertificateValidity = time.Hour * 24 * 365 * 199');
    expect(doc.patches!.files.map((f: { file: string }) => f.file)).toEqual([
      CONSTANTS_FILE,
      CLIENT_GO_CERT_FILE,
    ]);
    expect(snapshot(root)).toEqual(before);
  });

  it('tells 1.31+ users about the kubeadm-config ConfigMap', async () => {
    const doc = await plan(['--kubernetes-version', 'v1.31.0']);
    expect(doc.notes.join('\n')).toMatch(/kubeadm-config.*certificateValidityPeriod: 1743240h0m0s/);
  });

  const bad: Array<[string, string[], number, RegExp, string?]> = [
    ['bad gitVersion', ['--kubernetes-version', '1.24'], 2, /--kubernetes-version "1.24"/],
    ['bad commit', ['--kubernetes-version', 'v1.24.15', '--commit', 'abc123'], 2, /--commit "abc123"/],
    [
      'bad go version',
      ['--kubernetes-version', 'v1.24.15', '--go-version', 'latest'],
      2,
      /--go-version "latest"/,
    ],
    ['bad platform', ['--kubernetes-version', 'v1.24.15', '--platform', 'amd64'], 2, /--platform "amd64"/],
    [
      'zero validity',
      ['--kubernetes-version', 'v1.24.15', '--validity', '0y'],
      2,
      /--validity "0y".*more than zero/,
    ],
    ['negative validity', ['--kubernetes-version', 'v1.24.15', '--validity', '-1d'], 2, /more than zero/],
    ['too long', ['--kubernetes-version', 'v1.24.15', '--ca-validity', '300y'], 2, /more than 290y/],
    [
      'not a number',
      ['--kubernetes-version', 'v1.24.15', '--validity', 'forever'],
      2,
      /--validity "forever"/,
    ],
    ['leaf > CA', ['--kubernetes-version', 'v1.24.15', '--validity', '250y'], 2, /longer than --ca-validity/],
    ['<=1.14', ['--kubernetes-version', 'v1.14.10'], 2, /1\.14 is not supported/],
    ['two sources', ['--kubernetes-version', 'v1.24.15', '--version-file', '-'], 2, /both name the target/],
    [
      'commit without version',
      ['--version-file', '-', '--commit', COMMIT],
      2,
      /--commit only goes with --kubernetes-version/,
    ],
    ['missing file', ['--version-file', '/nonexistent/kf-version'], 2, /cannot read --version-file.*ENOENT/],
    ['missing kubeadm', ['--kubeadm', '/nonexistent/kubeadm'], 2, /cannot run kubeadm.*not found/],
    [
      'garbage on stdin',
      ['--version-file', '-'],
      2,
      /cannot parse the kubeadm version output; first line: hello/,
      'hello\n',
    ],
    [
      'bad field on stdin',
      ['--version-file', '-'],
      2,
      /invalid gitCommit "zz"/,
      V12415_JSON.replace(COMMIT, 'zz'),
    ],
  ];
  it.each(bad)('refuses %s with a two-line error', async (_name, args, code, what, input) => {
    await expectFailure(plan(args, input ?? ''), code as 1 | 2, what);
  });
});

describe('patch', () => {
  it('--check prints the diff and writes nothing', async () => {
    const root = temp(makeMiniTree());
    const before = snapshot(root);
    const r = await patch(root, { check: true });
    expect(r.written).toEqual([]);
    const text = formatPatchResult(r);
    expect(text).toBe(r.diff);
    expect(text).toContain(`--- a/${CONSTANTS_FILE}`);
    expect(text).toContain('+\t\tNotAfter:              now.Add(time.Hour * 24 * 365 * 200).UTC(),');
    expect(snapshot(root)).toEqual(before);
  });

  it('patches, keeps the link and modes, and re-patches with other values', async () => {
    const root = temp(makeMiniTree());
    const before = snapshot(root);
    expect((await patch(root)).written).toEqual([CONSTANTS_FILE, CLIENT_GO_CERT_FILE]);
    const after = snapshot(root);
    const changed = Object.keys(after).filter((k) => after[k] !== before[k]);
    expect(changed.sort()).toEqual([CONSTANTS_FILE, CLIENT_GO_CERT_FILE].sort());
    expect(after['vendor/k8s.io/client-go']).toBe('link:../../staging/src/k8s.io/client-go');
    expect(after[CLIENT_GO_CERT_FILE]!.startsWith('640:')).toBe(true);

    expect(formatPatchResult(await patch(root))).toMatch(/^no change needed/);
    await patch(root, { validity: '10y', caValidity: '20y' });
    expect(fs.readFileSync(path.join(root, CONSTANTS_FILE), 'utf8')).toContain(
      'CertificateValidity = time.Hour * 24 * 365 * 10\n',
    );
    expect(fs.readFileSync(path.join(root, CLIENT_GO_CERT_FILE), 'utf8')).toContain(
      'now.Add(time.Hour * 24 * 365 * 20).UTC()',
    );
  });

  it('patches the two 1.31+ constants', async () => {
    const root = temp(makeMiniTree({ constants: constants131, minor: 31 }));
    await patch(root);
    const text = fs.readFileSync(path.join(root, CONSTANTS_FILE), 'utf8');
    expect(text).toContain('\tCertificateValidityPeriod = time.Hour * 24 * 365 * 199\n');
    expect(text).toContain('\tCACertificateValidityPeriod = time.Hour * 24 * 365 * 200\n');
    expect(fs.readFileSync(path.join(root, CLIENT_GO_CERT_FILE), 'utf8')).toBe(certGo);
  });

  it('refuses drift in cert.go and writes nothing anywhere', async () => {
    const root = temp(makeMiniTree({ cert: certGo.replace('func NewSelfSignedCACert(', 'func NewCACert(') }));
    const before = snapshot(root);
    await expectFailure(
      patch(root),
      1,
      new RegExp(`source drift in ${CLIENT_GO_CERT_FILE}: NewSelfSignedCACert.NotAfter`),
    );
    expect(snapshot(root)).toEqual(before);
  });

  it('refuses a duplicate declaration, naming file and target', async () => {
    const root = temp(makeMiniTree());
    fs.appendFileSync(path.join(root, CONSTANTS_FILE), 'const CertificateValidity = time.Hour\n');
    const before = snapshot(root);
    await expectFailure(
      patch(root),
      1,
      /ambiguous target in cmd\/kubeadm\/app\/constants\/constants.go: CertificateValidity/,
    );
    expect(snapshot(root)).toEqual(before);
  });

  it('refuses a <=1.14 tree with the reason', async () => {
    const root = temp(makeMiniTree({ minor: 14 }));
    await expectFailure(patch(root), 2, /1\.14.*no CertificateValidity constant/);
  });

  it('refuses a directory that is not a Kubernetes tree, and bad validities before reading', async () => {
    const dir = temp(fs.mkdtempSync(path.join(os.tmpdir(), 'kf-not-tree-')));
    await expectFailure(patch(dir), 2, /has no files: is it a link to a missing directory\?/);
    fs.writeFileSync(path.join(dir, 'README.md'), 'not kubernetes\n');
    await expectFailure(patch(dir), 2, /is not a Kubernetes source tree/);
    await expectFailure(
      patch('/nonexistent/kf-tree'),
      2,
      /has no files: is it a link to a missing directory\?/,
    );
    const root = temp(makeMiniTree());
    const before = snapshot(root);
    await expectFailure(
      patch(root, { validity: '200y', caValidity: '100y' }),
      2,
      /longer than --ca-validity/,
    );
    expect(snapshot(root)).toEqual(before);
  });
});
