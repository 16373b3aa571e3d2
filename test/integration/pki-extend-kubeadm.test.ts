import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { runCli, skipDockerTests } from '../helpers/env.js';
import { stockKubeadm } from '../helpers/fixtures.js';
import {
  opensslNotAfter,
  opensslPubkey,
  opensslText,
  opensslVerify,
  snapshot,
  tempDir,
  yearsFromNow,
} from './pki-support.js';

// `ca extend` on a PKI and kubeconfigs issued by a real, unpatched kubeadm 1.20.2 (built once
// in Docker by stockKubeadm()). Everything happens in temp dirs: never /etc/kubernetes.

const CAS = ['ca.crt', 'etcd/ca.crt', 'front-proxy-ca.crt'];
const LEAVES: Record<string, string[]> = {
  'ca.crt': ['apiserver.crt', 'apiserver-kubelet-client.crt'],
  'etcd/ca.crt': [
    'etcd/server.crt',
    'etcd/peer.crt',
    'etcd/healthcheck-client.crt',
    'apiserver-etcd-client.crt',
  ],
  'front-proxy-ca.crt': ['front-proxy-client.crt'],
};
const CONFS = ['admin.conf', 'controller-manager.conf', 'scheduler.conf', 'kubelet.conf'];

function caDataOf(confText: string): string[] {
  const doc = parseDocument(confText).toJS() as { clusters: { cluster: Record<string, string> }[] };
  return doc.clusters.map((c) =>
    Buffer.from(c.cluster['certificate-authority-data']!, 'base64').toString('utf8'),
  );
}

describe.skipIf(skipDockerTests)('ca extend on a kubeadm 1.20.2 PKI', () => {
  let kubeadm: string;
  let pristine: string;
  const dirs: string[] = [];

  beforeAll(() => {
    kubeadm = stockKubeadm();
    pristine = tempDir('kubeadm-pki');
    dirs.push(pristine);
    const run = (args: string[]) =>
      execFileSync(kubeadm, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
    run([
      'init',
      'phase',
      'certs',
      'all',
      '--cert-dir',
      path.join(pristine, 'pki'),
      '--kubernetes-version',
      'v1.20.2',
    ]);
    run([
      'init',
      'phase',
      'kubeconfig',
      'all',
      '--cert-dir',
      path.join(pristine, 'pki'),
      '--kubeconfig-dir',
      pristine,
      '--kubernetes-version',
      'v1.20.2',
    ]);
    for (const c of CONFS) expect(fs.existsSync(path.join(pristine, c)), c).toBe(true);
  }, 30 * 60_000);

  afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

  /** A private copy of the kubeadm PKI, laid out as /etc/kubernetes. */
  function node(): string {
    const d = tempDir('kubeadm-node');
    dirs.push(d);
    execFileSync('cp', ['-a', `${pristine}/.`, d]);
    return d;
  }

  it('starts from 10-year CAs that check fails at --min-years 150', () => {
    const root = node();
    for (const ca of CAS)
      expect(yearsFromNow(opensslNotAfter(path.join(root, 'pki', ca)))).toBeLessThan(10.1);
    const r = runCli([
      'check',
      '--pki-dir',
      path.join(root, 'pki'),
      '--kubeconfig-dir',
      root,
      '--kubelet-dir',
      path.join(root, 'none'),
      '--min-years',
      '150',
    ]);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/pki\/ca\.crt: 9\.\d+ years left, under --min-years 150/);
  }, 60_000);

  it('re-signs the CAs with their own keys: leaves keep verifying, kubeconfigs embed the new CA, old CAs are backed up', () => {
    const root = node();
    const pki = path.join(root, 'pki');
    const before = snapshot(root);
    const oldText = Object.fromEntries(CAS.map((c) => [c, opensslText(path.join(pki, c))]));
    const oldPub = Object.fromEntries(CAS.map((c) => [c, opensslPubkey(path.join(pki, c))]));
    const oldPem = Object.fromEntries(CAS.map((c) => [c, fs.readFileSync(path.join(pki, c), 'utf8')]));
    const oldConfs = Object.fromEntries(CONFS.map((c) => [c, fs.readFileSync(path.join(root, c), 'utf8')]));

    const r = runCli(['ca', 'extend', '--pki-dir', pki, '--kubeconfig-dir', root, '--json']);
    expect(r.stderr).not.toMatch(/^error:/m);
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.extended).toHaveLength(3);

    for (const ca of CAS) {
      const file = path.join(pki, ca);
      const text = opensslText(file);
      // same key, same subject/issuer, same SKID and extensions; only serial and dates differ
      expect(opensslPubkey(file)).toBe(oldPub[ca]);
      const strip = (t: string) =>
        t
          .replace(/Serial Number:[\s\S]*?Signature Algorithm/, 'SERIAL')
          .replace(/Not After : .*/, '')
          .replace(/Signature Value:[\s\S]*?(?=subject=)/, '')
          .replace(/^(serial|notAfter)=.*$/gm, '');
      expect(strip(text)).toBe(strip(oldText[ca]!));
      expect(text).toMatch(/X509v3 Subject Key Identifier/);
      expect(yearsFromNow(opensslNotAfter(file))).toBeGreaterThanOrEqual(199.9);
      expect(fs.statSync(file).mode & 0o777).toBe(0o644);
      // every leaf kubeadm issued from the old certificate verifies against the new one
      const leaves = LEAVES[ca]!.map((l) => path.join(pki, l));
      const v = opensslVerify(file, leaves);
      expect(v.out).not.toMatch(/error/i);
      expect(v.ok).toBe(true);
      // the old CA is in the backup dir, byte for byte
      expect(fs.readFileSync(path.join(doc.backupDir, 'pki', ca), 'utf8')).toBe(oldPem[ca]);
    }
    expect(path.dirname(doc.backupDir)).toBe(root);
    expect(path.basename(doc.backupDir)).toMatch(/^pki-backup-\d{8}T\d{6}Z$/);

    // kubeconfigs: the new CA embedded; every other byte as it was; the old ones backed up
    const newCa = fs.readFileSync(path.join(pki, 'ca.crt'), 'utf8');
    for (const c of CONFS) {
      const now = fs.readFileSync(path.join(root, c), 'utf8');
      expect(caDataOf(now)).toEqual([newCa]);
      const blank = (t: string) =>
        t.replace(/certificate-authority-data: \S+/, 'certificate-authority-data: X');
      expect(blank(now)).toBe(blank(oldConfs[c]!));
      expect(fs.readFileSync(path.join(doc.backupDir, c), 'utf8')).toBe(oldConfs[c]);
      expect(fs.statSync(path.join(root, c)).mode & 0o777).toBe(0o600);
    }
    expect(doc.kubeconfigs.map((k: { file: string }) => path.basename(k.file)).sort()).toEqual(
      [...CONFS].sort(),
    );

    // untouched: keys, leaves, sa.*
    const after = snapshot(root);
    for (const [rel, sig] of Object.entries(before)) {
      if (CAS.includes(rel.replace(/^pki\//, '')) || CONFS.includes(rel)) continue;
      expect(after[rel], rel).toBe(sig);
    }

    // the client certificates in the kubeconfigs still chain to the new CA (check does it)
    const check = runCli([
      'check',
      '--pki-dir',
      pki,
      '--kubeconfig-dir',
      root,
      '--kubelet-dir',
      path.join(root, 'none'),
      '--json',
    ]);
    const report = JSON.parse(check.stdout);
    expect(report.ok).toBe(true);
    expect(check.status).toBe(0);
    for (const row of report.rows) {
      if (row.kind === 'leaf') expect(row.chainsTo, row.source).not.toBeNull();
      else expect(row.yearsLeft, row.source).toBeGreaterThanOrEqual(199.9);
    }
    // still fails --min-years 150 because the kubeadm leaves last 1 year: that is renew's job
    expect(
      runCli([
        'check',
        '--pki-dir',
        pki,
        '--kubeconfig-dir',
        root,
        '--kubelet-dir',
        path.join(root, 'none'),
        '--min-years',
        '150',
      ]).status,
    ).toBe(1);
  }, 180_000);

  it('brings a node without CA keys (a worker) to the extended CA with --new-ca-dir', () => {
    const cp = node();
    const worker = tempDir('kubeadm-worker');
    dirs.push(worker);
    // a worker has the cluster ca.crt (no key) and a kubelet.conf embedding it
    fs.mkdirSync(path.join(worker, 'pki'));
    fs.copyFileSync(path.join(cp, 'pki/ca.crt'), path.join(worker, 'pki/ca.crt'));
    fs.copyFileSync(path.join(cp, 'kubelet.conf'), path.join(worker, 'kubelet.conf'));
    const oldConf = fs.readFileSync(path.join(worker, 'kubelet.conf'), 'utf8');

    // without keys and without --new-ca-dir: a clear refusal
    const before = snapshot(worker);
    const refused = runCli(['ca', 'extend', '--pki-dir', path.join(worker, 'pki')]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/^error: .+ has no key beside it.+\nnext: .+--new-ca-dir.*\n$/);
    // the control plane's CA that was never extended is refused: nothing to install
    const notLonger = runCli([
      'ca',
      'extend',
      '--pki-dir',
      path.join(worker, 'pki'),
      '--new-ca-dir',
      path.join(cp, 'pki'),
    ]);
    expect(notLonger.status).toBe(1);
    expect(notLonger.stderr).toMatch(/already identical to .+nothing to install/);
    // a CA of another cluster is refused
    const stranger = tempDir('stranger');
    dirs.push(stranger);
    expect(runCli(['ca', 'init', '--out', stranger]).status).toBe(0);
    const wrong = runCli(['ca', 'extend', '--pki-dir', path.join(worker, 'pki'), '--new-ca-dir', stranger]);
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toMatch(/is not the same CA as/);
    expect(snapshot(worker)).toEqual(before);

    const cpExtend = runCli(['ca', 'extend', '--pki-dir', path.join(cp, 'pki'), '--kubeconfig-dir', cp]);
    expect(cpExtend.status).toBe(0);
    // the CAs are the procedure's first step: the hint names the rest, renew then check
    expect(cpExtend.stdout).toMatch(
      /\nnext, on this node.+\n {2}1\. kubeadm-forever renew --kubeadm \S+ --dry-run .+\n {2}2\. kubeadm-forever check --min-years 150\n$/,
    );
    const r = runCli([
      'ca',
      'extend',
      '--pki-dir',
      path.join(worker, 'pki'),
      '--new-ca-dir',
      path.join(cp, 'pki'),
      '--json',
    ]);
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.kubeconfigDir).toBe(worker); // the parent of a dir named pki
    const newCa = fs.readFileSync(path.join(cp, 'pki/ca.crt'), 'utf8');
    expect(fs.readFileSync(path.join(worker, 'pki/ca.crt'), 'utf8')).toBe(newCa);
    const conf = fs.readFileSync(path.join(worker, 'kubelet.conf'), 'utf8');
    expect(caDataOf(conf)).toEqual([newCa]);
    const blank = (t: string) =>
      t.replace(/certificate-authority-data: \S+/, 'certificate-authority-data: X');
    expect(blank(conf)).toBe(blank(oldConf));
    expect(fs.readFileSync(path.join(doc.backupDir, 'kubelet.conf'), 'utf8')).toBe(oldConf);
    // the kubelet's client certificate (issued by the old CA) verifies against what the worker now trusts
    const v = opensslVerify(path.join(worker, 'pki/ca.crt'), [
      path.join(cp, 'pki/apiserver-kubelet-client.crt'),
    ]);
    expect(v.ok).toBe(true);
  }, 180_000);

  it('refuses a CA key that does not match, a non-CA as CA and a truncated CA, changing nothing', () => {
    const cases: [string, (pki: string) => void, RegExp][] = [
      [
        'wrong key',
        (pki) => fs.copyFileSync(path.join(pki, 'front-proxy-ca.key'), path.join(pki, 'ca.key')),
        /ca\.key does not match/,
      ],
      [
        'leaf as CA',
        (pki) => fs.copyFileSync(path.join(pki, 'apiserver.crt'), path.join(pki, 'etcd/ca.crt')),
        /not a CA certificate/,
      ],
      [
        'truncated',
        (pki) => {
          const pem = fs.readFileSync(path.join(pki, 'front-proxy-ca.crt'), 'utf8');
          fs.writeFileSync(path.join(pki, 'front-proxy-ca.crt'), pem.slice(0, 300));
        },
        /truncated or damaged/,
      ],
    ];
    for (const [name, damage, message] of cases) {
      const root = node();
      const pki = path.join(root, 'pki');
      damage(pki);
      const before = snapshot(root); // the default backup dir would appear in root too
      const r = runCli(['ca', 'extend', '--pki-dir', pki, '--kubeconfig-dir', root]);
      expect(r.status, name).toBe(1);
      expect(r.stderr, name).toMatch(/^error: .+\nnext: .+\n$/);
      expect(r.stderr, name).toMatch(message);
      expect(snapshot(root), name).toEqual(before);
    }
  }, 180_000);

  it('fails cleanly on an unwritable backup dir, before writing anything', () => {
    const root = node();
    const pki = path.join(root, 'pki');
    const blocker = path.join(root, 'blocker');
    fs.writeFileSync(blocker, 'x');
    const before = snapshot(root);
    const r = runCli([
      'ca',
      'extend',
      '--pki-dir',
      pki,
      '--kubeconfig-dir',
      root,
      '--backup-dir',
      path.join(blocker, 'bk'),
    ]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^error: backup directory .+ not a directory\nnext: .+\n$/);
    expect(snapshot(root)).toEqual(before);
  }, 60_000);
});
