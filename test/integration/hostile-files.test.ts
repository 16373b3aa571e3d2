import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cliPath, k8s1202, runCli } from '../helpers/env.js';
import { runPromtool } from '../helpers/promtool.js';
import { tempDirs } from './pki-support.js';

// Files on a node are untrusted: FIFOs (an open waits for a writer forever), links to devices
// (/dev/zero never ends), sparse files of a gigabyte. Every command must refuse them before
// reading, name the path, and — for check — list them and go on with the rest. Each CLI run has
// a short timeout: on a reader that opens a FIFO blindly it would hang, and the run is killed.

const { tmp, cleanup } = tempDirs();
afterAll(cleanup);

/** A run that must finish well inside `seconds` (the CLI is killed there: a hang fails the test). */
function run(args: string[], seconds = 30) {
  const started = Date.now();
  const r = runCli(args, { timeout: seconds * 1000 });
  return { ...r, ms: Date.now() - started };
}

/** A PKI from `ca init`, a kubelet client certificate, and admin.conf embedding both. */
function makeNode(prefix: string) {
  const root = tmp(prefix);
  const pki = path.join(root, 'pki');
  const kl = path.join(root, 'kubelet');
  expect(runCli(['ca', 'init', '--out', pki]).status).toBe(0);
  expect(runCli(['kubelet-cert', '--node', 'node-1', '--pki-dir', pki, '--out', kl]).status).toBe(0);
  const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');
  fs.writeFileSync(
    path.join(root, 'admin.conf'),
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: kubernetes',
      `  cluster: {server: "https://127.0.0.1:6443", certificate-authority-data: ${b64(fs.readFileSync(path.join(pki, 'ca.crt')))}}`,
      '',
    ].join('\n'),
  );
  return {
    root,
    pki,
    kl,
    args: ['check', '--pki-dir', pki, '--kubeconfig-dir', root, '--kubelet-dir', kl, '--apiserver', 'none'],
  };
}

function mkfifo(file: string): void {
  execFileSync('mkfifo', [file]);
}

describe('check lists hostile files as problems and goes on', () => {
  it('FIFOs, a /dev/zero link, a sparse 1 GB certificate, a 100 MB kubeconfig: listed in table, json and prometheus; not OK', () => {
    const node = makeNode('check-hostile');
    // a FIFO where apiserver.crt would be, a FIFO as a CA key, the kubelet link re-pointed at a
    // FIFO, a link to /dev/zero, a sparse gigabyte, a FIFO kubeconfig and a 100 MB one
    mkfifo(path.join(node.pki, 'apiserver.crt'));
    fs.rmSync(path.join(node.pki, 'front-proxy-ca.key'));
    mkfifo(path.join(node.pki, 'front-proxy-ca.key'));
    const current = path.join(node.kl, 'kubelet-client-current.pem');
    fs.rmSync(current);
    mkfifo(path.join(node.kl, 'fifo.pem'));
    fs.symlinkSync(path.join(node.kl, 'fifo.pem'), current);
    fs.symlinkSync('/dev/zero', path.join(node.pki, 'zero.crt'));
    execFileSync('truncate', ['-s', '1G', path.join(node.pki, 'sparse.crt')]);
    mkfifo(path.join(node.root, 'scheduler.conf'));
    fs.symlinkSync('loop.conf', path.join(node.root, 'loop.conf')); // ELOOP
    execFileSync('truncate', ['-s', '100M', path.join(node.root, 'big.conf')]);

    const table = run(node.args);
    expect(table.ms).toBeLessThan(20_000);
    expect(table.status).toBe(1);
    expect(table.stdout).not.toMatch(/^OK/m);
    const expected: [string, string][] = [
      [path.join(node.pki, 'apiserver.crt'), 'a FIFO, not a regular file'],
      [path.join(node.pki, 'zero.crt'), 'a character device, not a regular file'],
      [path.join(node.pki, 'sparse.crt'), '1024.0 MiB, over the limit of 1.0 MiB'],
      [path.join(node.root, 'scheduler.conf'), 'a FIFO, not a regular file'],
      [path.join(node.root, 'big.conf'), '100.0 MiB, over the limit of 4.0 MiB'],
      [
        path.join(node.root, 'loop.conf'),
        `ELOOP: too many symbolic links encountered, stat '${path.join(node.root, 'loop.conf')}'`,
      ],
    ];
    expect(table.stdout).toContain(
      `unreadable: ${path.join(node.pki, 'apiserver.crt')}: a FIFO, not a regular file`,
    );
    expect(table.stdout).toContain(
      `unreadable: ${path.join(node.pki, 'sparse.crt')}: 1024.0 MiB, over the limit of 1.0 MiB`,
    );
    expect(table.stdout).toContain(`unreadable: ${current}: a FIFO, not a regular file`);
    expect(table.stdout).toContain(
      `front-proxy-ca.crt: key unreadable: ${path.join(node.pki, 'front-proxy-ca.key')}: a FIFO, not a regular file`,
    );
    // the rest is still checked
    expect(table.stdout).toMatch(/ca\.crt +kubernetes +kubernetes/);

    const json = run([...node.args, '--json']);
    expect(json.status).toBe(1);
    const doc = JSON.parse(json.stdout) as { ok: boolean; errors: { file: string; message: string }[] };
    expect(doc.ok).toBe(false);
    for (const [file, message] of expected) expect(doc.errors).toContainEqual({ file, message });
    expect(doc.errors).toContainEqual({ file: current, message: 'a FIFO, not a regular file' });

    const prom = run([...node.args, '--output', 'prometheus']);
    expect(prom.status).toBe(1);
    expect(runPromtool(['check', 'metrics'], prom.stdout)).toEqual({ status: 0, out: '' });
    for (const file of [
      path.join(node.pki, 'apiserver.crt'),
      path.join(node.pki, 'sparse.crt'),
      path.join(node.root, 'big.conf'),
    ])
      expect(prom.stdout).toContain(`x509_cert_error{filepath="${file}",`);
    expect(prom.stdout).toContain('\nx509_read_errors 7\n');
    expect(prom.stdout).toContain('kubeadm_forever_check_ok{min_years="0"} 0\n');
  }, 180_000);

  it('memory stays bounded: peak RSS of check over a sparse 1 GB certificate and a 100 MB kubeconfig', () => {
    const node = makeNode('check-rss');
    execFileSync('truncate', ['-s', '1G', path.join(node.pki, 'sparse.crt')]);
    execFileSync('truncate', ['-s', '100M', path.join(node.root, 'big.conf')]);
    const r = spawnSync('/usr/bin/time', ['-v', process.execPath, cliPath, ...node.args], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status).toBe(1);
    const kb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1]);
    // node itself with the x509 modules is ~100 MB; reading the files blindly took 1.1 GB
    expect(kb).toBeGreaterThan(0);
    expect(kb).toBeLessThan(250 * 1024);
  }, 120_000);

  it('a FIFO named apiserver.crt alone is a problem: check does not say OK', () => {
    const node = makeNode('check-fifo-only');
    mkfifo(path.join(node.pki, 'apiserver.crt'));
    const r = run(node.args);
    expect(r.status).toBe(1);
    expect(r.stdout).not.toContain('OK: every certificate');
    expect(r.stdout).toContain(
      `FAILED (1):\n  ${path.join(node.pki, 'apiserver.crt')}: a FIFO, not a regular file`,
    );
  }, 120_000);

  it('a subdirectory that cannot be listed is a listed problem, not the end of the report', () => {
    const node = makeNode('check-deep');
    // a directory whose path exceeds PATH_MAX: listing it fails (ENAMETOOLONG) even as root.
    // Made one relative step at a time (mkdir, chdir), as no single path could name it.
    const top = path.join(node.pki, 'etcd', 'd'.repeat(200));
    execFileSync(
      process.execPath,
      [
        '-e',
        "const fs = require('fs'); for (let i = 0; i < 22; i++) { fs.mkdirSync('d'.repeat(200)); process.chdir('d'.repeat(200)); }",
      ],
      { cwd: path.join(node.pki, 'etcd') },
    );
    try {
      const r = run(node.args);
      expect(r.status).toBe(1);
      expect(r.stdout).toMatch(/unreadable: .*d{200}: directory not readable: ENAMETOOLONG/);
      expect(r.stdout).toMatch(/ca\.crt +kubernetes +kubernetes/);
      const prom = run([...node.args, '--output', 'prometheus']);
      expect(prom.status).toBe(1);
      expect(runPromtool(['check', 'metrics'], prom.stdout)).toEqual({ status: 0, out: '' });
      expect(prom.stdout).toContain('\nx509_read_errors 1\n');
      expect(prom.stdout).toMatch(/x509_cert_not_after\{filename="ca\.crt"/);
    } finally {
      // GNU rm removes it step by step; the shared cleanup could not
      execFileSync('rm', ['-rf', top]);
    }
  }, 120_000);
});

describe('check as another user', () => {
  it('a subdirectory that user cannot read (chmod 000, run via setpriv as nobody) is listed, and the report goes on', () => {
    const node = makeNode('check-locked');
    fs.chmodSync(node.root, 0o755);
    execFileSync('chmod', ['-R', 'a+rX', node.root]);
    const locked = path.join(node.pki, 'locked');
    fs.mkdirSync(locked, { mode: 0o000 });
    fs.chmodSync(locked, 0o000);
    const r = spawnSync(
      'setpriv',
      [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        process.execPath,
        cliPath,
        ...node.args,
        '--output',
        'prometheus',
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(r.status, r.stderr).toBe(1);
    expect(runPromtool(['check', 'metrics'], r.stdout)).toEqual({ status: 0, out: '' });
    expect(r.stdout).toContain(`x509_cert_error{filepath="${locked}",filename="locked"} 1`);
    expect(r.stdout).toMatch(/x509_cert_not_after\{filename="ca\.crt"/);
    expect(r.stdout).toContain('kubeadm_forever_check_ok{min_years="0"} 0');
  }, 120_000);
});

describe('commands that need a hostile file fail with the two-line error naming it', () => {
  const twoLines = (stderr: string, file: string, reason: string) => {
    const lines = stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain(file);
    expect(lines[0]).toContain(reason);
    expect(lines[0]).toMatch(/^error: /);
    expect(lines[1]).toMatch(/^next: /);
  };

  it('ca extend: a FIFO ca.crt, a FIFO ca.key, a FIFO admin.conf, a 1 GB ca.crt', () => {
    for (const [target, reason] of [
      ['pki/ca.crt', 'a FIFO, not a regular file'],
      ['pki/ca.key', 'a FIFO, not a regular file'],
      ['admin.conf', 'a FIFO, not a regular file'],
      ['pki/etcd/ca.crt', '1024.0 MiB, over the limit of 1.0 MiB'],
    ] as const) {
      const node = makeNode('extend-hostile');
      const file = path.join(node.root, target);
      fs.rmSync(file);
      if (reason.startsWith('a FIFO')) mkfifo(file);
      else execFileSync('truncate', ['-s', '1G', file]);
      const before = fs.readdirSync(node.root).sort();
      const r = run(['ca', 'extend', '--pki-dir', node.pki, '--kubeconfig-dir', node.root]);
      expect(r.ms).toBeLessThan(20_000);
      expect(r.status).toBe(1);
      twoLines(r.stderr, file, reason);
      expect(fs.readdirSync(node.root).sort()).toEqual(before); // no backup dir, nothing written
    }
  }, 300_000);

  it('kubelet-cert: a FIFO ca.crt, and kubelet-client-current.pem as a FIFO or a link to one', () => {
    const node = makeNode('kubelet-hostile');
    const ca = path.join(node.pki, 'ca.crt');
    const saved = fs.readFileSync(ca);
    fs.rmSync(ca);
    mkfifo(ca);
    let r = run(['kubelet-cert', '--node', 'node-1', '--pki-dir', node.pki, '--out', node.kl]);
    expect(r.status).toBe(1);
    twoLines(r.stderr, ca, 'a FIFO, not a regular file');
    fs.rmSync(ca);
    fs.writeFileSync(ca, saved);

    const current = path.join(node.kl, 'kubelet-client-current.pem');
    for (const asLink of [false, true]) {
      fs.rmSync(current);
      const fifo = asLink ? path.join(node.kl, 'elsewhere.pem') : current;
      fs.rmSync(fifo, { force: true });
      mkfifo(fifo);
      if (asLink) fs.symlinkSync(fifo, current);
      const names = fs.readdirSync(node.kl).sort();
      r = run(['kubelet-cert', '--node', 'node-1', '--pki-dir', node.pki, '--out', node.kl]);
      expect(r.ms).toBeLessThan(20_000);
      expect(r.status).toBe(1);
      twoLines(r.stderr, current, 'a FIFO, not a regular file');
      expect(fs.readdirSync(node.kl).sort()).toEqual(names);
      if (asLink) fs.rmSync(fifo);
    }
  }, 180_000);

  it('renew --dry-run: a FIFO static pod manifest, a FIFO apiserver.crt, a FIFO CA', () => {
    for (const [target, reason] of [
      ['manifests/kube-apiserver.yaml', 'a FIFO, not a regular file'],
      ['pki/apiserver.crt', 'a FIFO, not a regular file'],
      ['pki/front-proxy-ca.crt', 'a FIFO, not a regular file'],
      ['admin.conf', 'a FIFO, not a regular file'],
    ] as const) {
      const k = tmp('renew-hostile');
      const pki = path.join(k, 'pki');
      expect(runCli(['ca', 'init', '--out', pki]).status).toBe(0);
      fs.mkdirSync(path.join(k, 'manifests'));
      for (const f of [
        'apiserver.crt',
        'apiserver.key',
        'apiserver-kubelet-client.crt',
        'apiserver-kubelet-client.key',
        'front-proxy-client.crt',
        'front-proxy-client.key',
        'sa.key',
        'sa.pub',
      ])
        fs.writeFileSync(path.join(pki, f), 'placeholder\n');
      for (const f of ['admin.conf', 'controller-manager.conf', 'scheduler.conf'])
        fs.writeFileSync(path.join(k, f), 'apiVersion: v1\nkind: Config\n');
      fs.writeFileSync(
        path.join(k, 'manifests/kube-apiserver.yaml'),
        'spec:\n  containers:\n  - image: registry.k8s.io/kube-apiserver:v1.20.2\n',
      );
      const kubeadm = path.join(k, 'kubeadm');
      fs.writeFileSync(kubeadm, `#!/bin/sh\necho '${k8s1202.versionJson}'\n`, { mode: 0o755 });
      const file = path.join(k, target);
      fs.rmSync(file);
      mkfifo(file);
      const r = run([
        'renew',
        '--dry-run',
        '--kubeadm',
        kubeadm,
        '--kubernetes-dir',
        k,
        '--kubelet-pki-dir',
        path.join(k, 'kubelet'),
        '--backup-dir',
        path.join(k, 'backups'),
        '--validity',
        '1y',
      ]);
      expect(r.ms).toBeLessThan(20_000);
      expect(r.status, r.stderr).toBe(1);
      twoLines(
        r.stderr
          .split('\n')
          .filter((l) => /^(error|next): /.test(l))
          .join('\n'),
        file,
        reason,
      );
    }
  }, 300_000);
});

describe('check output: -o json, control bytes', () => {
  it('check -o json prints the same document as --json (and an error as JSON too)', () => {
    const node = makeNode('check-o-json');
    const a = run([...node.args, '-o', 'json']);
    const b = run([...node.args, '--json']);
    expect(a.status).toBe(0);
    expect(b.status).toBe(0);
    const strip = (t: string) => t.replace(/"checkedAt": "[^"]+"/, '"checkedAt": "-"');
    expect(strip(a.stdout)).toBe(strip(b.stdout));
    expect((JSON.parse(a.stdout) as { ok: boolean }).ok).toBe(true);
    const bad = run([...node.args, '-o', 'json', '--min-years', '-1']);
    expect(bad.status).toBe(2);
    expect(JSON.parse(bad.stdout)).toMatchObject({ error: 'invalid --min-years "-1"' });
  }, 120_000);

  it('control bytes in file names are escaped in the table, prometheus and JSON outputs', () => {
    const node = makeNode('check-ctl');
    // ESC sequences, a carriage return, a C1 CSI and a direction mark in names: a copy of a
    // good CA (a row) and an unreadable FIFO (an error line)
    const evil = 'evil\x1b[31mred\r\u009b2J\u202e';
    fs.copyFileSync(path.join(node.pki, 'ca.crt'), path.join(node.pki, `${evil}.crt`));
    mkfifo(path.join(node.pki, `${evil}-fifo.crt`));
    // eslint-disable-next-line no-control-regex -- matching control characters is the point
    const raw = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

    const table = run(node.args);
    expect(table.status).toBe(1);
    expect(table.stdout).not.toMatch(raw);
    expect(table.stdout).toContain('evil\\x1b[31mred\\r\\x9b2J\\u202e.crt ');
    expect(table.stdout).toContain(
      'unreadable: ' + path.join(node.pki, 'evil\\x1b[31mred\\r\\x9b2J\\u202e-fifo.crt'),
    );

    const prom = run([...node.args, '--output', 'prometheus']);
    expect(prom.status).toBe(1);
    expect(prom.stdout).not.toMatch(raw);
    expect(runPromtool(['check', 'metrics'], prom.stdout)).toEqual({ status: 0, out: '' });
    expect(prom.stdout).toContain('filename="evil\\\\x1b[31mred\\\\r\\\\x9b2J\\\\u202e.crt"');

    const json = run([...node.args, '--json']);
    expect(json.stdout).not.toMatch(raw);
    const doc = JSON.parse(json.stdout) as { rows: { file: string }[] };
    // JSON keeps the name exactly, spelled with \u escapes
    expect(doc.rows.map((r) => r.file)).toContain(path.join(node.pki, `${evil}.crt`));
    expect(json.stdout).toContain('\\u001b[31mred\\r\\u009b2J\\u202e.crt');
  }, 120_000);
});
