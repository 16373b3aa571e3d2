import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { apiserverManifestFacts, type ApiserverManifestFacts } from '../core/apiserver-manifest.js';
import { KfError, messageOf } from '../core/errors.js';
import type { FleetNode } from '../core/inventory.js';
import type { GateRecord } from '../core/rollout-plan.js';
import { FAULT_ENV, testFaults } from '../core/test-faults.js';
import { describeTarget, type SshSession } from '../adapters/openssh-client.js';
import { caCopy, KUBERNETES_DIR } from './preflight.js';

/**
 * The steps of a rollout that need a running cluster: renew of a control plane (the node's own
 * `renew`, which backs up and restarts the static pods), its gates (the served certificate, the
 * API server's /readyz, etcd with quorum, the node Ready), the kubelet restart and the cluster
 * objects. Every probe runs on a node over ssh, with the node's own files (admin.conf, the etcd
 * health-check client): nothing on this host needs to reach the API.
 */

const ADMIN_CONF = `${KUBERNETES_DIR}/admin.conf`;
const PKI = `${KUBERNETES_DIR}/pki`;
const APISERVER_MANIFEST = `${KUBERNETES_DIR}/manifests/kube-apiserver.yaml`;
/** a static pod manifest is a few KiB */
const MAX_MANIFEST_BYTES = 1024 * 1024;

/** The state of the cluster's API, read on a control plane before any step. */
export interface ApiState {
  /** 'ok': /readyz answered; otherwise the rollout goes file-first (rescue) */
  state: 'ok' | 'expired' | 'unreachable';
  detail: string;
}

function firstLines(s: string, n = 2): string {
  return s.trim().split('\n').slice(0, n).join(' / ');
}

/** kubectl on a node with its admin.conf (argument array; the node's own kubectl). */
export function kubectl(
  session: SshSession,
  args: string[],
  opts: { input?: string; timeoutMs?: number; server?: string } = {},
) {
  return session.run(
    [
      'kubectl',
      '--kubeconfig',
      ADMIN_CONF,
      '--request-timeout',
      '15s',
      ...(opts.server ? ['--server', opts.server] : []),
      ...args,
    ],
    {
      timeoutMs: opts.timeoutMs ?? 60_000,
      maxOutputBytes: 32 * 1024 * 1024,
      ...(opts.input ? { input: opts.input } : {}),
    },
  );
}

/** The API as the seed's admin.conf sees it: ready, or why not (an expired chain, nothing listening). */
export async function probeApi(session: SshSession): Promise<ApiState> {
  const r = await kubectl(session, ['get', '--raw', '/readyz'], { timeoutMs: 180_000 });
  const out = r.stdout.toString('utf8').trim();
  if (r.code === 0 && out === 'ok') return { state: 'ok', detail: '/readyz: ok' };
  const why = firstLines(r.stderr || out);
  if (/x509|certificate has expired|not yet valid|Unauthorized/i.test(why))
    return { state: 'expired', detail: why };
  return { state: 'unreachable', detail: why || `kubectl exit ${r.code}` };
}

/** Polls probe until it says ok or the time is up; the last thing it saw is in the error. */
async function waitFor(
  what: string,
  session: SshSession,
  timeoutMs: number,
  probe: () => Promise<{ ok: boolean; saw: string }>,
): Promise<{ saw: string; seconds: number }> {
  const t0 = Date.now();
  let last = '';
  for (;;) {
    try {
      const r = await probe();
      last = r.saw;
      if (r.ok) return { saw: r.saw, seconds: (Date.now() - t0) / 1000 };
    } catch (err) {
      last = messageOf(err).split('\n')[0]!;
    }
    if (Date.now() - t0 > timeoutMs)
      throw new KfError(
        `${describeTarget(session.target)}: gate ${what} not passed within ${Math.round(timeoutMs / 1000)} s (last seen: ${last || 'nothing'})`,
        'see what the gate saw; the node is named above',
      );
    await sleep(2000);
  }
}

export interface GateContext {
  step: string;
  timeoutMs: number;
  minYears: number;
  record(g: GateRecord): void;
}

async function gate(
  ctx: GateContext,
  kind: GateRecord['gate'],
  node: string,
  session: SshSession,
  probe: () => Promise<{ ok: boolean; saw: string }>,
): Promise<string> {
  const t0 = Date.now();
  try {
    const fault = testFaults(process.env).failGate;
    if (fault?.gate === kind && fault.node === node)
      throw new KfError(
        `${describeTarget(session.target)}: gate ${kind} failed (injected by ${FAULT_ENV})`,
        'this is a test run',
      );
    const r = await waitFor(kind, session, ctx.timeoutMs, probe);
    ctx.record({ step: ctx.step, node, gate: kind, ok: true, saw: r.saw, seconds: r.seconds });
    return r.saw;
  } catch (err) {
    ctx.record({
      step: ctx.step,
      node,
      gate: kind,
      ok: false,
      saw: messageOf(err).split('\n')[0]!,
      seconds: (Date.now() - t0) / 1000,
    });
    throw err;
  }
}

interface LiveDoc {
  live?: {
    endpoint: string | null;
    served?: { notAfter: string; sameAsFile: boolean | null };
    error?: string;
  };
}

const yearsAway = (iso: string) => (Date.parse(iso) - Date.now()) / (365.25 * 24 * 3600 * 1000);

/**
 * The control plane's gates after its renew: the served certificate at the goal (the node's own
 * `check`, which reads it from the TLS handshake), /readyz of that API server, etcd with quorum
 * (the API server's own etcd check is a quorum read; the member's /health with the node's
 * health-check client where curl is there), and with `ready` the node Ready.
 */
export async function controlPlaneGates(
  ctx: GateContext,
  node: FleetNode,
  session: SshSession,
  tool: string,
  ready?: { admin: SshSession; sinceMs: number },
): Promise<void> {
  let endpoint = '';
  await gate(ctx, 'served-cert-not-after', node.name, session, async () => {
    const r = await session.run(
      [tool, 'check', '--json', '--apiserver', 'auto', '--min-years', String(ctx.minYears)],
      {
        timeoutMs: 120_000,
        maxOutputBytes: 8 * 1024 * 1024,
      },
    );
    let doc: LiveDoc;
    try {
      doc = JSON.parse(r.stdout.toString('utf8')) as LiveDoc;
    } catch {
      return { ok: false, saw: `check printed no JSON: ${firstLines(r.stderr)}` };
    }
    const s = doc.live?.served;
    if (!s) return { ok: false, saw: doc.live?.error ?? 'no served certificate read' };
    endpoint = doc.live?.endpoint ?? '';
    const years = yearsAway(s.notAfter);
    return {
      ok: years >= ctx.minYears && s.sameAsFile !== false,
      saw: `${endpoint} serves a certificate until ${s.notAfter} (${years.toFixed(1)} years${s.sameAsFile === false ? ', not apiserver.crt' : ''})`,
    };
  });
  // the address the API server advertises (in its certificate): the endpoint check connected to
  // can be the loopback address, which kubeadm's serving certificate does not name
  const advertised = (await readApiserverManifest(session)).advertiseAddress ?? '';
  const port = /:(\d+)$/.exec(endpoint)?.[1] ?? '6443';
  if (/^[0-9a-fA-F.:]+$/.test(advertised))
    endpoint = advertised.includes(':') ? `[${advertised}]:${port}` : `${advertised}:${port}`;
  await gate(ctx, 'apiserver-readyz', node.name, session, async () => {
    const r = await kubectl(session, ['get', '--raw', '/readyz'], { server: `https://${endpoint}` });
    const out = r.stdout.toString('utf8').trim();
    return {
      ok: r.code === 0 && out === 'ok',
      saw: `https://${endpoint}/readyz: ${out || firstLines(r.stderr)}`,
    };
  });
  await gate(ctx, 'etcd-healthy', node.name, session, async () => {
    const r = await kubectl(session, ['get', '--raw', '/readyz/etcd'], { server: `https://${endpoint}` });
    const api = r.stdout.toString('utf8').trim() || firstLines(r.stderr);
    if (!(r.code === 0 && api === 'ok')) return { ok: false, saw: `/readyz/etcd: ${api}` };
    const h = await session.run(
      [
        'sh',
        '-c',
        'command -v curl >/dev/null 2>&1 || { echo no-curl; exit 0; }; exec curl -sS --max-time 10 --cacert "$1/etcd/ca.crt" --cert "$1/etcd/healthcheck-client.crt" --key "$1/etcd/healthcheck-client.key" https://127.0.0.1:2379/health',
        'kf-etcd-health',
        PKI,
      ],
      { timeoutMs: 120_000 },
    );
    const member = h.stdout.toString('utf8').trim();
    if (member === 'no-curl')
      return { ok: true, saw: '/readyz/etcd: ok (quorum read); no curl for the member /health' };
    let healthy = false;
    try {
      healthy = (JSON.parse(member) as { health?: string }).health === 'true';
    } catch {
      /* not JSON: not healthy */
    }
    return {
      ok: healthy,
      saw: `/readyz/etcd: ok (quorum read); member /health: ${member || firstLines(h.stderr)}`,
    };
  });
  if (ready) await nodeReadyGate(ctx, node, ready.admin, ready.sinceMs);
}

interface Condition {
  type: string;
  status: string;
}

/**
 * The node Ready, and its kubelet heard from since `sinceMs` (its lease renewed after it): a
 * Ready condition alone can be the one from before a kubelet restart.
 */
export async function nodeReadyGate(
  ctx: GateContext,
  node: FleetNode,
  admin: SshSession,
  sinceMs: number,
): Promise<void> {
  await gate(ctx, 'node-ready', node.name, admin, async () => {
    const n = await kubectl(admin, ['get', 'node', node.name, '-o', 'json']);
    if (n.code !== 0) return { ok: false, saw: firstLines(n.stderr) };
    const conds = (JSON.parse(n.stdout.toString('utf8')) as { status?: { conditions?: Condition[] } }).status
      ?.conditions;
    const ready = conds?.find((c) => c.type === 'Ready')?.status ?? 'unknown';
    const l = await kubectl(admin, ['get', 'lease', '-n', 'kube-node-lease', node.name, '-o', 'json']);
    if (l.code !== 0) return { ok: false, saw: `Ready=${ready}; lease: ${firstLines(l.stderr)}` };
    const renew = (JSON.parse(l.stdout.toString('utf8')) as { spec?: { renewTime?: string } }).spec
      ?.renewTime;
    const fresh = renew !== undefined && Date.parse(renew) >= sinceMs;
    return {
      ok: ready === 'True' && fresh,
      saw: `Ready=${ready}, lease renewed ${renew ?? 'never'}${fresh ? '' : ' (before the step)'}`,
    };
  });
}

/** The node's kubelet restarted (the systemd unit every kubeadm node has). */
export async function restartKubelet(session: SshSession): Promise<void> {
  await session.check(['systemctl', 'restart', 'kubelet'], { timeoutMs: 120_000 });
}

interface RenewDoc {
  backup?: string;
  check?: { ok: boolean; summary?: string };
}

/** `renew` on a control plane with the custom kubeadm there; returns its backup. */
export async function renewControlPlane(
  session: SshSession,
  tool: string,
  kubeadm: string,
): Promise<{ backup: string; checkOk: boolean; summary: string }> {
  const r = await session.run(
    [tool, 'renew', '--json', '--kubeadm', kubeadm, '--restart', 'auto', '--restart-wait', '30'],
    {
      timeoutMs: 20 * 60_000,
      maxOutputBytes: 16 * 1024 * 1024,
    },
  );
  let doc: RenewDoc | undefined;
  try {
    doc = JSON.parse(r.stdout.toString('utf8')) as RenewDoc;
  } catch {
    doc = undefined;
  }
  if (!doc?.backup)
    throw new KfError(
      `${describeTarget(session.target)}: renew failed (exit ${r.code}): ${firstLines(r.stderr, 3)}`,
      'its backup, when one was taken, is in /var/backups/kubeadm-forever on the node (renew --rollback FILE puts it back)',
    );
  return { backup: doc.backup, checkOk: doc.check?.ok ?? r.code === 0, summary: doc.check?.summary ?? '' };
}

/** The node put back from renew's backup (renew --rollback verifies it, restarts the static pods). */
export async function rollbackControlPlane(
  session: SshSession,
  tool: string,
  backup: string,
): Promise<string> {
  const r = await session.run(
    [tool, 'renew', '--json', '--rollback', backup, '--restart', 'auto', '--restart-wait', '30'],
    {
      timeoutMs: 20 * 60_000,
      maxOutputBytes: 16 * 1024 * 1024,
    },
  );
  if (r.code !== 0)
    return `the rollback from ${backup} FAILED (exit ${r.code}: ${firstLines(r.stderr)}): the node holds the renewed files`;
  return `put back from its backup ${backup}`;
}

/** The control plane's kube-apiserver manifest, read once, bounded, and parsed as YAML. */
async function readApiserverManifest(session: SshSession): Promise<ApiserverManifestFacts> {
  const r = await session.run(['head', '-c', String(MAX_MANIFEST_BYTES), APISERVER_MANIFEST], {
    timeoutMs: 120_000,
    maxOutputBytes: MAX_MANIFEST_BYTES,
  });
  return r.code === 0 ? apiserverManifestFacts(r.stdout.toString('utf8')) : {};
}

/** The custom kubeadm on a control plane: it runs there and is the cluster's version. */
export async function checkKubeadmThere(session: SshSession, kubeadm: string): Promise<string> {
  const v = await session.run([kubeadm, 'version', '-o', 'json'], { timeoutMs: 300_000 });
  let have = '';
  try {
    have =
      (JSON.parse(v.stdout.toString('utf8')) as { clientVersion?: { gitVersion?: string } }).clientVersion
        ?.gitVersion ?? '';
  } catch {
    /* below */
  }
  if (v.code !== 0 || !have)
    throw new KfError(
      `${describeTarget(session.target)}: the custom kubeadm does not run there (exit ${v.code}: ${firstLines(v.stderr)})`,
      'pass --kubeadm with a kubeadm built for this node’s platform',
    );
  const cluster = (await readApiserverManifest(session)).version ?? '';
  if (cluster && cluster !== have)
    throw new KfError(
      `${describeTarget(session.target)}: the custom kubeadm is ${have} but kube-apiserver runs ${cluster}`,
      `build the custom kubeadm of ${cluster} (kubeadm-forever build) and pass it with --kubeadm`,
    );
  return have;
}

interface ConfigMap {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  data?: Record<string, string>;
}

/** The certificates of a PEM bundle. */
function pemCerts(text: string): X509Certificate[] {
  return (text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(
    (p) => new X509Certificate(p),
  );
}

function isExtended(cert: X509Certificate, ca: { keyId: string; notAfter: string }): boolean {
  const c = caCopy('', cert.toString());
  return c.keyId === ca.keyId && c.notAfter === ca.notAfter;
}

/**
 * The cluster objects that carry the CA: cluster-info (kube-public) rewritten with the extended
 * CA's data (the bootstrap signer signs it again), kube-root-ca.crt in every namespace
 * (published by the controller managers, which renew restarted with the extended --root-ca-file;
 * a copy still old is deleted so the publisher writes it again) and
 * extension-apiserver-authentication (written by every API server when it starts; old copies of
 * the same CA left there by the merge are dropped).
 */
export async function clusterObjects(
  ctx: GateContext,
  admin: SshSession,
  seedName: string,
  caFile: string,
  frontProxyCaFile: string | undefined,
): Promise<void> {
  const caPem = fs.readFileSync(caFile, 'utf8');
  const ca = caCopy('ca.crt', caPem);
  const fp = frontProxyCaFile
    ? caCopy('front-proxy-ca.crt', fs.readFileSync(frontProxyCaFile, 'utf8'))
    : undefined;
  const getCm = async (ns: string, name: string): Promise<ConfigMap> => {
    const r = await kubectl(admin, ['get', 'configmap', '-n', ns, name, '-o', 'json']);
    if (r.code !== 0)
      throw new KfError(
        `${ns}/${name}: ${firstLines(r.stderr)}`,
        'check the API server on the seed control plane',
      );
    return JSON.parse(r.stdout.toString('utf8')) as ConfigMap;
  };
  const replace = async (cm: ConfigMap) => {
    const r = await kubectl(admin, ['replace', '-f', '-'], { input: JSON.stringify(cm) });
    if (r.code !== 0)
      throw new KfError(
        `${cm.metadata.namespace}/${cm.metadata.name} not replaced: ${firstLines(r.stderr)}`,
        'run again with --resume',
      );
  };

  await gate(ctx, 'cluster-info', seedName, admin, async () => {
    const cm = await getCm('kube-public', 'cluster-info');
    const kc = cm.data?.kubeconfig ?? '';
    const b64 = /certificate-authority-data: *(\S+)/.exec(kc)?.[1];
    if (!b64) return { ok: false, saw: 'cluster-info has no certificate-authority-data' };
    const certs = pemCerts(Buffer.from(b64, 'base64').toString('utf8'));
    if (certs.length === 1 && isExtended(certs[0]!, ca))
      return { ok: true, saw: `cluster-info CA data ends ${ca.notAfter}` };
    const want = Buffer.from(caPem).toString('base64');
    cm.data!.kubeconfig = kc.replace(
      /certificate-authority-data: *\S+/,
      `certificate-authority-data: ${want}`,
    );
    await replace(cm);
    return { ok: false, saw: `cluster-info held a CA until ${certs[0]?.validTo ?? '?'}; replaced` };
  });

  const started = Date.now();
  let deleted = false;
  await gate(ctx, 'kube-root-ca.crt', seedName, admin, async () => {
    const r = await kubectl(admin, [
      'get',
      'configmap',
      '-A',
      '--field-selector',
      'metadata.name=kube-root-ca.crt',
      '-o',
      'json',
    ]);
    if (r.code !== 0) return { ok: false, saw: firstLines(r.stderr) };
    const items = (JSON.parse(r.stdout.toString('utf8')) as { items: ConfigMap[] }).items;
    const nsList = await kubectl(admin, ['get', 'namespaces', '-o', 'jsonpath={.items[*].metadata.name}']);
    const namespaces = nsList.stdout.toString('utf8').trim().split(/\s+/).filter(Boolean);
    const stale = items.filter((cm) => {
      const certs = pemCerts(cm.data?.['ca.crt'] ?? '');
      return !(certs.length === 1 && isExtended(certs[0]!, ca));
    });
    const missing = namespaces.filter((ns) => !items.some((cm) => cm.metadata.namespace === ns));
    // the publisher writes a deleted copy again from the CA it runs with
    if (stale.length > 0 && !deleted && Date.now() - started > 30_000) {
      deleted = true;
      for (const cm of stale)
        await kubectl(admin, ['delete', 'configmap', '-n', cm.metadata.namespace, 'kube-root-ca.crt']);
    }
    return {
      ok: stale.length === 0 && missing.length === 0,
      saw: `${items.length - stale.length}/${namespaces.length} namespaces hold the extended CA${stale.length ? ` (old: ${stale.map((c) => c.metadata.namespace).join(', ')})` : ''}${missing.length ? ` (none yet: ${missing.join(', ')})` : ''}`,
    };
  });

  await gate(ctx, 'extension-apiserver-authentication', seedName, admin, async () => {
    const cm = await getCm('kube-system', 'extension-apiserver-authentication');
    const check = (key: string, want: typeof ca | undefined) => {
      const certs = pemCerts(cm.data?.[key] ?? '');
      if (!want) return { has: true, superseded: [] as X509Certificate[], certs };
      const has = certs.some((c) => isExtended(c, want));
      // the same CA with an earlier end: left by the API servers' merge of old and new
      const superseded = certs.filter(
        (c) => !isExtended(c, want) && caCopy('', c.toString()).keyId === want.keyId,
      );
      return { has, superseded, certs };
    };
    const client = check('client-ca-file', ca);
    const rh = check('requestheader-client-ca-file', fp);
    if (!client.has || !rh.has)
      return {
        ok: false,
        saw: `client-ca-file ${client.has ? 'holds' : 'lacks'} the extended CA, requestheader-client-ca-file ${rh.has ? 'holds' : 'lacks'} the extended front-proxy CA`,
      };
    if (client.superseded.length + rh.superseded.length > 0) {
      const keep = (certs: X509Certificate[], drop: X509Certificate[]) =>
        certs
          .filter((c) => !drop.includes(c))
          .map((c) => c.toString())
          .join('');
      cm.data!['client-ca-file'] = keep(client.certs, client.superseded);
      if (fp) cm.data!['requestheader-client-ca-file'] = keep(rh.certs, rh.superseded);
      await replace(cm);
      return {
        ok: false,
        saw: `dropped ${client.superseded.length + rh.superseded.length} old copies of the same CAs`,
      };
    }
    return {
      ok: true,
      saw: `client-ca-file and requestheader-client-ca-file hold the extended CAs (${client.certs.length} and ${rh.certs.length} certificates)`,
    };
  });
}
