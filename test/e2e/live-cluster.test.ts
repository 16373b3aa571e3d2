import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { goImage, repoRoot, runCli, skipDockerTests } from '../helpers/env.js';
import { LiveCluster, clusterBin, clusterTree, nodeName } from '../helpers/live-cluster.js';

/**
 * The whole procedure on a running kubeadm 1.20.2 control plane: `kubeadm init` by
 * the stock kubeadm, the kubelet running etcd, kube-apiserver, kube-controller-manager and
 * kube-scheduler as static pods through a private Docker engine, inside private mount and
 * network namespaces (test/helpers/live-cluster.ts). The steps run in order on one cluster,
 * as a user follows the README; each prints what it measured.
 */
const yearMs = 365 * 24 * 3600 * 1000;
const kubeletPki = '/var/lib/kubelet/pki';

function yearsLeft(pem: string | Buffer): number {
  return (new Date(new X509Certificate(pem).validTo).getTime() - Date.now()) / yearMs;
}

/** NotAfter in years from now, read by openssl (the independent checker). */
function opensslYears(pem: string): number {
  const out = execFileSync('openssl', ['x509', '-noout', '-enddate'], { input: pem, encoding: 'utf8' });
  const m = /^notAfter=(.+)$/m.exec(out);
  if (!m) throw new Error(`openssl printed no notAfter: ${out}`);
  return (new Date(m[1]!).getTime() - Date.now()) / yearMs;
}

interface LiveJson {
  ok: boolean;
  live: {
    endpoint: string | null;
    served?: {
      yearsLeft: number;
      notAfter: string;
      fingerprint256: string;
      sameAsFile: boolean | null;
      issuer: string;
    };
    loopback?: { pid: number; startedAt: string; restartBy: string; daysLeft: number };
    warnings: string[];
    problems: string[];
  };
}

describe.skipIf(skipDockerTests)('the procedure on a live kubeadm 1.20.2 control plane', () => {
  const cluster = new LiveCluster();
  let custom: string;
  let backup: string;
  let servedBefore: { fingerprint256: string; yearsLeft: number };
  /** host path of a copy of the kubelet's client certificate + key from before the extend */
  let kubeletBefore: string;
  const step = (s: string) => console.log(`[live-cluster] ${s}`);

  /** `check --json` inside the node: files plus the live part. */
  const check = (): LiveJson => {
    const r = cluster.cli(['check', '--json', '--kubelet-dir', kubeletPki]);
    expect(r.stdout, r.stderr).not.toBe('');
    return JSON.parse(r.stdout) as LiveJson;
  };
  /** The certificate the API server serves, read with openssl s_client inside the node. */
  const servedByOpenssl = (): string => {
    const r = cluster.run(
      'openssl',
      ['s_client', '-connect', '127.0.0.1:6443', '-servername', 'kubernetes'],
      { input: '', timeoutMs: 30_000 },
    );
    const m = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(r.stdout);
    if (!m) throw new Error(`openssl s_client read no certificate:\n${r.stderr}`);
    return m[0];
  };
  const kubeletCurrent = () =>
    fs.readFileSync(cluster.kubeletCurrentFile() ?? 'no kubelet-client-current.pem', 'utf8');

  beforeAll(async () => {
    if (process.getuid?.() !== 0)
      throw new Error('this test needs root: mount and network namespaces, a private dockerd, a kubelet');
    if (!fs.existsSync(path.join(repoRoot, 'dist/cli.js')))
      throw new Error('dist/cli.js missing: run `npm run build` first');
    const t0 = Date.now();
    await cluster.start();
    step(
      `kubeadm init done, API server ready in ${Math.round((Date.now() - t0) / 1000)}s (kubelet + static pods, private dockerd)`,
    );
  }, 20 * 60_000);
  afterAll(async () => {
    await cluster.stop();
    expect(fs.existsSync(cluster.root)).toBe(false);
  }, 5 * 60_000);

  it(
    'runs a real control plane: static pods through the kubelet, node Ready, a kubelet client certificate',
    async () => {
      expect(await cluster.waitStaticPods()).toEqual([
        'etcd',
        'kube-apiserver',
        'kube-controller-manager',
        'kube-scheduler',
      ]);
      const ready = await cluster.waitNodeReady();
      step(`kubelet status before: Ready=${ready.status} (${ready.reason}), heartbeat ${ready.heartbeat}`);
      const { pem, from } = cluster.kubeletClientPem();
      const cert = new X509Certificate(pem);
      expect(cert.subject).toContain(`CN=system:node:${nodeName}`);
      kubeletBefore = path.join(cluster.root, 'kubelet-client-before.pem');
      fs.writeFileSync(kubeletBefore, pem, { mode: 0o600 });
      step(
        `kubelet client certificate before (${from}): issuer ${cert.issuer.replace(/\n/g, ', ')}, NotAfter ${cert.validTo} (${yearsLeft(pem).toFixed(2)} years)`,
      );
      const before = check();
      expect(before.live.served?.yearsLeft).toBeLessThan(1.01);
      expect(before.live.served?.sameAsFile).toBe(true);
      servedBefore = before.live.served!;
      step(
        `served before: NotAfter ${before.live.served!.notAfter} (${before.live.served!.yearsLeft} years)`,
      );
    },
    5 * 60_000,
  );

  it(
    'builds the custom kubeadm from the same tree with the tool (build --kubeadm --source-dir)',
    () => {
      custom = path.join(cluster.root, 'kubeadm-custom');
      const t0 = Date.now();
      const r = runCli([
        'build',
        '--kubeadm',
        clusterBin('kubeadm'),
        '--source-dir',
        clusterTree,
        '--image',
        goImage,
        '--out',
        custom,
        '--cache-dir',
        path.join(cluster.root, 'cache'),
      ]);
      expect(r.status, r.stderr).toBe(0);
      expect(execFileSync(custom, ['version', '-o', 'short'], { encoding: 'utf8' }).trim()).toBe('v1.20.2');
      step(`custom kubeadm built and verified in ${Math.round((Date.now() - t0) / 1000)}s`);
    },
    40 * 60_000,
  );

  it(
    'ca extend + renew (restart included): serves a ~199-year certificate, kubectl and etcd work, the old kubelet certificate still authenticates',
    async () => {
      const ext = cluster.cli(['ca', 'extend', '--pki-dir', '/etc/kubernetes/pki']);
      expect(ext.status, ext.stderr).toBe(0);
      const t0 = new Date().toISOString();
      const renew = cluster.cli([
        'renew',
        '--json',
        '--kubeadm',
        custom,
        '--kubelet-pki-dir',
        kubeletPki,
        '--backup-dir',
        cluster.backupDir,
        '--restart',
        'manifests',
        '--restart-wait',
        '40',
        '--kubelet-signing-duration',
        '1752000h',
        '--kubectl',
        clusterBin('kubectl'),
      ]);
      expect(renew.status, `${renew.stderr}\n${renew.stdout}`).toBe(0);
      backup = (JSON.parse(renew.stdout) as { backup: string }).backup;
      expect(fs.existsSync(backup)).toBe(true);
      await cluster.waitApiserver();

      const after = check();
      step(
        `served after renew: NotAfter ${after.live.served?.notAfter} (${after.live.served?.yearsLeft} years); loopback restart by ${after.live.loopback?.restartBy}`,
      );
      expect(after.live.served!.yearsLeft).toBeGreaterThanOrEqual(198.9);
      expect(after.live.served!.sameAsFile).toBe(true);
      expect(after.live.loopback?.daysLeft).toBeGreaterThanOrEqual(363);
      expect(after.live.warnings.join('\n')).toMatch(/kubernetes#86552/);
      expect(opensslYears(servedByOpenssl())).toBeGreaterThanOrEqual(198.9);

      expect(cluster.kubectl(['get', 'nodes', '-o', 'name']).stdout.trim()).toBe(`node/${nodeName}`);
      expect(cluster.kubectl(['get', '--raw', '/readyz/etcd']).stdout.trim()).toBe('ok');
      expect(
        JSON.parse(cluster.must('curl', ['-sf', 'http://127.0.0.1:2381/health'])) as { health: string },
      ).toMatchObject({ health: 'true' });

      const old = await cluster.probe(`/api/v1/nodes/${nodeName}`, kubeletBefore);
      step(`kubelet certificate from before the extend, against the renewed API server: HTTP ${old.status}`);
      expect(old.status).toBe(200);
      const ready = await cluster.waitNodeReady(t0);
      step(`kubelet status after renew: Ready=${ready.status}, heartbeat ${ready.heartbeat}`);
    },
    20 * 60_000,
  );

  it(
    '--kubelet-signing-duration: a CSR for system:node:NAME approved in the cluster is signed for >= 199 years',
    async () => {
      const cm = parse(
        fs.readFileSync(path.join(cluster.kubernetesDir, 'manifests/kube-controller-manager.yaml'), 'utf8'),
      ) as { spec: { containers: { command: string[] }[] } };
      expect(cm.spec.containers[0]!.command).toContain('--cluster-signing-duration=1752000h');
      const key = path.join(cluster.root, 'csr.key');
      execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
      const csr = execFileSync(
        'openssl',
        ['req', '-new', '-key', key, '-subj', `/O=system:nodes/CN=system:node:${nodeName}`],
        { encoding: 'utf8' },
      );
      const manifest = {
        apiVersion: 'certificates.k8s.io/v1',
        kind: 'CertificateSigningRequest',
        metadata: { name: 'kf-live-node-client' },
        spec: {
          request: Buffer.from(csr).toString('base64'),
          signerName: 'kubernetes.io/kube-apiserver-client-kubelet',
          usages: ['digital signature', 'key encipherment', 'client auth'],
        },
      };
      const created = cluster.run(
        clusterBin('kubectl'),
        ['--kubeconfig', '/etc/kubernetes/admin.conf', 'create', '-f', '-'],
        { input: JSON.stringify(manifest) },
      );
      expect(created.status, created.stderr).toBe(0);
      const approved = cluster.kubectl(['certificate', 'approve', 'kf-live-node-client']);
      expect(approved.status, approved.stderr).toBe(0);
      let signed = '';
      for (let i = 0; i < 60 && !signed; i++) {
        signed = cluster
          .kubectl(['get', 'csr', 'kf-live-node-client', '-o', 'jsonpath={.status.certificate}'])
          .stdout.trim();
        if (!signed) await new Promise((r) => setTimeout(r, 2000));
      }
      expect(signed, 'the controller manager signed nothing').not.toBe('');
      const years = opensslYears(Buffer.from(signed, 'base64').toString('utf8'));
      step(`CSR for system:node:${nodeName} signed by kube-controller-manager for ${years.toFixed(2)} years`);
      expect(years).toBeGreaterThanOrEqual(199);
    },
    5 * 60_000,
  );

  it(
    'kubelet-cert --node NAME: the kubelet uses the new certificate after a restart',
    async () => {
      const r = cluster.cli([
        'kubelet-cert',
        '--json',
        '--node',
        nodeName,
        '--pki-dir',
        '/etc/kubernetes/pki',
        '--out',
        kubeletPki,
      ]);
      expect(r.status, r.stderr).toBe(0);
      const issued = (JSON.parse(r.stdout) as { file: string }).file;
      expect(cluster.kubeletCurrentFile()).toBe(cluster.hostPath(issued));
      const t0 = new Date().toISOString();
      await cluster.restartKubelet();
      const ready = await cluster.waitNodeReady(t0);
      const years = yearsLeft(kubeletCurrent());
      step(
        `kubelet restarted on the kubelet-cert certificate (${years.toFixed(2)} years): Ready=${ready.status}, heartbeat ${ready.heartbeat}`,
      );
      expect(years).toBeGreaterThanOrEqual(198.9);
      // the kubelet kept it (no re-bootstrap, no rotation to a new file) and it authenticates
      expect(cluster.kubeletCurrentFile()).toBe(cluster.hostPath(issued));
      expect(
        (await cluster.probe(`/api/v1/nodes/${nodeName}`, `${kubeletPki}/kubelet-client-current.pem`)).status,
      ).toBe(200);
    },
    10 * 60_000,
  );

  it(
    'renew --rollback <backup>: a working cluster serving the old certificates again',
    async () => {
      const r = cluster.cli([
        'renew',
        '--rollback',
        backup,
        '--kubelet-pki-dir',
        kubeletPki,
        '--restart',
        'manifests',
        '--restart-wait',
        '40',
      ]);
      expect(r.status, `${r.stderr}\n${r.stdout}`).toBe(0);
      await cluster.waitApiserver();
      const served = check().live.served!;
      step(`served after rollback: NotAfter ${served.notAfter} (${served.yearsLeft} years)`);
      expect(served.fingerprint256).toBe(servedBefore.fingerprint256);
      expect(cluster.kubectl(['get', 'nodes', '-o', 'name']).stdout.trim()).toBe(`node/${nodeName}`);
      const t0 = new Date().toISOString();
      await cluster.restartKubelet();
      const ready = await cluster.waitNodeReady(t0);
      step(`kubelet status after rollback: Ready=${ready.status}, heartbeat ${ready.heartbeat}`);
    },
    10 * 60_000,
  );

  it(
    'the naive way (brand-new CAs + certs renew all) makes the old kubelet certificate fail with 401; kubelet-cert repairs it',
    async () => {
      const init = cluster.cli(['ca', 'init', '--out', '/etc/kubernetes/pki', '--force']);
      expect(init.status, init.stderr).toBe(0);
      cluster.must(clusterBin('kubeadm'), ['certs', 'renew', 'all']);
      await cluster.restartStaticPods();
      await cluster.waitApiserver(240_000, ['--certificate-authority', '/etc/kubernetes/pki/ca.crt']);
      const old = await cluster.probe(`/api/v1/nodes/${nodeName}`, kubeletBefore);
      step(`naive way: the kubelet certificate from before, against brand-new CAs: HTTP ${old.status}`);
      expect(old.status).toBe(401);
      const r = cluster.cli([
        'kubelet-cert',
        '--node',
        nodeName,
        '--pki-dir',
        '/etc/kubernetes/pki',
        '--out',
        kubeletPki,
      ]);
      expect(r.status, r.stderr).toBe(0);
      const repaired = await cluster.probe(
        `/api/v1/nodes/${nodeName}`,
        `${kubeletPki}/kubelet-client-current.pem`,
      );
      step(`naive way: after kubelet-cert: HTTP ${repaired.status}`);
      expect(repaired.status).toBe(200);
    },
    10 * 60_000,
  );
});
