import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLIENT_GO_CERT_FILE, CONSTANTS_FILE } from '../../src/core/patch-targets.js';
import { runCli } from '../helpers/env.js';
import { certGo, constants131 } from './fixtures/go-sources.js';
import { makeMiniTree, snapshot } from './fixtures/mini-tree.js';
import { COMMIT, V12415_DEFAULT, V12415_JSON } from './fixtures/version-outputs.js';

const temps: string[] = [];
const temp = (p: string) => (temps.push(p), p);
afterEach(() => {
  for (const t of temps.splice(0)) fs.rmSync(t, { recursive: true, force: true });
});

/** The two-line error contract: exactly `error: ...` and `next: ...`, no stack trace. */
function expectTwoLineError(
  r: { status: number | null; stderr: string; stdout: string },
  code: number,
  what: RegExp,
) {
  expect(r.status).toBe(code);
  expect(r.stderr).toMatch(/^error: [^\n]+\nnext: [^\n]+\n$/);
  expect(r.stderr.split('\n')[0]).toMatch(what);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.stdout).toBe('');
}

describe('plan', () => {
  it('plans v1.24.15 from a default-format version file', () => {
    const dir = temp(fs.mkdtempSync(path.join(os.tmpdir(), 'kf-plan-')));
    fs.writeFileSync(path.join(dir, 'version.txt'), V12415_DEFAULT);
    const r = runCli(['plan', '--version-file', path.join(dir, 'version.txt'), '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout);
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

  it('gives the same plan from -o json on stdin', () => {
    const fromFile = temp(fs.mkdtempSync(path.join(os.tmpdir(), 'kf-plan-')));
    fs.writeFileSync(path.join(fromFile, 'v'), V12415_DEFAULT);
    const a = JSON.parse(runCli(['plan', '--version-file', path.join(fromFile, 'v'), '--json']).stdout);
    const r = runCli(['plan', '--version-file', '-', '--json'], { input: V12415_JSON });
    expect(r.status).toBe(0);
    const b = JSON.parse(r.stdout);
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

  it('runs --kubeadm PATH with version -o json', () => {
    const bin = fakeKubeadm(true);
    const r = runCli(['plan', '--kubeadm', bin, '--json']);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).gitCommit).toBe(COMMIT);
    expect(fs.readFileSync(path.join(path.dirname(bin), 'calls'), 'utf8')).toBe('version -o json\n');
  });

  it('falls back to the default output when -o json fails', () => {
    const bin = fakeKubeadm(false);
    const r = runCli(['plan', '--kubeadm', bin, '--json']);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).image).toBe('golang:1.19.10-alpine');
    expect(fs.readFileSync(path.join(path.dirname(bin), 'calls'), 'utf8')).toBe('version -o json\nversion\n');
  });

  it('reports a kubeadm that fails both ways with exit 1 and two lines', () => {
    const dir = temp(fs.mkdtempSync(path.join(os.tmpdir(), 'kf-fake-kubeadm-')));
    const bin = path.join(dir, 'kubeadm');
    fs.writeFileSync(bin, '#!/bin/sh\necho "segfault" >&2\nexit 139\n', { mode: 0o755 });
    expectTwoLineError(runCli(['plan', '--kubeadm', bin]), 1, /version` failed/);
  });

  it('uses kubeadm on PATH by default', () => {
    const bin = fakeKubeadm(true);
    const r = runCli(['plan', '--json'], { env: { PATH: `${path.dirname(bin)}:${process.env.PATH}` } });
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).gitVersion).toBe('v1.24.15');
  });

  it('prints human text by default', () => {
    const r = runCli(['plan', '--kubernetes-version', 'v1.24.15']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('commit      (unknown: build needs --commit)');
    expect(r.stdout).toContain('image       (none: Go version unknown)');
  });

  it('reads the build mode and shows the patch with --source-dir', () => {
    const root = temp(makeMiniTree());
    const before = snapshot(root);
    const r = runCli([
      'plan',
      '--source-dir',
      root,
      '--kubernetes-version',
      'v1.20.2',
      '--go-version',
      '1.15.5',
      '--json',
    ]);
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.buildMode).toBe('gopath');
    expect(doc.buildModeSource).toBe('tree');
    expect(doc.patches.diff).toContain('+\tCertificateValidity = time.Hour * 24 * 365 * 199');
    expect(doc.patches.files.map((f: { file: string }) => f.file)).toEqual([
      CONSTANTS_FILE,
      CLIENT_GO_CERT_FILE,
    ]);
    expect(snapshot(root)).toEqual(before);
  });

  it('tells 1.31+ users about the kubeadm-config ConfigMap', () => {
    const r = runCli(['plan', '--kubernetes-version', 'v1.31.0', '--json']);
    const doc = JSON.parse(r.stdout);
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
      'a flag without its value',
      ['--kubernetes-version', 'v1.24.15', '--validity'],
      2,
      /Not enough arguments following: validity/,
    ],
    [
      'bad field on stdin',
      ['--version-file', '-'],
      2,
      /invalid gitCommit "zz"/,
      V12415_JSON.replace(COMMIT, 'zz'),
    ],
  ];
  it.each(bad)('refuses %s with two lines and no stack', (_name, args, code, what, input) => {
    expectTwoLineError(runCli(['plan', ...args], { input: input ?? '' }), code, what);
  });
});

describe('patch', () => {
  it('--check prints the diff and writes nothing', () => {
    const root = temp(makeMiniTree());
    const before = snapshot(root);
    const r = runCli(['patch', root, '--check']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`--- a/${CONSTANTS_FILE}`);
    expect(r.stdout).toContain('+\t\tNotAfter:              now.Add(time.Hour * 24 * 365 * 200).UTC(),');
    expect(snapshot(root)).toEqual(before);
  });

  it('patches, keeps the link and modes, and re-patches with other values', () => {
    const root = temp(makeMiniTree());
    const before = snapshot(root);
    const r = runCli(['patch', root, '--json']);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).written).toEqual([CONSTANTS_FILE, CLIENT_GO_CERT_FILE]);
    const after = snapshot(root);
    const changed = Object.keys(after).filter((k) => after[k] !== before[k]);
    expect(changed.sort()).toEqual([CONSTANTS_FILE, CLIENT_GO_CERT_FILE].sort());
    expect(after['vendor/k8s.io/client-go']).toBe('link:../../staging/src/k8s.io/client-go');
    expect(after[CLIENT_GO_CERT_FILE]!.startsWith('640:')).toBe(true);

    const again = runCli(['patch', root]);
    expect(again.status).toBe(0);
    expect(again.stdout).toMatch(/^no change needed/);
    const other = runCli(['patch', root, '--validity', '10y', '--ca-validity', '20y']);
    expect(other.status).toBe(0);
    expect(fs.readFileSync(path.join(root, CONSTANTS_FILE), 'utf8')).toContain(
      'CertificateValidity = time.Hour * 24 * 365 * 10\n',
    );
    expect(fs.readFileSync(path.join(root, CLIENT_GO_CERT_FILE), 'utf8')).toContain(
      'now.Add(time.Hour * 24 * 365 * 20).UTC()',
    );
  });

  it('patches the two 1.31+ constants', () => {
    const root = temp(makeMiniTree({ constants: constants131, minor: 31 }));
    const r = runCli(['patch', root]);
    expect(r.status).toBe(0);
    const text = fs.readFileSync(path.join(root, CONSTANTS_FILE), 'utf8');
    expect(text).toContain('\tCertificateValidityPeriod = time.Hour * 24 * 365 * 199\n');
    expect(text).toContain('\tCACertificateValidityPeriod = time.Hour * 24 * 365 * 200\n');
    expect(fs.readFileSync(path.join(root, CLIENT_GO_CERT_FILE), 'utf8')).toBe(certGo);
  });

  it('refuses drift in cert.go and writes nothing anywhere', () => {
    const root = temp(makeMiniTree({ cert: certGo.replace('func NewSelfSignedCACert(', 'func NewCACert(') }));
    const before = snapshot(root);
    expectTwoLineError(
      runCli(['patch', root]),
      1,
      new RegExp(`source drift in ${CLIENT_GO_CERT_FILE}: NewSelfSignedCACert.NotAfter`),
    );
    expect(snapshot(root)).toEqual(before);
  });

  it('refuses a duplicate declaration, naming file and target', () => {
    const root = temp(makeMiniTree());
    fs.appendFileSync(path.join(root, CONSTANTS_FILE), 'const CertificateValidity = time.Hour\n');
    const before = snapshot(root);
    expectTwoLineError(
      runCli(['patch', root]),
      1,
      /ambiguous target in cmd\/kubeadm\/app\/constants\/constants.go: CertificateValidity/,
    );
    expect(snapshot(root)).toEqual(before);
  });

  it('refuses a <=1.14 tree with the reason', () => {
    const root = temp(makeMiniTree({ minor: 14 }));
    expectTwoLineError(runCli(['patch', root]), 2, /1\.14.*no CertificateValidity constant/);
  });

  it('refuses a directory that is not a Kubernetes tree, and bad validities before reading', () => {
    const dir = temp(fs.mkdtempSync(path.join(os.tmpdir(), 'kf-not-tree-')));
    expectTwoLineError(runCli(['patch', dir]), 2, /has no files: is it a link to a missing directory\?/);
    fs.writeFileSync(path.join(dir, 'README.md'), 'not kubernetes\n');
    expectTwoLineError(runCli(['patch', dir]), 2, /is not a Kubernetes source tree/);
    expectTwoLineError(
      runCli(['patch', '/nonexistent/kf-tree']),
      2,
      /has no files: is it a link to a missing directory\?/,
    );
    const root = temp(makeMiniTree());
    const before = snapshot(root);
    expectTwoLineError(
      runCli(['patch', root, '--validity', '200y', '--ca-validity', '100y']),
      2,
      /longer than --ca-validity/,
    );
    expect(snapshot(root)).toEqual(before);
  });
});

describe('patch: all or nothing across its files (test-only fault hook)', () => {
  const fault = (v: string) => ({ env: { KF_TEST_FAULT: v } });
  const tmpNames = (root: string) => Object.keys(snapshot(root)).filter((f) => f.endsWith('.tmp'));

  it('a failing second rename puts the first file back and says so', () => {
    const root = temp(makeMiniTree());
    const before = snapshot(root);
    const r = runCli(['patch', root], fault('fail-swap:2'));
    expectTwoLineError(r, 1, /^error: cannot replace .+: EIO/);
    expect(r.stderr).toMatch(
      /next: .*nothing was changed \(the 1 file\(s\) already replaced were put back\)/,
    );
    expect(snapshot(root)).toEqual(before);
  });

  it('when putting back fails too, it does not claim a restore: each file state and its old copy are named; the next run puts it back', () => {
    const root = temp(makeMiniTree());
    const before = snapshot(root);
    const r = runCli(['patch', root], fault('fail-swap:2,fail-restore'));
    expect(r.status).toBe(1);
    expect(r.stderr).not.toMatch(/were restored|were put back/);
    expect(r.stderr).toMatch(
      new RegExp(
        `${CONSTANTS_FILE.replace(/\./g, '\\.')}: NEW content \\(put back failed: EIO[^;]*\\); old content at \\S+\\.old\\.tmp`,
      ),
    );
    expect(r.stderr).toMatch(/client-go\/util\/cert\/cert\.go: old content/);
    // a journal in a source tree is never followed (the tree is someone else's): a later run
    // patches from the state the files are in, and leaves the temp files alone
    expect(r.stderr).not.toMatch(/next run retries/);
    const leftBehind = tmpNames(root);
    const again = runCli(['patch', root, '--json']);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).not.toMatch(/interrupted/);
    expect(tmpNames(root)).toEqual(leftBehind);
    const after = Object.fromEntries(Object.entries(snapshot(root)).filter(([k]) => !k.endsWith('.tmp')));
    expect(
      Object.keys(after)
        .filter((k) => after[k] !== before[k])
        .sort(),
    ).toEqual([CONSTANTS_FILE, CLIENT_GO_CERT_FILE].sort());
  });

  it('killed between the two renames: the next run patches what is left', () => {
    const root = temp(makeMiniTree());
    // steps: 2 staged + 2 old links + the journal (in the tree root) and a marker in each of the
    // two directories + swaps ...: kill at the 2nd swap
    const r = runCli(['patch', root], fault(`kill-at:${4 + 3 + 2}`));
    expect(r.status).toBe(null); // SIGKILL
    expect(fs.readFileSync(path.join(root, CONSTANTS_FILE), 'utf8')).toContain('365 * 199'); // half done
    const again = runCli(['patch', root, '--json']);
    expect(again.status, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).written.sort()).toEqual([CLIENT_GO_CERT_FILE]);
    expect(tmpNames(root).length).toBeGreaterThan(0); // the killed run's, not followed nor removed
    expect(fs.readFileSync(path.join(root, CLIENT_GO_CERT_FILE), 'utf8')).toContain('365 * 200');
  });
});
