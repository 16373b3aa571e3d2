import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { repoRoot } from './env.js';
import { clusterBin } from './live-cluster.js';
import type { MultiNodeCluster } from './multi-node-cluster.js';
import { parseProbeLines, type ProbeSample } from './probe-figures.js';

/**
 * What the year-10 drill reads of a multi-node cluster (test/helpers/multi-node-cluster.ts), each
 * from the node itself: the CA files' NotAfter by openssl in the node, the kubelet's own log, and
 * what the API says of the nodes.
 */

/** The CA files kubeadm writes: every node has ca.crt, control planes also these. */
export const CONTROL_PLANE_CA_FILES = ['pki/ca.crt', 'pki/etcd/ca.crt', 'pki/front-proxy-ca.crt'] as const;
export const WORKER_CA_FILES = ['pki/ca.crt'] as const;

/** `openssl x509 -enddate` of a file in the node, as a Date; undefined when the node has no such file. */
export async function notAfterInNode(
  cluster: MultiNodeCluster,
  node: string,
  file: string,
): Promise<Date | undefined> {
  const r = await cluster.nodeRun(node, ['openssl', 'x509', '-noout', '-enddate', '-in', file], {
    timeoutMs: 60_000,
  });
  if (r.status !== 0) return undefined;
  const m = /notAfter=(.+)/.exec(r.stdout);
  return m ? new Date(m[1]!.trim()) : undefined;
}

/** Every node's CA files and their NotAfter (as openssl in the node reads them). */
export async function caEnds(
  cluster: MultiNodeCluster,
): Promise<{ node: string; role: string; file: string; notAfter: Date | undefined }[]> {
  const out: { node: string; role: string; file: string; notAfter: Date | undefined }[] = [];
  for (const n of cluster.nodes) {
    const files = n.role === 'control-plane' ? CONTROL_PLANE_CA_FILES : WORKER_CA_FILES;
    for (const f of files)
      out.push({
        node: n.name,
        role: n.role,
        file: f,
        notAfter: await notAfterInNode(cluster, n.name, `/etc/kubernetes/${f}`),
      });
  }
  return out;
}

export interface NodeJson {
  metadata: { name: string; labels?: Record<string, string> };
  status: { conditions: { type: string; status: string; reason?: string; lastHeartbeatTime?: string }[] };
}

/** Each node's Ready condition as the API holds it, or the error that kept kubectl from reading it. */
export async function readyByApi(
  cluster: MultiNodeCluster,
  extra: string[] = [],
): Promise<{ ok: true; ready: Record<string, string> } | { ok: false; error: string }> {
  const r = await cluster.kubectl([...extra, 'get', 'nodes', '-o', 'json']);
  if (r.status !== 0) return { ok: false, error: r.stderr.trim() };
  const ready: Record<string, string> = {};
  for (const i of (JSON.parse(r.stdout) as { items: NodeJson[] }).items) {
    const c = i.status.conditions.find((x) => x.type === 'Ready');
    ready[i.metadata.name] = c ? `${c.status}${c.reason ? ` (${c.reason})` : ''}` : 'unknown';
  }
  return { ok: true, ready };
}

/** The kubelet log of a node since a line count, as the node holds it (/var/log/kubelet.log). */
export async function kubeletLog(cluster: MultiNodeCluster, node: string): Promise<string> {
  const r = await cluster.nodeRun(node, ['cat', '/var/log/kubelet.log'], { timeoutMs: 60_000 });
  return r.stdout;
}

/** Go's x509 error for a certificate (or a CA in its chain) past its NotAfter. */
export const X509_EXPIRED = /x509: certificate has expired or is not yet valid/;

/**
 * A client of the control plane (api-probe.mjs) in the admin namespace: from start() until
 * stop(), every `intervalMs` a GET of /readyz on every control plane's own address, each on a new
 * TLS connection, trusting the CA certificates in `bundle` (read again every round, so the test
 * can add the extended CA to it). stop() returns every sample.
 */
export function startProbe(
  cluster: MultiNodeCluster,
  bundle: string,
  intervalMs = 1000,
): { urls: string[]; stop: () => Promise<ProbeSample[]> } {
  const out = path.join(cluster.root, `api-probe-${Date.now()}.jsonl`);
  fs.writeFileSync(out, '');
  const urls = cluster.nodes
    .filter((n) => n.role === 'control-plane')
    .map((n) => `https://${n.address}:6443/readyz`);
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      cluster.admin.netns,
      process.execPath,
      path.join(repoRoot, 'test/helpers/api-probe.mjs'),
      out,
      bundle,
      String(intervalMs),
      ...urls,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  child.on('error', () => undefined);
  return {
    urls,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await Promise.race([exited, sleep(15_000)]);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
      return parseProbeLines(fs.readFileSync(out, 'utf8'));
    },
  };
}

/** argv for kubectl 1.20.2 in the admin namespace, with no kubeconfig (the caller says how to reach and log in). */
function bareKubectl(cluster: MultiNodeCluster, args: string[]) {
  return cluster.adminRun(
    [clusterBin('kubectl'), '--kubeconfig', '/dev/null', '--request-timeout', '20s', ...args],
    { timeoutMs: 60_000 },
  );
}

/**
 * A token that reads nodes and node leases whatever the certificates say: a service account's
 * (signed with sa.key, which is no CA and does not expire), made while the API still works. After
 * the CA's moment it is the only way in: the server's chain no longer verifies (so the observer
 * skips verification, reading only) and every client certificate is refused.
 */
export async function observerToken(cluster: MultiNodeCluster): Promise<string> {
  const manifest = [
    'apiVersion: v1',
    'kind: ServiceAccount',
    'metadata: {name: drill-observer, namespace: kube-system}',
    '---',
    'apiVersion: rbac.authorization.k8s.io/v1',
    'kind: ClusterRole',
    'metadata: {name: drill-observer}',
    'rules:',
    '- {apiGroups: [""], resources: [nodes], verbs: [get, list]}',
    '- {apiGroups: [coordination.k8s.io], resources: [leases], verbs: [get, list]}',
    '---',
    'apiVersion: rbac.authorization.k8s.io/v1',
    'kind: ClusterRoleBinding',
    'metadata: {name: drill-observer}',
    'roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: drill-observer}',
    'subjects: [{kind: ServiceAccount, name: drill-observer, namespace: kube-system}]',
    '',
  ].join('\n');
  const applied = await cluster.kubectl(['apply', '-f', '-'], { input: manifest });
  if (applied.status !== 0) throw new Error(`drill-observer: ${applied.stderr}`);
  const deadline = Date.now() + 120_000;
  for (;;) {
    const sa = await cluster.kubectl([
      '-n',
      'kube-system',
      'get',
      'sa',
      'drill-observer',
      '-o',
      'jsonpath={.secrets[0].name}',
    ]);
    if (sa.status === 0 && sa.stdout.trim() !== '') {
      const secret = await cluster.kubectl([
        '-n',
        'kube-system',
        'get',
        'secret',
        sa.stdout.trim(),
        '-o',
        'jsonpath={.data.token}',
      ]);
      if (secret.status === 0 && secret.stdout.trim() !== '')
        return Buffer.from(secret.stdout.trim(), 'base64').toString('utf8');
    }
    if (Date.now() > deadline) throw new Error(`drill-observer: no token secret within 120 s\n${sa.stderr}`);
    await sleep(2000);
  }
}

export interface NodeView {
  /** the API's Ready condition (it stays as it was when no controller manager can change it) */
  apiReady: string;
  /** seconds since the node's kubelet last renewed its lease: the heartbeat the controller judges */
  leaseAgeS: number;
  /** Ready by the node lifecycle controller's own rule: a lease renewed within its 40 s grace */
  heartbeatReady: boolean;
  uid: string;
}

/** Every node as the API holds it, read with the observer's token (no certificate involved). */
export async function nodeViews(
  cluster: MultiNodeCluster,
  token: string,
): Promise<{ ok: true; nodes: Record<string, NodeView> } | { ok: false; error: string }> {
  const server = `https://${cluster.nodes[0]!.address}:6443`;
  const args = ['--server', server, '--insecure-skip-tls-verify', '--token', token];
  const nodes = await bareKubectl(cluster, [...args, 'get', 'nodes', '-o', 'json']);
  const leases = await bareKubectl(cluster, [
    ...args,
    '-n',
    'kube-node-lease',
    'get',
    'leases',
    '-o',
    'json',
  ]);
  if (nodes.status !== 0 || leases.status !== 0)
    return { ok: false, error: `${nodes.stderr.trim()} ${leases.stderr.trim()}`.trim() };
  const renew = new Map(
    (
      JSON.parse(leases.stdout) as { items: { metadata: { name: string }; spec: { renewTime?: string } }[] }
    ).items.map((l) => [l.metadata.name, l.spec.renewTime ? Date.parse(l.spec.renewTime) : 0]),
  );
  const out: Record<string, NodeView> = {};
  for (const i of (JSON.parse(nodes.stdout) as { items: (NodeJson & { metadata: { uid: string } })[] })
    .items) {
    const c = i.status.conditions.find((x) => x.type === 'Ready');
    const leaseAgeS = (Date.now() - (renew.get(i.metadata.name) ?? 0)) / 1000;
    out[i.metadata.name] = {
      apiReady: c ? `${c.status}${c.reason ? ` (${c.reason})` : ''}` : 'unknown',
      leaseAgeS: Math.round(leaseAgeS),
      heartbeatReady: leaseAgeS < 40,
      uid: i.metadata.uid,
    };
  }
  return { ok: true, nodes: out };
}

export function formatViews(views: Record<string, NodeView>): string {
  return Object.entries(views)
    .map(
      ([n, v]) =>
        `${n}: ${v.heartbeatReady ? 'Ready' : 'NotReady'} (lease renewed ${v.leaseAgeS} s ago; the API's condition: ${v.apiReady})`,
    )
    .join('; ');
}

/** ssh from the admin namespace to a node, one command string (test-made, no input in it). */
export function ssh(cluster: MultiNodeCluster, node: string, command: string, timeoutMs = 120_000) {
  return cluster.adminRun(['ssh', '-F', cluster.admin.sshConfig, node, command], { timeoutMs });
}

/**
 * The admin's kubeconfig taken again from the first control plane over ssh, as an operator does
 * after a renewal: admin.conf, with that node's address as server.
 */
export async function refreshAdminKubeconfig(cluster: MultiNodeCluster): Promise<void> {
  const first = cluster.nodes[0]!;
  const r = await ssh(cluster, first.name, 'cat /etc/kubernetes/admin.conf');
  if (r.status !== 0) throw new Error(`admin.conf from ${first.name}: ${r.stderr}`);
  fs.writeFileSync(
    cluster.admin.kubeconfig,
    r.stdout.replace(`server: https://${cluster.endpoint}`, `server: https://${first.address}:6443`),
    { mode: 0o600 },
  );
}

/**
 * The keys every node and every token trusts: the CAs' (ca, etcd/ca, front-proxy-ca) and the
 * service-account signing key. A rescue must keep them (no node re-joins, no token is lost);
 * the leaf keys are new on every `kubeadm certs renew`, as kubeadm always makes them.
 */
export const TRUST_KEYS = /\/pki\/(ca|etcd\/ca|front-proxy-ca|sa)\.key$/;

/** sha256 of every private key under /etc/kubernetes/pki of every node (or those `only` matches), by node and file. */
export async function keyHashes(cluster: MultiNodeCluster, only?: RegExp): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const n of cluster.nodes) {
    const r = await cluster.nodeRun(n.name, [
      'sh',
      '-c',
      "find /etc/kubernetes/pki -name '*.key' -type f -exec sha256sum {} + | sort -k 2",
    ]);
    for (const l of r.stdout.split('\n').filter(Boolean)) {
      const [hash, file] = l.split(/\s+/);
      if (!only || only.test(file!)) out[`${n.name}:${file}`] = hash!;
    }
  }
  return out;
}

/** Every certificate in a PEM text. */
export function pemCertificates(text: string): X509Certificate[] {
  return (text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(
    (p) => new X509Certificate(p),
  );
}

/** The hostNetwork pod the drill runs on a worker: the node's own pause image (busybox inside). */
export function drillPod(name: string, node: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default' },
    spec: {
      nodeName: node,
      hostNetwork: true,
      restartPolicy: 'Never',
      tolerations: [{ operator: 'Exists' }],
      containers: [
        {
          name: 'main',
          image: 'k8s.gcr.io/pause:3.2',
          imagePullPolicy: 'Never',
          command: ['/bin/busybox', 'sh', '-c', `echo drill-log ${name}; exec /bin/busybox sleep 2147483647`],
        },
      ],
    },
  });
}
