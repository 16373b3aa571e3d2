import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  makeControlPlaneNode,
  readTree,
  runCliInNode,
  type TestNode,
} from '../helpers/control-plane-node.js';
import { customKubeadm } from '../helpers/custom-kubeadm.js';
import { k8s1202, repoRoot, runCli, skipDockerTests } from '../helpers/env.js';
import { stockKubeadm } from '../helpers/fixtures.js';

/**
 * `renew` on a control-plane node made by a stock kubeadm 1.20.2, inside private mount
 * namespaces where the node's temp dir is /etc/kubernetes (needs root for `unshare -m`), with
 * the kubeadm this tool patched (199y leaves, 200y CAs). Both binaries are built from Debian's
 * source with Docker once and cached under test/.fixtures.
 */
const twoLineError = /^error: .+\nnext: .+\n$/;
const leafCerts = [
  'apiserver.crt',
  'apiserver-kubelet-client.crt',
  'apiserver-etcd-client.crt',
  'front-proxy-client.crt',
  'etcd/server.crt',
  'etcd/peer.crt',
  'etcd/healthcheck-client.crt',
];
const renewedKubeconfigs = ['admin.conf', 'controller-manager.conf', 'scheduler.conf'];
const yearMs = 365 * 24 * 3600 * 1000;

/** NotAfter in years from now, read by openssl (the independent checker). */
function opensslYears(pem: string | Buffer): number {
  const out = execFileSync('openssl', ['x509', '-noout', '-enddate'], { input: pem, encoding: 'utf8' });
  const m = /^notAfter=(.+)$/m.exec(out);
  if (!m) throw new Error(`openssl printed no notAfter: ${out}`);
  return (new Date(m[1]!).getTime() - Date.now()) / yearMs;
}

function kubeconfigClientCert(file: string): Buffer {
  const doc = parse(fs.readFileSync(file, 'utf8')) as {
    users: { user: { 'client-certificate-data': string } }[];
  };
  return Buffer.from(doc.users[0]!.user['client-certificate-data'], 'base64');
}

function treeOf(node: TestNode): Map<string, Buffer> {
  const all = new Map<string, Buffer>();
  for (const [k, v] of readTree(node.kubernetesDir)) all.set(`kubernetes/${k}`, v);
  for (const [k, v] of readTree(node.kubeletPkiDir)) all.set(`kubelet-pki/${k}`, v);
  return all;
}

function expectUnchanged(node: TestNode, before: Map<string, Buffer>): void {
  const after = treeOf(node);
  expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
  for (const [name, data] of before) expect(after.get(name)?.equals(data), name).toBe(true);
  expect(fs.existsSync(node.backupDir)).toBe(false);
}

/** `ca extend` inside the node (its CAs were kubeadm's 10-year ones), backup outside /etc/kubernetes. */
function extendCas(node: TestNode): void {
  const r = runCliInNode(node, [
    'ca',
    'extend',
    '--pki-dir',
    '/etc/kubernetes/pki',
    '--backup-dir',
    path.join(node.root, `ca-backup-${Date.now()}`),
  ]);
  if (r.status !== 0) throw new Error(`ca extend failed: ${r.stderr}`);
}

describe.skipIf(skipDockerTests)('renew on a kubeadm 1.20.2 control-plane node', () => {
  let stock: string;
  let custom: string;
  const nodes: TestNode[] = [];
  const newNode = () => {
    const n = makeControlPlaneNode(stock);
    nodes.push(n);
    return n;
  };
  const nodeArgs = (n: TestNode) => ['--kubelet-pki-dir', n.kubeletPkiDir, '--backup-dir', n.backupDir];

  beforeAll(async () => {
    if (process.getuid?.() !== 0)
      throw new Error('these tests need root: `unshare -m` and bind mounts make the private /etc/kubernetes');
    if (!fs.existsSync(path.join(repoRoot, 'dist/cli.js')))
      throw new Error('dist/cli.js missing: run `npm run build` first');
    stock = stockKubeadm();
    custom = await customKubeadm();
  }, 40 * 60_000);
  afterAll(() => {
    for (const n of nodes) n.cleanup();
  });

  it('stops before any change on a missing binary, another version and a missing PKI file', () => {
    const node = newNode();
    const base = ['renew', '--restart', 'manifests', '--restart-wait', '0', ...nodeArgs(node)];
    let before = treeOf(node);

    const missing = runCliInNode(node, [...base, '--kubeadm', path.join(node.root, 'no-such-kubeadm')]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(twoLineError);
    expect(missing.stderr).toMatch(/cannot run kubeadm at ".*no-such-kubeadm": not found/);
    expectUnchanged(node, before);

    // a kubeadm of another release (a script answering `version -o json` like kubeadm 1.21.0 would)
    const other = path.join(node.root, 'kubeadm-v1.21.0');
    const json = k8s1202.versionJson.replace(/v1\.20\.2/g, 'v1.21.0').replace('"minor":"20"', '"minor":"21"');
    fs.writeFileSync(other, `#!/bin/sh\necho '${json}'\n`, { mode: 0o755 });
    const wrong = runCliInNode(node, [...base, '--kubeadm', other]);
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toMatch(twoLineError);
    expect(wrong.stderr).toContain(
      'kubeadm is v1.21.0 but kube-apiserver runs k8s.gcr.io/kube-apiserver:v1.20.2',
    );
    expectUnchanged(node, before);

    // the real stock binary against a control plane that runs v1.20.3
    const apiserver = path.join(node.kubernetesDir, 'manifests/kube-apiserver.yaml');
    const original = fs.readFileSync(apiserver, 'utf8');
    fs.writeFileSync(apiserver, original.replace('kube-apiserver:v1.20.2', 'kube-apiserver:v1.20.3'));
    before = treeOf(node);
    const newer = runCliInNode(node, [...base, '--kubeadm', stock]);
    expect(newer.status).toBe(1);
    expect(newer.stderr).toMatch(twoLineError);
    expect(newer.stderr).toContain(
      'kubeadm is v1.20.2 but kube-apiserver runs k8s.gcr.io/kube-apiserver:v1.20.3',
    );
    expectUnchanged(node, before);
    fs.writeFileSync(apiserver, original);

    const crt = path.join(node.kubernetesDir, 'pki/apiserver.crt');
    const saved = fs.readFileSync(crt);
    fs.rmSync(crt);
    before = treeOf(node);
    const gone = runCliInNode(node, [...base, '--kubeadm', custom]);
    expect(gone.status).toBe(1);
    expect(gone.stderr).toMatch(twoLineError);
    expect(gone.stderr).toContain('missing /etc/kubernetes/pki/apiserver.crt');
    expectUnchanged(node, before);
    fs.writeFileSync(crt, saved);
    before = treeOf(node);

    // kubeadm's 10-year CAs under 199-year leaves: refused, naming both dates
    const shortCas = runCliInNode(node, [...base, '--kubeadm', custom]);
    expect(shortCas.status).toBe(1);
    expect(shortCas.stderr).toMatch(twoLineError);
    expect(shortCas.stderr).toMatch(
      /^error: refused: 199y leaf certificates renewed now would end \d{4}-\S+Z, after its CA ca\.crt \(20\d\d-\S+Z\)/,
    );
    expect(shortCas.stderr).toMatch(
      /next: extend the CAs first \(`kubeadm-forever ca extend --pki-dir \/etc\/kubernetes\/pki`\).* or pass --allow-shorter/,
    );
    expectUnchanged(node, before);

    // outside a namespace: a directory that is not /etc/kubernetes is refused for a real renewal
    const notEtc = runCli([...base, '--kubeadm', custom, '--kubernetes-dir', node.kubernetesDir]);
    expect(notEtc.status).toBe(1);
    expect(notEtc.stderr).toMatch(twoLineError);
    expect(notEtc.stderr).toContain('kubeconfigs in /etc/kubernetes only');

    const noKubeadm = runCliInNode(node, ['renew', ...nodeArgs(node)]);
    expect(noKubeadm.status).toBe(2);
    expect(noKubeadm.stderr).toMatch(twoLineError);
    expectUnchanged(node, before);
  }, 120_000);

  it('--dry-run prints every step and leaves every file byte-identical', () => {
    const node = newNode();
    extendCas(node);
    const before = treeOf(node);
    const r = runCliInNode(node, [
      'renew',
      '--kubeadm',
      custom,
      '--dry-run',
      '--json',
      '--kubelet-signing-duration',
      '200y',
      ...nodeArgs(node),
    ]);
    expect(r.status, r.stderr).toBe(0);
    expectUnchanged(node, before);
    const doc = JSON.parse(r.stdout) as {
      dryRun: boolean;
      commands: string[][];
      kubeletSigning: { after: string; diff: string };
    };
    expect(doc.dryRun).toBe(true);
    expect(doc.commands).toEqual([[custom, 'certs', 'renew', 'all', '--cert-dir', '/etc/kubernetes/pki']]);
    expect(doc.kubeletSigning.after).toBe('1752000h');
    expect(doc.kubeletSigning.diff).toContain('+    - --cluster-signing-duration=1752000h');
    expect(r.stderr).toContain('dry run: nothing changed');
    expect(r.stderr).toContain(`run: ${custom} certs renew all --cert-dir /etc/kubernetes/pki`);
  }, 180_000); // a node, ca extend and the dry run on a loaded 2-core machine

  it('renews every leaf and kubeconfig to >=198.9 years, restarts via the manifests, and rolls back', () => {
    const node = newNode();
    extendCas(node); // the documented order: CAs first, then renew
    const before = treeOf(node);
    const r = runCliInNode(node, [
      'renew',
      '--kubeadm',
      custom,
      '--restart',
      'manifests',
      '--restart-wait',
      '1',
      '--kubelet-signing-duration',
      '1752000h',
      '--json',
      ...nodeArgs(node),
    ]);
    expect(r.status, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as {
      backup: string;
      changed: string[];
      restart: { strategy: string; components: string[] };
      warnings: string[];
      check: { ok: boolean; summary: string };
    };
    // the PKI `check` ran on the result and found every renewed certificate long enough
    expect(doc.check.ok).toBe(true);
    expect(doc.check.summary).toMatch(
      /^\d+ renewed certificates, the shortest has 198\.9\d years left \(asked 199y\)$/,
    );

    // kubeadm's own output was streamed
    expect(r.stderr).toContain('kubeadm: certificate for serving the Kubernetes API renewed');
    // the CAs were extended first: no lifetime warning
    expect(doc.warnings.join('\n')).not.toMatch(/after its CA/);

    const pki = path.join(node.kubernetesDir, 'pki');
    for (const f of leafCerts)
      expect(opensslYears(fs.readFileSync(path.join(pki, f))), f).toBeGreaterThanOrEqual(198.9);
    for (const f of renewedKubeconfigs) {
      expect(opensslYears(kubeconfigClientCert(path.join(node.kubernetesDir, f))), f).toBeGreaterThanOrEqual(
        198.9,
      );
    }
    // CAs are not renewed
    expect(fs.readFileSync(path.join(pki, 'ca.crt')).equals(before.get('kubernetes/pki/ca.crt')!)).toBe(true);

    // manifests back in place: byte-identical except the one signing-duration line
    expect(doc.restart).toEqual(
      expect.objectContaining({
        strategy: 'manifests',
        components: ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler'],
      }),
    );
    const manifests = path.join(node.kubernetesDir, 'manifests');
    expect(fs.readdirSync(manifests).sort()).toEqual([
      'etcd.yaml',
      'kube-apiserver.yaml',
      'kube-controller-manager.yaml',
      'kube-scheduler.yaml',
    ]);
    for (const m of ['etcd.yaml', 'kube-apiserver.yaml', 'kube-scheduler.yaml']) {
      expect(
        fs.readFileSync(path.join(manifests, m)).equals(before.get(`kubernetes/manifests/${m}`)!),
        m,
      ).toBe(true);
    }
    const kcm = fs.readFileSync(path.join(manifests, 'kube-controller-manager.yaml'), 'utf8');
    expect(kcm).toBe(
      before
        .get('kubernetes/manifests/kube-controller-manager.yaml')!
        .toString()
        .replace(
          '    - --use-service-account-credentials=true\n',
          '    - --use-service-account-credentials=true\n    - --cluster-signing-duration=1752000h\n',
        ),
    );
    expect(fs.readdirSync(node.kubernetesDir).filter((n) => n.startsWith('.kubeadm-forever'))).toEqual([]);
    expect(fs.readdirSync(manifests).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    expect(doc.changed).toEqual(
      expect.arrayContaining([
        'kubernetes/pki/apiserver.crt',
        'kubernetes/admin.conf',
        'kubernetes/manifests/kube-controller-manager.yaml',
      ]),
    );
    expect(doc.changed).not.toContain('kubernetes/pki/ca.crt');

    // the backup: 0600, and it holds the old PKI (read with tar, not with our reader)
    expect(fs.statSync(doc.backup).mode & 0o777).toBe(0o600);
    const x = path.join(node.root, 'extracted');
    fs.mkdirSync(x);
    execFileSync('tar', ['-xzf', doc.backup, '-C', x]);
    for (const f of [
      ...leafCerts.map((c) => `pki/${c}`),
      'pki/ca.key',
      ...renewedKubeconfigs,
      'manifests/kube-controller-manager.yaml',
    ]) {
      expect(fs.readFileSync(path.join(x, 'kubernetes', f)).equals(before.get(`kubernetes/${f}`)!), f).toBe(
        true,
      );
    }
    expect(fs.readlinkSync(path.join(x, 'kubelet-pki/kubelet-client-current.pem'))).toBe(
      path.join(node.kubeletPkiDir, 'kubelet-client-2026-01-01-00-00-00.pem'),
    );

    // rollback --dry-run verifies and lists, and writes nothing
    const renewed = treeOf(node);
    const backupsBefore = fs.readdirSync(node.backupDir);
    const dry = runCliInNode(node, [
      'renew',
      '--rollback',
      doc.backup,
      '--dry-run',
      '--json',
      ...nodeArgs(node),
    ]);
    expect(dry.status, dry.stderr).toBe(0);
    expect((JSON.parse(dry.stdout) as { restored: string[] }).restored).toContain(
      'kubernetes/pki/apiserver.crt',
    );
    const afterDry = treeOf(node);
    for (const [name, data] of renewed) expect(afterDry.get(name)?.equals(data), name).toBe(true);
    expect(fs.readdirSync(node.backupDir)).toEqual(backupsBefore);

    // rollback restores every byte of the old state
    const back = runCliInNode(node, [
      'renew',
      '--rollback',
      doc.backup,
      '--restart',
      'manifests',
      '--restart-wait',
      '1',
      '--json',
      ...nodeArgs(node),
    ]);
    expect(back.status, back.stderr).toBe(0);
    const rb = JSON.parse(back.stdout) as { preRollbackBackup: string; restored: string[] };
    expect(rb.restored).toEqual(
      expect.arrayContaining(['kubernetes/pki/apiserver.crt', 'kubernetes/admin.conf']),
    );
    const after = treeOf(node);
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    for (const [name, data] of before) expect(after.get(name)?.equals(data), name).toBe(true);
    expect(opensslYears(fs.readFileSync(path.join(pki, 'apiserver.crt')))).toBeLessThan(1.1);
    expect(fs.existsSync(rb.preRollbackBackup)).toBe(true);

    // a damaged backup is refused before anything is written
    const damaged = path.join(node.root, 'damaged.tar.gz');
    fs.writeFileSync(damaged, fs.readFileSync(doc.backup).subarray(0, 4000));
    const stateBefore = treeOf(node);
    const refused = runCliInNode(node, ['renew', '--rollback', damaged, ...nodeArgs(node)]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(twoLineError);
    const stateAfter = treeOf(node);
    for (const [name, data] of stateBefore) expect(stateAfter.get(name)?.equals(data), name).toBe(true);
  }, 180_000);
});

/**
 * Kubernetes 1.31+: there is no 1.31 kubeadm here, so a script stands in for it (it answers
 * `version -o json` as v1.31.0 and logs `certs renew`), and a fake kubectl on PATH serves the
 * kubeadm-config ConfigMap of a stock 1.31 cluster (test/fixtures/renew). What is tested is the
 * tool's part: read, fix, back up, replace before `certs renew`, diff, advice.
 */
describe.skipIf(skipDockerTests)(
  'renew for Kubernetes 1.31+ (kubeadm-config ConfigMap, fake kubectl on PATH)',
  () => {
    const fixtures = path.join(repoRoot, 'test/fixtures/renew');
    let node: TestNode;
    let env: NodeJS.ProcessEnv;
    let kubeadm131: string;
    let log: string;

    beforeAll(() => {
      if (process.getuid?.() !== 0)
        throw new Error(
          'these tests need root: `unshare -m` and bind mounts make the private /etc/kubernetes',
        );
      node = makeControlPlaneNode(stockKubeadm());
      extendCas(node);
      for (const m of ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler']) {
        const f = path.join(node.kubernetesDir, `manifests/${m}.yaml`);
        fs.writeFileSync(
          f,
          fs.readFileSync(f, 'utf8').replace(`k8s.gcr.io/${m}:v1.20.2`, `registry.k8s.io/${m}:v1.31.0`),
        );
      }
      const bin = path.join(node.root, 'bin');
      fs.mkdirSync(bin);
      fs.copyFileSync(path.join(fixtures, 'fake-kubectl'), path.join(bin, 'kubectl'));
      fs.chmodSync(path.join(bin, 'kubectl'), 0o755);
      log = path.join(node.root, 'calls.log');
      kubeadm131 = path.join(node.root, 'kubeadm-v1.31.0');
      const json = k8s1202.versionJson
        .replace(/v1\.20\.2/g, 'v1.31.0')
        .replace('"minor":"20"', '"minor":"31"');
      fs.writeFileSync(
        kubeadm131,
        `#!/bin/sh\ncase "$1" in\n  version) echo '${json}' ;;\n  certs) echo "kubeadm $*" >>"${log}"; echo "[fake kubeadm v1.31.0] $*" ;;\n  *) exit 1 ;;\nesac\n`,
        { mode: 0o755 },
      );
      env = {
        PATH: `${bin}:${process.env.PATH ?? ''}`,
        FAKE_KUBECTL_LOG: log,
        FAKE_KUBECTL_CM: path.join(fixtures, 'kubeadm-config-v1.31.yaml'),
        FAKE_KUBECTL_REPLACED: path.join(node.root, 'replaced.yaml'),
      };
    }, 40 * 60_000);
    afterAll(() => node?.cleanup());

    beforeEach(() => fs.rmSync(log, { force: true }));
    const base = () => [
      'renew',
      '--kubeadm',
      kubeadm131,
      '--restart',
      'none',
      '--kubelet-pki-dir',
      node.kubeletPkiDir,
      '--backup-dir',
      node.backupDir,
    ];

    it('--dry-run shows the ConfigMap diff and the upgrade advice, and replaces nothing', () => {
      const before = treeOf(node);
      const r = runCliInNode(node, [...base(), '--dry-run'], { env });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toContain('-certificateValidityPeriod: 8760h0m0s');
      expect(r.stderr).toContain('+certificateValidityPeriod: 1743240h0m0s');
      expect(r.stderr).toContain('+caCertificateValidityPeriod: 1752000h0m0s');
      expect(r.stderr).toContain('--certificate-renewal=false');
      expect(fs.readFileSync(log, 'utf8').trim().split('\n')).toEqual([
        '--kubeconfig /etc/kubernetes/admin.conf -n kube-system get configmap kubeadm-config -o yaml',
      ]);
      expect(fs.existsSync(env.FAKE_KUBECTL_REPLACED!)).toBe(false);
      expectUnchanged(node, before);
    }, 60_000);

    it('backs up the ConfigMap, replaces it with long lifetimes before `certs renew`, and advises on upgrades', () => {
      const r = runCliInNode(node, [...base(), '--json'], { env });
      // the stand-in kubeadm renews nothing, so the final check finds 1-year certificates and fails
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).not.toMatch(/^error: /m);
      const calls = fs.readFileSync(log, 'utf8').trim().split('\n');
      expect(calls[0]).toContain(' get configmap kubeadm-config');
      expect(calls[1]).toMatch(/ replace -f /);
      expect(calls[2]).toBe('kubeadm certs renew all --cert-dir /etc/kubernetes/pki');
      const replaced = parse(fs.readFileSync(env.FAKE_KUBECTL_REPLACED!, 'utf8')) as {
        metadata: { resourceVersion: string };
        data: { ClusterConfiguration: string };
      };
      expect(replaced.metadata.resourceVersion).toBe('210');
      const cc = parse(replaced.data.ClusterConfiguration) as Record<string, string>;
      expect([cc.certificateValidityPeriod, cc.caCertificateValidityPeriod, cc.kubernetesVersion]).toEqual([
        '1743240h0m0s',
        '1752000h0m0s',
        'v1.31.0',
      ]);
      const doc = JSON.parse(r.stdout) as {
        backup: string;
        config: { fixes: unknown[] };
        advice: string[];
        check: { ok: boolean; summary: string };
      };
      expect(doc.check.ok).toBe(false);
      expect(doc.check.summary).toMatch(
        /lasts 0\.9\d years, not 199y( \(and \d+ more\))?: is --kubeadm the custom kubeadm/,
      );
      expect(doc.config.fixes).toHaveLength(2);
      expect(doc.advice.join(' ')).toContain('kubeadm upgrade apply vX.Y.Z --certificate-renewal=false');
      const x = path.join(node.root, 'x131');
      fs.mkdirSync(x);
      execFileSync('tar', ['-xzf', doc.backup, '-C', x]);
      expect(fs.readFileSync(path.join(x, 'extra/kubeadm-config.yaml'), 'utf8')).toBe(
        fs.readFileSync(env.FAKE_KUBECTL_CM!, 'utf8'),
      );
    }, 60_000);

    it('with --config FILE: fixes the file (backed up), passes it to kubeadm and asks no kubectl', () => {
      const file = path.join(node.root, 'kubeadm.yaml');
      const original = fs.readFileSync(path.join(fixtures, 'kubeadm-config-file-v1.31.yaml'), 'utf8');
      fs.writeFileSync(file, original, { mode: 0o640 });
      const r = runCliInNode(node, [...base(), '--config', file, '--json'], { env });
      expect(r.status, r.stderr).toBe(1); // the stand-in renews nothing: the check fails, as above
      expect(fs.readFileSync(log, 'utf8').trim().split('\n')).toEqual([
        `kubeadm certs renew all --config ${file}`,
      ]);
      const fixed = fs.readFileSync(file, 'utf8');
      expect(fixed).toBe(
        original
          .replace('certificateValidityPeriod: 8760h0m0s\n', 'certificateValidityPeriod: 1743240h0m0s\n')
          .replace(
            'controlPlaneEndpoint: "cp.example.internal:6443"\n',
            'controlPlaneEndpoint: "cp.example.internal:6443"\ncaCertificateValidityPeriod: 1752000h0m0s\n',
          ),
      );
      expect(fs.statSync(file).mode & 0o777).toBe(0o640);
      const doc = JSON.parse(r.stdout) as { backup: string };
      const x = path.join(node.root, 'xfile');
      fs.mkdirSync(x);
      execFileSync('tar', ['-xzf', doc.backup, '-C', x]);
      expect(fs.readFileSync(path.join(x, 'extra/config-file.yaml'), 'utf8')).toBe(original);
    }, 60_000);
  },
);
