import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cliPath, repoRoot, runCli } from '../helpers/env.js';
import { runPromtool } from '../helpers/promtool.js';
import { opensslNotAfter, tempDirs } from './pki-support.js';

// `check --output prometheus` and `--textfile`, through the built CLI, on certificates `ca init`
// and `kubelet-cert` wrote; Prometheus' own promtool judges the text, openssl the dates.

const { tmp, cleanup } = tempDirs();
afterAll(cleanup);

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A small reader of the exposition format (label values unescaped), independent of the writer. */
function parseSamples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy;
    let l: RegExpExecArray | null;
    while ((l = re.exec(m[2] ?? '')) !== null)
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** A PKI with a CA bundle, a kubelet client certificate and an admin-style kubeconfig. */
function makeNode(prefix: string) {
  const root = tmp(prefix);
  const pki = path.join(root, 'pki');
  const kl = path.join(root, 'kubelet');
  expect(runCli(['ca', 'init', '--out', pki]).status).toBe(0);
  expect(runCli(['kubelet-cert', '--node', 'node-1', '--pki-dir', pki, '--out', kl]).status).toBe(0);
  const pem = fs.readFileSync(path.join(kl, 'kubelet-client-current.pem'), 'utf8');
  const cert = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/.exec(pem)![0];
  const key = pem.replace(cert, '');
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  fs.writeFileSync(
    path.join(root, 'admin.conf'),
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: kubernetes',
      `  cluster: {server: "https://127.0.0.1:6443", certificate-authority-data: ${b64(fs.readFileSync(path.join(pki, 'ca.crt'), 'utf8'))}}`,
      'users:',
      '- name: kubernetes-admin',
      `  user: {client-certificate-data: ${b64(cert)}, client-key-data: ${b64(key)}}`,
      '',
    ].join('\n'),
  );
  return { root, pki, kl, args: ['check', '--pki-dir', pki, '--kubeconfig-dir', root, '--kubelet-dir', kl] };
}

describe('check --output prometheus', () => {
  it('writes metrics promtool accepts, with dates openssl agrees with and hostile file names escaped', () => {
    const node = makeNode('prom');
    // a quote, a backslash and a line feed in a file name: label values must be escaped
    const hostile = path.join(node.pki, 'we"ird\\name\nline.crt');
    fs.copyFileSync(path.join(node.pki, 'front-proxy-ca.crt'), hostile);
    const r = runCli([...node.args, '--output', 'prometheus']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const check = runPromtool(['check', 'metrics'], r.stdout);
    expect(check.out).toBe('');
    expect(check.status).toBe(0);

    const samples = parseSamples(r.stdout);
    const notAfter = samples.filter((s) => s.name === 'x509_cert_not_after');
    // 3 CAs, the hostile copy, the kubelet certificate, the kubeconfig's cluster CA and user
    expect(notAfter).toHaveLength(7);
    for (const file of ['ca.crt', 'etcd/ca.crt', 'front-proxy-ca.crt']) {
      const s = notAfter.find((x) => x.labels.filepath === path.join(node.pki, file))!;
      expect(s.value).toBe(opensslNotAfter(path.join(node.pki, file)).getTime() / 1000);
      expect(s.labels).toMatchObject({ filename: path.basename(file), embedded_kind: '', subject_O: '' });
    }
    const odd = notAfter.find((x) => x.labels.filepath === hostile)!;
    expect(odd.labels.filename).toBe('we"ird\\name\nline.crt');
    expect(r.stdout).toContain('filename="we\\"ird\\\\name\\nline.crt"');
    const user = notAfter.find((x) => x.labels.embedded_kind === 'user')!;
    expect(user.labels).toMatchObject({
      filepath: path.join(node.root, 'admin.conf'),
      embedded_key: 'kubernetes-admin',
      subject_CN: 'system:node:node-1',
      subject_O: 'system:nodes',
      issuer_CN: 'kubernetes',
    });
    expect(BigInt(user.labels.serial_number!)).toBeGreaterThan(0n);
    const cluster = notAfter.find((x) => x.labels.embedded_kind === 'cluster')!;
    expect(cluster.labels).toMatchObject({ embedded_key: 'kubernetes', subject_CN: 'kubernetes' });

    const of = (name: string) => samples.filter((s) => s.name === name);
    expect(of('x509_cert_expired').every((s) => s.value === 0)).toBe(true);
    for (const s of of('x509_cert_expires_in_seconds')) expect(s.value / (365 * 86400)).toBeGreaterThan(198);
    expect(of('kubeadm_forever_cert_chain_valid').map((s) => s.value)).toEqual(Array(7).fill(1));
    // keys: the three CAs' (the hostile copy has none beside it), the kubelet's and the kubeconfig user's
    expect(of('kubeadm_forever_cert_key_match').map((s) => s.value)).toEqual([1, 1, 1, 1, 1]);
    expect(of('x509_read_errors')).toEqual([{ name: 'x509_read_errors', labels: {}, value: 0 }]);
    expect(of('x509_cert_error')).toEqual([]);
    expect(of('kubeadm_forever_check_ok')).toEqual([
      { name: 'kubeadm_forever_check_ok', labels: { min_years: '0' }, value: 1 },
    ]);
    expect(
      Math.abs(of('kubeadm_forever_check_timestamp_seconds')[0]!.value - Date.now() / 1000),
    ).toBeLessThan(300);
  }, 180_000);

  it('turns an unreadable file, a wrong key and a broken chain into metrics, exit 1, and still valid text', () => {
    const node = makeNode('prom-bad');
    const other = path.join(node.root, 'other');
    expect(runCli(['ca', 'init', '--out', other]).status).toBe(0);
    fs.copyFileSync(path.join(node.pki, 'ca.key'), path.join(node.pki, 'front-proxy-ca.key'));
    fs.writeFileSync(path.join(node.pki, 'broken.crt'), '-----BEGIN CERTIFICATE-----\nMIIB\n');
    // a kubelet certificate of another CA
    fs.rmSync(node.kl, { recursive: true });
    expect(runCli(['kubelet-cert', '--node', 'node-1', '--pki-dir', other, '--out', node.kl]).status).toBe(0);
    const r = runCli([...node.args, '--output', 'prometheus', '--min-years', '150']);
    expect(r.status).toBe(1);
    expect(runPromtool(['check', 'metrics'], r.stdout)).toEqual({ status: 0, out: '' });
    const samples = parseSamples(r.stdout);
    const find = (name: string, file: string) =>
      samples.find((s) => s.name === name && s.labels.filepath === file);
    expect(find('x509_cert_error', path.join(node.pki, 'broken.crt'))?.value).toBe(1);
    expect(samples.find((s) => s.name === 'x509_read_errors')?.value).toBe(1);
    expect(find('kubeadm_forever_cert_key_match', path.join(node.pki, 'front-proxy-ca.crt'))?.value).toBe(0);
    expect(
      find('kubeadm_forever_cert_chain_valid', path.join(node.kl, 'kubelet-client-current.pem'))?.value,
    ).toBe(0);
    expect(find('kubeadm_forever_cert_chain_valid', path.join(node.pki, 'ca.crt'))?.value).toBe(1);
    expect(samples.find((s) => s.name === 'kubeadm_forever_check_ok')).toMatchObject({
      labels: { min_years: '150' },
      value: 0,
    });
  }, 180_000);

  it('--textfile replaces the file atomically, mode 0644 whatever the umask, and leaves no temp file', () => {
    const node = makeNode('textfile');
    const dir = tmp('textfile-collector'); // outside the PKI being checked

    const file = path.join(dir, 'kubeadm_forever.prom');
    fs.writeFileSync(file, 'old\n', { mode: 0o600 });
    const before = fs.statSync(file).ino;
    // umask 077 would make a plain write 0600, which node_exporter (another user) cannot read
    const r = spawnSync(
      'sh',
      ['-c', 'umask 077 && exec "$@"', 'sh', process.execPath, cliPath, ...node.args, '--textfile', file],
      { encoding: 'utf8' },
    );
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^OK: every certificate/m); // stdout keeps the table
    expect(fs.statSync(file).mode & 0o777).toBe(0o644);
    expect(fs.statSync(file).ino).not.toBe(before); // renamed over, never rewritten in place
    expect(fs.readdirSync(dir)).toEqual(['kubeadm_forever.prom']);
    const text = fs.readFileSync(file, 'utf8');
    expect(runPromtool(['check', 'metrics'], text)).toEqual({ status: 0, out: '' });
    expect(parseSamples(text).filter((s) => s.name === 'x509_cert_not_after')).toHaveLength(6);
  }, 180_000);

  it('refuses a --textfile it cannot write with the two-line error and writes nothing', () => {
    const node = makeNode('textfile-bad');
    const blocker = path.join(tmp('textfile-bad-out'), 'not-a-dir');
    fs.writeFileSync(blocker, 'x');
    const r = runCli([...node.args, '--textfile', path.join(blocker, 'k.prom')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^error: cannot \w+ .*not-a-dir\/k\.prom: .*ENOTDIR.*\nnext: .+\n$/);
    expect(fs.readFileSync(blocker, 'utf8')).toBe('x');
    const both = runCli([...node.args, '--json', '--output', 'prometheus']);
    expect(both.status).toBe(2);
    expect(both.stderr).toMatch(/^error: --json and --output prometheus .*\nnext: .+\n$/);
  }, 180_000);
});

describe('examples/prometheus', () => {
  it('promtool accepts the example alert rules', () => {
    const r = runPromtool([
      'check',
      'rules',
      path.join(repoRoot, 'examples/prometheus/kubeadm-forever-alerts.yaml'),
    ]);
    expect(r.out).toMatch(/SUCCESS: 6 rules found/);
    expect(r.status).toBe(0);
  });
});
