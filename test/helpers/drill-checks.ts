import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'vitest';
import {
  drillPod,
  formatViews,
  keyHashes,
  nodeViews,
  observerToken,
  pemCertificates,
  refreshAdminKubeconfig,
  ssh,
  type NodeView,
} from './drill.js';
import { rolloutArgv, startMultiNodeCluster, type MultiNodeCluster } from './multi-node-cluster.js';
import { seaExecutable } from './sea.js';

/**
 * The year-10 drill's steps on one cluster (test/e2e/year-ten-drill.test.ts): its birth with CAs
 * that end at a moment, the rollout run from the admin namespace, and the checks of a cluster that
 * lives through the moment, asserted with vitest's expect.
 */

export const YEAR_MS = 365.25 * 24 * 3600 * 1000;

export interface Subject {
  name: string;
  cluster: MultiNodeCluster;
  moment: Date;
  log: (s: string) => void;
  /** the original CA certificate (ca.crt of the first control plane at birth) */
  originalCa: string;
  token: string;
  uids: Record<string, string>;
  /** every key under /etc/kubernetes/pki at birth (the dry run must change none) */
  keys: Record<string, string>;
  journal: string;
  /** the custom kubeadm the rollout copies to the control planes */
  kubeadm: string;
  /** figure lines, printed at the end */
  figures: string[];
}

export async function waitUntil(t: number): Promise<void> {
  while (Date.now() < t) await sleep(Math.min(5000, t - Date.now()));
}

export function rollout(s: Subject, extra: string[]) {
  return s.cluster.adminRun(
    rolloutArgv(s.cluster, { tool: seaExecutable('amd64'), kubeadm: s.kubeadm }, [
      '--journal',
      s.journal,
      ...extra,
    ]),
    { timeoutMs: 40 * 60_000, env: { ...process.env, HOME: path.join(s.cluster.root, 'admin') } },
  );
}

export async function views(s: Subject): Promise<Record<string, NodeView>> {
  const v = await nodeViews(s.cluster, s.token);
  if (!v.ok) throw new Error(`${s.name}: nodes not readable with the observer token: ${v.error}`);
  return v.nodes;
}

/** Every node of `s` Ready (its lease fresh and the API's condition True), within `timeoutMs`. */
export async function everyNodeReady(s: Subject, timeoutMs: number): Promise<Record<string, NodeView>> {
  const deadline = Date.now() + timeoutMs;
  let last: Record<string, NodeView> = {};
  for (;;) {
    const v = await nodeViews(s.cluster, s.token);
    if (v.ok) {
      last = v.nodes;
      if (
        s.cluster.nodes.every(
          (n) => last[n.name]?.heartbeatReady && last[n.name]!.apiReady.startsWith('True'),
        )
      )
        return last;
    }
    if (Date.now() > deadline) return last;
    await sleep(5000);
  }
}

/** A cluster whose CAs end at `moment`, with the observer's token, its node uids and key hashes. */
export async function birth(
  name: string,
  prefix: string,
  moment: Date,
  log: (s: string) => void,
  kubeadm: string,
): Promise<Subject> {
  log(`CAs end at ${moment.toISOString()}`);
  const cluster = await startMultiNodeCluster({ prefix, caNotAfter: moment, log });
  const s: Subject = {
    name,
    cluster,
    moment,
    log,
    originalCa: fs.readFileSync(path.join(cluster.nodes[0]!.kubernetesDir, 'pki/ca.crt'), 'utf8'),
    token: '',
    uids: {},
    keys: {},
    journal: path.join(cluster.root, 'admin', 'rollout-journal.json'),
    kubeadm,
    figures: [],
  };
  log(
    `every node Ready in ${cluster.figures.totalS.toFixed(0)} s; ${((moment.getTime() - Date.now()) / 1000).toFixed(0)} s before the moment`,
  );
  s.token = await observerToken(cluster);
  const v = await views(s);
  s.uids = Object.fromEntries(Object.entries(v).map(([n, x]) => [n, x.uid]));
  s.keys = await keyHashes(cluster);
  return s;
}

/** The checks of a cluster that lives through the moment (the drill, and the control rescued). */
export async function livingChecks(s: Subject, rehearsal = false): Promise<void> {
  const { cluster, log } = s;
  if (!rehearsal) expect(Date.now(), 'checked after the moment').toBeGreaterThan(s.moment.getTime());
  const v = await everyNodeReady(s, 5 * 60_000);
  log(`after the moment (${s.moment.toISOString()}): ${formatViews(v)}`);
  s.figures.push(`${s.name}: per node after the moment: ${formatViews(v)}`);
  for (const n of cluster.nodes) {
    expect(v[n.name]?.heartbeatReady, `${s.name} ${n.name} lease`).toBe(true);
    expect(v[n.name]?.apiReady, `${s.name} ${n.name} Ready`).toMatch(/^True/);
  }

  // kubectl with admin.conf (as renewed on the first control plane)
  await refreshAdminKubeconfig(cluster);
  const nodes = await cluster.kubectl(['get', 'nodes']);
  expect(nodes.status, nodes.stderr).toBe(0);
  log(`kubectl get nodes with admin.conf:\n${nodes.stdout.trim()}`);

  const extended = pemCertificates(
    (await ssh(cluster, cluster.nodes[0]!.name, 'cat /etc/kubernetes/pki/ca.crt')).stdout,
  )[0]!;
  const original = pemCertificates(s.originalCa)[0]!;
  if (!rehearsal)
    expect(Date.parse(extended.validTo) - Date.now(), 'the extended CA').toBeGreaterThan(100 * YEAR_MS);
  expect(extended.publicKey.equals(original.publicKey), 'the same CA key').toBe(true);

  // logs and exec in the pod made before (drill) and in a new pod, on every worker
  const workers = cluster.nodes.filter((n) => n.role === 'worker');
  for (const w of workers) {
    const pod = `drill-after-${w.name}`;
    const made = await cluster.kubectl(['apply', '-f', '-'], { input: drillPod(pod, w.name) });
    expect(made.status, made.stderr).toBe(0);
  }
  for (const w of workers) {
    const pods = [`drill-after-${w.name}`];
    const before = await cluster.kubectl(['get', 'pod', `drill-before-${w.name}`, '-o', 'name']);
    if (before.status === 0) pods.unshift(`drill-before-${w.name}`);
    for (const pod of pods) {
      const ready = await cluster.kubectl(['wait', '--for=condition=Ready', `pod/${pod}`, '--timeout=180s'], {
        timeoutMs: 200_000,
      });
      expect(ready.status, `${pod}: ${ready.stderr}`).toBe(0);
      const logs = await cluster.kubectl(['logs', pod]);
      expect(logs.status, `${pod}: ${logs.stderr}`).toBe(0);
      expect(logs.stdout).toContain(`drill-log ${pod}`);
      const exec = await cluster.kubectl(['exec', pod, '--', '/bin/busybox', 'hostname']);
      expect(exec.status, `${pod}: ${exec.stderr}`).toBe(0);
      expect(exec.stdout.trim()).toBe(w.name);
      log(`${w.name}: ${pod} Running, logs and exec answer`);
    }
  }

  // a kubelet client CSR, made and approved after the moment, signed by the controller manager
  const dir = path.join(cluster.root, `csr-${s.name}`);
  fs.mkdirSync(dir, { recursive: true });
  const w = workers[0]!;
  const gen = await cluster.nodeRun(w.name, [
    'openssl',
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    '/root/drill-csr.key',
    '-subj',
    `/O=system:nodes/CN=system:node:${w.name}`,
  ]);
  expect(gen.status, gen.stderr).toBe(0);
  const csrName = `drill-${s.name}-${Date.now()}`;
  const csr = await cluster.kubectl(['create', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'certificates.k8s.io/v1',
      kind: 'CertificateSigningRequest',
      metadata: { name: csrName },
      spec: {
        request: Buffer.from(gen.stdout).toString('base64'),
        signerName: 'kubernetes.io/kube-apiserver-client-kubelet',
        usages: ['digital signature', 'key encipherment', 'client auth'],
      },
    }),
  });
  expect(csr.status, csr.stderr).toBe(0);
  const approve = await cluster.kubectl(['certificate', 'approve', csrName]);
  expect(approve.status, approve.stderr).toBe(0);
  let issued = '';
  for (let i = 0; i < 60 && issued === ''; i++) {
    const got = await cluster.kubectl(['get', 'csr', csrName, '-o', 'jsonpath={.status.certificate}']);
    issued = got.stdout.trim();
    if (issued === '') await sleep(2000);
  }
  expect(issued, 'the CSR got its certificate').not.toBe('');
  const signed = pemCertificates(Buffer.from(issued, 'base64').toString('utf8'))[0]!;
  expect(signed.checkIssued(extended) && signed.verify(extended.publicKey), 'signed by the CA').toBe(true);
  if (!rehearsal)
    expect(Date.parse(signed.validTo), 'not capped at the original CA').toBeGreaterThan(
      s.moment.getTime() + 0.9 * YEAR_MS,
    );
  log(
    `CSR ${csrName} signed after the moment: ${signed.subject.replace(/\n/g, ', ')} until ${signed.validTo}`,
  );

  // the cluster objects: kube-root-ca.crt in a namespace, cluster-info in kube-public
  const rootCa = await cluster.kubectl([
    '-n',
    'default',
    'get',
    'cm',
    'kube-root-ca.crt',
    '-o',
    'jsonpath={.data.ca\\.crt}',
  ]);
  expect(rootCa.status, rootCa.stderr).toBe(0);
  const info = await cluster.kubectl([
    '-n',
    'kube-public',
    'get',
    'cm',
    'cluster-info',
    '-o',
    'jsonpath={.data.kubeconfig}',
  ]);
  expect(info.status, info.stderr).toBe(0);
  const infoCa = Buffer.from(
    /certificate-authority-data: (\S+)/.exec(info.stdout)?.[1] ?? '',
    'base64',
  ).toString('utf8');
  for (const [what, text] of [
    ['kube-root-ca.crt', rootCa.stdout],
    ['cluster-info', infoCa],
  ] as const) {
    const certs = pemCertificates(text);
    expect(
      certs.some((c) => c.raw.equals(extended.raw)),
      `${what} holds the extended CA (it has ${certs.map((c) => c.validTo).join(', ')})`,
    ).toBe(true);
    log(`${what}: ${certs.length} certificate(s), ${certs.map((c) => `until ${c.validTo}`).join(', ')}`);
  }
}
