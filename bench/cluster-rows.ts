import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KfError } from '../src/core/errors.js';
import { formatTable } from '../src/core/text-table.js';
import type { JournalDoc } from '../src/fleet/journal.js';
import type { RolloutResult } from '../src/fleet/rollout.js';
import { customKubeadm } from '../test/helpers/custom-kubeadm.js';
import { toolStandIn } from '../test/helpers/files-nodes.js';
import {
  rolloutArgv,
  startMultiNodeCluster,
  type MultiNodeCluster,
} from '../test/helpers/multi-node-cluster.js';
import { singleExecutable } from './startup-rows.js';
import {
  bestOf,
  loadAverage,
  log,
  onCleanup,
  repoRoot,
  resultCell,
  round,
  stepFailed,
  timed,
} from './harness.js';

/**
 * The rollout rows on a real cluster: 3 stacked-etcd control planes and 2 workers of kubeadm
 * 1.20.2 (test/helpers/multi-node-cluster.ts, the rollout e2e's cluster), reached over OpenSSH
 * from the admin namespace, every row a ratio to one plain `ssh node true` of the same run (c0):
 *   - `rollout --report` the first time (the tool copied to every node, then each node's check)
 *     and again (the tool already there), `rollout --dry-run` (preflight, API probe, plan);
 *   - the changing `rollout` once: its total, per node, and each kind of step as the journal
 *     times it (the copies, the CA extension and installs, each control plane's renew with its
 *     restart and gates, each kubelet certificate with its restart and Ready gate, the objects).
 */

export interface ClusterRow {
  id: string;
  step: string;
  seconds: number;
  /** to (c0) */
  ratio: number;
  /** steps of this kind (per node when each ran on one node) */
  count?: number;
  perStepSeconds?: number;
  perStepRatio?: number;
  target: string;
  pass: boolean | null;
}

const CLUSTER = { controlPlanes: 3, workers: 2, prefix: 'kf-mb-' } as const;

/** The step kinds of a rollout journal, in the order they run. */
const KINDS = ['copy-tool', 'ca-extend', 'ca-install', 'renew', 'kubelet-cert', 'cluster-objects'] as const;

/**
 * Runs a rollout in the admin namespace; a failure stops the bench. `--report` exits 1 while a
 * node is short of the goal (every node before the changing run): that is an answer, as long as
 * every node was reached and reported.
 */
async function mustRun(cluster: MultiNodeCluster, what: string, argv: string[]): Promise<void> {
  const r = await cluster.adminRun(argv, {
    timeoutMs: 40 * 60_000,
    env: { ...process.env, HOME: path.join(cluster.root, 'admin') },
  });
  if (r.status === 0) return;
  if (r.status === 1 && argv.includes('--report')) {
    let doc: Partial<RolloutResult> = {};
    try {
      doc = JSON.parse(r.stdout) as Partial<RolloutResult>;
    } catch {
      /* no document: a failure, below */
    }
    if (doc.report?.length === cluster.nodes.length && doc.report.every((n) => n.reachable)) return;
  }
  throw stepFailed(`${what} failed (exit ${r.status})`, `${r.stdout}\n${r.stderr}`, 'run it by hand');
}

export async function clusterRows(opts: { runs: number }): Promise<{
  rows: ClusterRow[];
  machine: Record<string, unknown>;
  text: string;
}> {
  if (process.getuid?.() !== 0)
    throw new KfError(
      'the cluster rows need root (each node is a set of namespaces)',
      'run the bench as root',
    );
  const loadAtStart = loadAverage();
  const kubeadm = await customKubeadm();
  log(`starting a ${CLUSTER.controlPlanes}+${CLUSTER.workers} kubeadm 1.20.2 cluster`);
  const cluster = await startMultiNodeCluster({ ...CLUSTER, log: (s) => log(`[cluster] ${s}`) });
  onCleanup(() => cluster.stop());
  const exe = singleExecutable();
  // the single executable when npm run dist made it: what an operator carries to every node
  const tool = fs.existsSync(exe) ? exe : toolStandIn(cluster.root);
  const nodes = cluster.nodes.length;
  const worker = cluster.nodes.find((n) => n.role === 'worker')!.name;
  const rows: ClusterRow[] = [];
  const add = (id: string, step: string, seconds: number, base: number, count?: number) =>
    rows.push({
      id,
      step,
      seconds: round(seconds, 3),
      ratio: round(seconds / base, seconds / base < 10 ? 2 : 1),
      ...(count
        ? {
            count,
            perStepSeconds: round(seconds / count, 3),
            perStepRatio: round(seconds / count / base, 1),
          }
        : {}),
      target: '-',
      pass: null,
    });

  log('(c0) ssh node true ...');
  const base = await bestOf(opts.runs, () =>
    timed(async () => {
      const r = await cluster.adminRun(['ssh', '-F', cluster.admin.sshConfig, worker, 'true']);
      if (r.status !== 0)
        throw stepFailed(`(c0) ssh ${worker} true failed (exit ${r.status})`, r.stderr, 'run it by hand');
    }),
  );
  add('c0', `(c0) ssh ${worker} true: one plain connection and command`, base, base);

  const report = (extra: string[] = []) =>
    mustRun(
      cluster,
      'rollout --report',
      rolloutArgv(cluster, { tool, kubeadm }, ['--report', '--json', ...extra]),
    );
  log('(c1) rollout --report, the tool copied first ...');
  add(
    'c1',
    `(c1) rollout --report of ${nodes} nodes, copying the tool to each`,
    await timed(() => report()),
    base,
    nodes,
  );
  log('(c2) rollout --report ...');
  add(
    'c2',
    `(c2) rollout --report of ${nodes} nodes, the tool there`,
    await bestOf(opts.runs, () => timed(() => report())),
    base,
    nodes,
  );
  log('(c3) rollout --dry-run ...');
  add(
    'c3',
    `(c3) rollout --dry-run of ${nodes} nodes (preflight, API, plan)`,
    await bestOf(opts.runs, () =>
      timed(() =>
        mustRun(
          cluster,
          'rollout --dry-run',
          rolloutArgv(cluster, { tool, kubeadm }, ['--dry-run', '--json']),
        ),
      ),
    ),
    base,
    nodes,
  );

  const journal = path.join(cluster.root, 'bench-journal.json');
  // a new directory: the changing run copies the tool and the kubeadm to every node itself
  const remoteDir = '/var/tmp/kf-bench-rollout';
  log('(c4) rollout ...');
  const total = await timed(() =>
    mustRun(
      cluster,
      'rollout',
      rolloutArgv(cluster, { tool, kubeadm }, ['--json', '--journal', journal, '--remote-dir', remoteDir]),
    ),
  );
  add('c4', `(c4) rollout of ${nodes} nodes: total`, total, base, nodes);
  const doc = JSON.parse(fs.readFileSync(journal, 'utf8')) as JournalDoc;
  KINDS.forEach((kind, i) => {
    const times = Object.entries(doc.steps)
      .filter(([id, e]) => (id === kind || id.startsWith(`${kind}:`)) && e.startedAt)
      .map(([, e]) => (Date.parse(e.at) - Date.parse(e.startedAt!)) / 1000);
    if (times.length === 0) return;
    const sum = times.reduce((a, b) => a + b, 0);
    add(
      `c4.${i + 1}`,
      `(c4.${i + 1}) of which ${kind} (${times.length} step(s), summed)`,
      sum,
      base,
      times.length,
    );
  });

  const machine = {
    cores: os.cpus().length,
    loadAtStart,
    loadAtEnd: loadAverage(),
    clusterUpSeconds: round(cluster.figures.totalS, 1),
    carried:
      tool === exe
        ? path.relative(repoRoot, exe)
        : 'the test stand-in (no single executable: npm run dist makes it)',
    carriedBytes: fs.statSync(tool).size,
    kubeadmBytes: fs.statSync(kubeadm).size,
    when: new Date().toISOString(),
  };
  const cells = rows.map((r) => [
    r.step,
    `${r.seconds.toFixed(3)} s`,
    String(r.ratio),
    r.perStepSeconds === undefined ? '' : `${r.perStepSeconds.toFixed(3)} s`,
    r.perStepRatio === undefined ? '' : r.perStepRatio.toFixed(1),
    r.target,
    resultCell(r.pass),
  ]);
  const text = [
    formatTable(
      ['step', 'time', 'x (c0)', 'per node or step', 'per node or step x (c0)', 'target', 'result'],
      cells,
      'markdown',
    ),
    '',
    `(c1) and (c4) copy ${machine.carried} (${(machine.carriedBytes / 1e6).toFixed(1)} MB) to every node, (c4) also the custom kubeadm (${(machine.kubeadmBytes / 1e6).toFixed(1)} MB) to each control plane; steps of one kind on several nodes run side by side (copies, installs) or one after another (renew, kubelet-cert at --max-unavailable 1)`,
    `cluster: ${CLUSTER.controlPlanes} control planes + ${CLUSTER.workers} workers of kubeadm 1.20.2, up in ${machine.clusterUpSeconds} s; ${machine.cores} cores; load average at start ${loadAtStart.join(' ')}, at end ${machine.loadAtEnd.join(' ')}; ${machine.when}`,
  ].join('\n');
  return { rows, machine, text };
}
