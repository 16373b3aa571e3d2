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
  TRUST_KEYS,
  ssh,
  startProbe,
  X509_EXPIRED,
} from '../helpers/drill.js';
import {
  birth,
  everyNodeReady,
  livingChecks,
  rollout,
  views,
  waitUntil,
  YEAR_MS,
  type Subject,
} from '../helpers/drill-checks.js';
import { skipDockerTests } from '../helpers/env.js';
import { formatGap, probeFigures, type ProbeSample } from '../helpers/probe-figures.js';

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
 *   (the same node objects) and no new trust keys (the CA keys and sa.key the same; kubeadm's
 *   renew makes new leaf keys, as it always does), and the drill's checks pass there too.
 *
 * The control's failure proves the drill can fail: the same checks that pass on the drill are
 * asserted to fail, with the named error, on the control before its rescue.
 *
 * Part of `npm test`. Run alone (root; after `sudo bash scripts/test-env.sh up` and `npm run dist`):
 *   KF_TEST_FIXTURES=/var/cache/kubeadm-forever-test npx vitest run test/e2e/year-ten-drill.test.ts
 * KF_DRILL_LEAD_S and KF_CONTROL_LEAD_S set how far after the start each cluster's CAs end.
 */
const DRILL_LEAD_MS = Number(process.env.KF_DRILL_LEAD_S ?? 1020) * 1000;
const CONTROL_LEAD_MS = Number(process.env.KF_CONTROL_LEAD_S ?? 420) * 1000;
/** after the moment, how long the test lets the control break before it looks */
const SETTLE_MS = 75_000;
const started = Date.now();
const clock = () => new Date().toISOString().slice(11, 19);
const step = (who: string) => (s: string) => console.log(`[${who} ${clock()}] ${s}`);
const drillLog = step('drill');
const controlLog = step('control');
/** the keys the rollout must keep, of those taken at birth */
const trusted = (keys: Record<string, string>) =>
  Object.fromEntries(Object.entries(keys).filter(([k]) => TRUST_KEYS.test(k)));
const atSecond = (ms: number) => new Date(Math.ceil(ms / 1000) * 1000);

let drill: Subject | undefined;
let control: Subject | undefined;
/** figure lines of the file itself; each cluster's own are in its Subject */
const figures: string[] = [];
/** the drill's API client, from before the rollout until after the moment */
let probe: ReturnType<typeof startProbe> | undefined;
let probeStart = 0;
let probeBundle = '';
/** why the control did not come up (a loaded machine can take longer than its lead) */
let controlError: unknown;
const theControl = (): Subject => {
  if (!control) throw controlError instanceof Error ? controlError : new Error('the control did not come up');
  return control;
};
/** the control's rescue, started once it is seen broken, awaited after the drill's checks */
let rescue: Promise<{ run: Awaited<ReturnType<typeof rollout>>; tookS: number }> | undefined;
const startRescue = async () => {
  const t = Date.now();
  const run = await rollout(theControl(), []);
  return { run, tookS: (Date.now() - t) / 1000 };
};

describe.skipIf(skipDockerTests)(
  'the year-10 drill: clusters whose CAs end minutes after kubeadm init',
  () => {
    beforeAll(async () => {
      const kubeadm = await customKubeadm();
      const [d, c] = await Promise.allSettled([
        birth('drill', 'kf-md-', atSecond(started + DRILL_LEAD_MS), drillLog, kubeadm),
        // a little later: the two kubeadm inits do not start at the same second
        sleep(20_000).then(() =>
          birth('control', 'kf-mc-', atSecond(started + CONTROL_LEAD_MS), controlLog, kubeadm),
        ),
      ]);
      if (d.status === 'fulfilled') drill = d.value;
      if (c.status === 'fulfilled') control = c.value;
      if (d.status === 'rejected') throw d.reason;
      // the drill goes on without its control: the control's own tests fail with this reason
      if (c.status === 'rejected') controlError = c.reason;
    }, 30 * 60_000);

    afterAll(async () => {
      await probe?.stop().catch(() => undefined);
      await Promise.all([drill?.cluster.stop(), control?.cluster.stop()]);
      const wall = (Date.now() - started) / 1000;
      for (const f of [...(drill?.figures ?? []), ...(control?.figures ?? []), ...figures])
        console.log(`[figures] ${f}`);
      console.log(`[figures] the whole file, both clusters side by side: ${wall.toFixed(0)} s`);
    }, 10 * 60_000);

    it(
      'both are born to expire: ca, etcd/ca and front-proxy-ca end at the moment on every control plane, ca.crt on every worker (through join)',
      async () => {
        for (const get of [() => drill!, theControl]) {
          const s = get();
          const ends = await caEnds(s.cluster);
          s.log(ends.map((e) => `${e.node} ${e.file} ${e.notAfter?.toISOString() ?? 'MISSING'}`).join('; '));
          expect(ends.length).toBe(3 * 3 + 2);
          for (const e of ends)
            expect(e.notAfter?.getTime(), `${s.name} ${e.node} ${e.file}`).toBe(s.moment.getTime());
          // the keys the rollout must keep: ca, etcd/ca, front-proxy-ca and sa on each control plane
          expect(Object.keys(trusted(s.keys)), s.name).toHaveLength(3 * 4);
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
        const doneAt = Date.now();
        // the client now trusts the extended CA too (the admin takes it from a control plane)
        const extended = (await ssh(s.cluster, s.cluster.nodes[0]!.name, 'cat /etc/kubernetes/pki/ca.crt'))
          .stdout;
        fs.writeFileSync(probeBundle, `${extended.trim()}\n${s.originalCa.trim()}\n`);
        figures.push(
          `drill: rollout took ${tookS.toFixed(0)} s, done ${((s.moment.getTime() - doneAt) / 1000).toFixed(0)} s before the moment`,
        );
        expect(run.status, run.stderr).toBe(0);
        expect(doneAt, 'the rollout ended before the moment').toBeLessThan(s.moment.getTime());
        const ends = await caEnds(s.cluster);
        for (const e of ends)
          expect(e.notAfter!.getTime() - Date.now(), `${e.node} ${e.file}`).toBeGreaterThan(100 * YEAR_MS);
        expect(await keyHashes(s.cluster, TRUST_KEYS), 'no CA or service-account key changed').toEqual(
          trusted(s.keys),
        );
      },
      45 * 60_000,
    );

    it(
      'control: after its moment, kubectl is refused with the x509 expiry error and every kubelet goes NotReady with it',
      async () => {
        const s = theControl();
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
        // the rescue runs while the drill waits for its moment and is checked
        rescue ??= startRescue();
      },
      20 * 60_000,
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
        // without the tool no round after the moment is answered (the control's API refuses all)
        expect(after.any.rate, 'after the moment rounds are answered').toBeGreaterThanOrEqual(0.95);
        expect(f.any.longestGapMs, 'some control plane answers within 30 s throughout').toBeLessThan(30_000);
      },
      5 * 60_000,
    );

    it(
      'rescue: rollout on the broken control brings every node back with no re-join and no new CA or service-account keys',
      async () => {
        const s = theControl();
        const { run, tookS } = await (rescue ??= startRescue());
        s.log(`rollout (rescue): exit ${run.status} in ${tookS.toFixed(0)} s\n${run.stdout}\n${run.stderr}`);
        figures.push(`control: rescue rollout took ${tookS.toFixed(0)} s`);
        expect(run.status, run.stderr).toBe(0);
        expect(await keyHashes(s.cluster, TRUST_KEYS), 'no CA or service-account key changed').toEqual(
          trusted(s.keys),
        );
        const v = await everyNodeReady(s, 5 * 60_000);
        expect(
          Object.fromEntries(Object.entries(v).map(([n, x]) => [n, x.uid])),
          'the same node objects',
        ).toEqual(s.uids);
      },
      45 * 60_000,
    );

    it(
      'control, rescued: the same checks pass after the moment',
      async () => {
        await livingChecks(theControl());
      },
      30 * 60_000,
    );
  },
);
