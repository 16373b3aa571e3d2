import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { customKubeadm } from '../helpers/custom-kubeadm.js';
import {
  caEnds,
  drillPod,
  formatViews,
  kubeletLog,
  keyHashes,
  nodeViews,
  observerToken,
  pemCertificates,
  refreshAdminKubeconfig,
  ssh,
  startProbe,
  X509_EXPIRED,
  type NodeView,
} from '../helpers/drill.js';
import { cliPath, skipDockerTests } from '../helpers/env.js';
import { startMultiNodeCluster, type MultiNodeCluster } from '../helpers/multi-node-cluster.js';
import { formatGap, probeFigures, type ProbeSample } from '../helpers/probe-figures.js';
import { seaExecutable } from '../helpers/sea.js';

/**
 * The year-10 drill: two real 3 control-plane + 2 worker kubeadm 1.20.2 clusters
 * (test/helpers/multi-node-cluster.ts), side by side, both born with CAs (ca, etcd/ca,
 * front-proxy-ca) that end minutes after `kubeadm init`: the moment a cluster's 10-year CA ends,
 * compressed.
 *
 * - The drill (kf-md-): before its moment one `rollout --dry-run`, then one `rollout`; a client
 *   asks every API server's /readyz on a new TLS connection every second from before the rollout
 *   until after the moment. After the moment: every node Ready, kubectl with admin.conf,
 *   `kubectl logs` and `exec` in a pod on every worker (made before the rollout) and a new pod on
 *   every worker, a kubelet CSR signed, kube-root-ca.crt and cluster-info holding the extended CA,
 *   and the client's success rate and longest gap.
 * - The control (kf-mc-): the same cluster without the tool crosses its moment (earlier), and the
 *   test sees it break: kubectl with admin.conf refused with Go's x509 expiry error, every kubelet
 *   logging it while trying to update its node's status, every node's lease no longer renewed
 *   (NotReady by the node lifecycle controller's own rule; the controller manager cannot reach the
 *   API server either, so the API keeps its last Ready condition, which the test prints).
 * - The rescue: `rollout` on the broken control brings every node back to Ready with no re-join
 *   (the same node objects) and no new keys (every key under /etc/kubernetes/pki the same), and
 *   the drill's checks pass there too.
 *
 * The control's failure proves the drill can fail: the same checks that pass on the drill are
 * asserted to fail, with the named error, on the control before its rescue.
 *
 * Run alone (root; after `sudo bash scripts/test-env.sh up` and `npm run dist`):
 *   KF_TEST_FIXTURES=/var/cache/kubeadm-forever-test npx vitest run test/e2e/year-ten-drill.test.ts
 * KF_DRILL_LEAD_S and KF_CONTROL_LEAD_S set how far after the start each cluster's CAs end.
 */
const DRILL_LEAD_MS = Number(process.env.KF_DRILL_LEAD_S ?? 780) * 1000;
const CONTROL_LEAD_MS = Number(process.env.KF_CONTROL_LEAD_S ?? 360) * 1000;
/** after the moment, how long the test lets the control break before it looks */
const SETTLE_MS = 75_000;
const started = Date.now();
const clock = () => new Date().toISOString().slice(11, 19);
const step = (who: string) => (s: string) => console.log(`[${who} ${clock()}] ${s}`);
const drillLog = step('drill');
const controlLog = step('control');
const YEAR_MS = 365.25 * 24 * 3600 * 1000;
const atSecond = (ms: number) => new Date(Math.ceil(ms / 1000) * 1000);

interface Subject {
  name: string;
  cluster: MultiNodeCluster;
  moment: Date;
  log: (s: string) => void;
  /** the original CA certificate (ca.crt of the first control plane at birth) */
  originalCa: string;
  token: string;
  uids: Record<string, string>;
  keys: Record<string, string>;
  journal: string;
}

async function waitUntil(t: number): Promise<void> {
  while (Date.now() < t) await sleep(Math.min(5000, t - Date.now()));
}

function rollout(s: Subject, extra: string[]) {
  return s.cluster.adminRun(
    [
      process.execPath,
      cliPath,
      'rollout',
      '--inventory',
      s.cluster.admin.inventory,
      '--ssh-config',
      s.cluster.admin.sshConfig,
      '--tool',
      seaExecutable('amd64'),
      '--kubeadm',
      kubeadmFile,
      '--journal',
      s.journal,
      ...extra,
    ],
    { timeoutMs: 40 * 60_000, env: { ...process.env, HOME: path.join(s.cluster.root, 'admin') } },
  );
}

async function views(s: Subject): Promise<Record<string, NodeView>> {
  const v = await nodeViews(s.cluster, s.token);
  if (!v.ok) throw new Error(`${s.name}: nodes not readable with the observer token: ${v.error}`);
  return v.nodes;
}

/** Every node of `s` Ready (its lease fresh and the API's condition True), within `timeoutMs`. */
async function everyNodeReady(s: Subject, timeoutMs: number): Promise<Record<string, NodeView>> {
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

let kubeadmFile: string;
let drill: Subject | undefined;
let control: Subject | undefined;
const figures: string[] = [];
/** the drill's API client, from before the rollout until after the moment */
let probe: ReturnType<typeof startProbe> | undefined;
let probeStart = 0;
let probeBundle = '';

async function birth(
  name: string,
  prefix: string,
  leadMs: number,
  log: (s: string) => void,
): Promise<Subject> {
  const moment = atSecond(started + leadMs);
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
async function livingChecks(s: Subject, rehearsal = false): Promise<void> {
  const { cluster, log } = s;
  if (!rehearsal) expect(Date.now(), 'checked after the moment').toBeGreaterThan(s.moment.getTime());
  const v = await everyNodeReady(s, 5 * 60_000);
  log(`after the moment (${s.moment.toISOString()}): ${formatViews(v)}`);
  figures.push(`${s.name}: per node after the moment: ${formatViews(v)}`);
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

describe.skipIf(skipDockerTests)(
  'the year-10 drill: clusters whose CAs end minutes after kubeadm init',
  () => {
    beforeAll(async () => {
      kubeadmFile = await customKubeadm();
      const [d, c] = await Promise.allSettled([
        birth('drill', 'kf-md-', DRILL_LEAD_MS, drillLog),
        // a little later: the two kubeadm inits do not start at the same second
        sleep(20_000).then(() => birth('control', 'kf-mc-', CONTROL_LEAD_MS, controlLog)),
      ]);
      if (d.status === 'fulfilled') drill = d.value;
      if (c.status === 'fulfilled') control = c.value;
      if (d.status === 'rejected') throw d.reason;
      if (c.status === 'rejected') throw c.reason;
    }, 30 * 60_000);

    afterAll(async () => {
      await probe?.stop().catch(() => undefined);
      await Promise.all([drill?.cluster.stop(), control?.cluster.stop()]);
      const wall = (Date.now() - started) / 1000;
      for (const f of figures) console.log(`[figures] ${f}`);
      console.log(`[figures] the whole file, both clusters side by side: ${wall.toFixed(0)} s`);
    }, 10 * 60_000);

    it(
      'both are born to expire: ca, etcd/ca and front-proxy-ca end at the moment on every control plane, ca.crt on every worker (through join)',
      async () => {
        for (const s of [drill!, control!]) {
          const ends = await caEnds(s.cluster);
          s.log(ends.map((e) => `${e.node} ${e.file} ${e.notAfter?.toISOString() ?? 'MISSING'}`).join('; '));
          expect(ends.length).toBe(3 * 3 + 2);
          for (const e of ends)
            expect(e.notAfter?.getTime(), `${s.name} ${e.node} ${e.file}`).toBe(s.moment.getTime());
          figures.push(`${s.name}: moment of expiry ${s.moment.toISOString()}`);
        }
      },
      5 * 60_000,
    );

    it(
      'drill: pods on every worker, the API client started, then rollout --dry-run and rollout, all before the moment',
      async () => {
        const s = drill!;
        for (const w of s.cluster.nodes.filter((n) => n.role === 'worker')) {
          const made = await s.cluster.kubectl(['apply', '-f', '-'], {
            input: drillPod(`drill-before-${w.name}`, w.name),
          });
          expect(made.status, made.stderr).toBe(0);
        }
        probeBundle = path.join(s.cluster.root, 'admin', 'probe-ca-bundle.crt');
        fs.writeFileSync(probeBundle, s.originalCa);
        probe = startProbe(s.cluster, probeBundle);
        probeStart = Date.now();

        let t = Date.now();
        const dry = await rollout(s, ['--dry-run']);
        s.log(
          `rollout --dry-run: exit ${dry.status} in ${((Date.now() - t) / 1000).toFixed(0)} s\n${dry.stdout}\n${dry.stderr}`,
        );
        expect(dry.status, dry.stderr).toBe(0);
        // the dry run changed nothing
        expect(await keyHashes(s.cluster)).toEqual(s.keys);
        expect((await caEnds(s.cluster)).every((e) => e.notAfter?.getTime() === s.moment.getTime())).toBe(
          true,
        );

        t = Date.now();
        const run = await rollout(s, []);
        const tookS = (Date.now() - t) / 1000;
        s.log(`rollout: exit ${run.status} in ${tookS.toFixed(0)} s\n${run.stdout}\n${run.stderr}`);
        figures.push(
          `drill: rollout took ${tookS.toFixed(0)} s, done ${((s.moment.getTime() - Date.now()) / 1000).toFixed(0)} s before the moment`,
        );
        expect(run.status, run.stderr).toBe(0);
        expect(Date.now(), 'the rollout ended before the moment').toBeLessThan(s.moment.getTime());
        // the client now trusts the extended CA too (the admin takes it from a control plane)
        const extended = (await ssh(s.cluster, s.cluster.nodes[0]!.name, 'cat /etc/kubernetes/pki/ca.crt'))
          .stdout;
        fs.writeFileSync(probeBundle, `${extended.trim()}\n${s.originalCa.trim()}\n`);
        const ends = await caEnds(s.cluster);
        for (const e of ends)
          expect(e.notAfter!.getTime() - Date.now(), `${e.node} ${e.file}`).toBeGreaterThan(100 * YEAR_MS);
        expect(await keyHashes(s.cluster), 'no key changed').toEqual(s.keys);
      },
      45 * 60_000,
    );

    it(
      'control: after its moment, kubectl is refused with the x509 expiry error and every kubelet goes NotReady with it',
      async () => {
        const s = control!;
        await waitUntil(s.moment.getTime() + SETTLE_MS);
        const v = await views(s);
        s.log(`${SETTLE_MS / 1000} s after the moment ${s.moment.toISOString()}: ${formatViews(v)}`);
        figures.push(`control: per node ${SETTLE_MS / 1000} s after the moment: ${formatViews(v)}`);
        const kubectl = await s.cluster.kubectl(['get', 'nodes']);
        s.log(`kubectl get nodes with admin.conf: exit ${kubectl.status}: ${kubectl.stderr.trim()}`);
        expect(kubectl.status).not.toBe(0);
        expect(kubectl.stderr).toMatch(X509_EXPIRED);
        for (const n of s.cluster.nodes) {
          expect(v[n.name]?.heartbeatReady, `${n.name}: lease renewed ${v[n.name]?.leaseAgeS} s ago`).toBe(
            false,
          );
          const lines = (await kubeletLog(s.cluster, n.name))
            .split('\n')
            .filter((l) => X509_EXPIRED.test(l) && /node status|lease/.test(l));
          expect(lines.length, `${n.name}: the kubelet's node status / lease errors`).toBeGreaterThan(0);
          s.log(`${n.name}: ${lines.length} kubelet lines like: ${lines.at(-1)!.slice(0, 260)}`);
        }
      },
      20 * 60_000,
    );

    it(
      'rescue: rollout on the broken control brings every node back with no re-join and no new keys',
      async () => {
        const s = control!;
        const t = Date.now();
        const run = await rollout(s, []);
        const tookS = (Date.now() - t) / 1000;
        s.log(`rollout (rescue): exit ${run.status} in ${tookS.toFixed(0)} s\n${run.stdout}\n${run.stderr}`);
        figures.push(`control: rescue rollout took ${tookS.toFixed(0)} s`);
        expect(run.status, run.stderr).toBe(0);
        expect(await keyHashes(s.cluster), 'no key changed').toEqual(s.keys);
        const v = await everyNodeReady(s, 5 * 60_000);
        expect(
          Object.fromEntries(Object.entries(v).map(([n, x]) => [n, x.uid])),
          'the same node objects',
        ).toEqual(s.uids);
      },
      45 * 60_000,
    );

    it(
      'drill: after its moment every node is Ready, kubectl, logs, exec, new pods, CSRs and the cluster objects work',
      async () => {
        const s = drill!;
        await waitUntil(s.moment.getTime() + 30_000);
        await livingChecks(s);
      },
      30 * 60_000,
    );

    it(
      'drill: the API client kept its answers through the rollout and the moment',
      async () => {
        const samples: ProbeSample[] = (await probe!.stop()) ?? [];
        probe = undefined;
        const end = samples.length > 0 ? Math.max(...samples.map((x) => x.t)) : Date.now();
        const f = probeFigures(samples, probeStart, end);
        const m = drill!.moment.getTime();
        const after = probeFigures(samples, m, end);
        figures.push(
          `drill: API client, from before the rollout to after the moment, any endpoint: ${formatGap(f.any)}`,
        );
        for (const [u, g] of Object.entries(f.perUrl))
          figures.push(`drill: API client ${u}: ${formatGap(g)}`);
        figures.push(`drill: API client after the moment, any endpoint: ${formatGap(after.any)}`);
        const errors = [...new Set(samples.filter((x) => !x.ok).map((x) => x.error ?? `HTTP ${x.status}`))];
        drillLog(`API client errors seen: ${errors.slice(0, 8).join(' | ') || 'none'}`);
        expect(after.any.requests).toBeGreaterThan(10);
        expect(after.any.rate, 'after the moment every round is answered').toBe(1);
        expect(f.any.longestGapMs, 'some control plane answers within 30 s throughout').toBeLessThan(30_000);
      },
      5 * 60_000,
    );

    it(
      'control, rescued: the same checks pass after the moment',
      async () => {
        await livingChecks(control!);
      },
      30 * 60_000,
    );
  },
);
