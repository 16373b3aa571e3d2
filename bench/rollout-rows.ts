import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { KfError, UsageError } from '../src/core/errors.js';
import { formatTable } from '../src/core/text-table.js';
import { SshFleet, type SshSession, type SshTarget } from '../src/adapters/openssh-client.js';
import { readNodeFacts } from '../src/fleet/preflight.js';
import type { RolloutResult } from '../src/fleet/rollout.js';
import { makeClusterPki, startFilesNodes, toolStandIn, type FilesNode } from '../test/helpers/files-nodes.js';
import { makeClient, SSHD, type ClientKeys } from '../test/helpers/sshd.js';
import { singleExecutable } from './startup-rows.js';
import {
  bestOf,
  cliPath,
  loadAverage,
  log,
  onCleanup,
  repoRoot,
  resultCell,
  round,
  spawnChild,
  stepFailed,
  tempDir,
  timed,
} from './harness.js';

/**
 * The rollout rows, on "files-only" nodes (test/helpers/files-nodes.ts: each an sshd on its own
 * 127.0.0.N in its own mount namespace, holding a kubeadm node's files and nothing else), all
 * as ratios to one plain `ssh node true` of the same run (r0):
 *   - what rollout spends on each node: its multiplexed connection, one command over it, the
 *     read-only preflight, copying the tool there (sha256 checked), the tool's `check` there, and
 *     a whole `rollout --report` of one node;
 *   - the changing run (`rollout --files-only`) of one control plane and W workers at each
 *     --max-unavailable M: its total, per node, and how much each added worker costs.
 * Before each changing run every node gets back the files it started with.
 */

export interface RolloutOptions {
  /** worker counts of the changing runs */
  workers: number[];
  /** --max-unavailable of the changing runs */
  maxUnavailable: number[];
  /** best of this many for the per-node rows */
  runs: number;
}

export const DEFAULT_ROLLOUT: RolloutOptions = { workers: [2, 4, 8], maxUnavailable: [1, 4], runs: 5 };

export interface RolloutRow {
  id: string;
  step: string;
  seconds: number;
  /** to (r0) */
  ratio: number;
  /** the changing runs: nodes in the run, seconds per node and that as a ratio to (r0) */
  nodes?: number;
  workers?: number;
  maxUnavailable?: number;
  perNodeSeconds?: number;
  perNodeRatio?: number;
  target: string;
  pass: boolean | null;
}

export interface RolloutGrowth {
  maxUnavailable: number;
  /** least-squares slope of the total over the worker count */
  secondsPerWorker: number;
  ratio: number;
}

/** Loopback addresses of the bench's nodes: apart from the ones the rollout tests use. */
const FIRST_ADDRESS = 160;
/** The bench's own copy of a node's files, inside the node (its private /var/lib overlay). */
const SNAPSHOT = '/var/lib/kf-bench-snapshot';

interface Fleet {
  work: string;
  client: ClientKeys;
  port: number;
  tool: string;
  nodes: FilesNode[];
  targets: Map<string, SshTarget>;
}

function sh(node: FilesNode, script: string): void {
  const r = node.inNode(['sh', '-c', script]);
  if (r.status !== 0) throw new KfError(`${node.name}: ${script} failed: ${r.stderr.trim()}`, 'report it');
}

async function startFleet(workers: number): Promise<Fleet> {
  if (!fs.existsSync(SSHD))
    throw new KfError(
      `${SSHD} is missing (the nodes are sshd servers)`,
      "run 'sudo bash scripts/test-env.sh up' first",
    );
  if (process.getuid?.() !== 0)
    throw new KfError('the rollout rows need root (each node is a mount namespace)', 'run the bench as root');
  const work = tempDir('kf-bench-rollout-');
  const client = makeClient(path.join(work, 'client'));
  const pki = makeClusterPki(path.join(work, 'cluster-pki'), '1y');
  const tool = toolStandIn(work);
  const port = 30000 + ((process.pid + 23) % 20000);
  const layout = [
    { name: 'cp1', role: 'control-plane' as const },
    ...Array.from({ length: workers }, (_, i) => ({ name: `w${i + 1}`, role: 'worker' as const })),
  ].map((n, i) => ({ ...n, address: `127.0.0.${FIRST_ADDRESS + i}`, dir: path.join(work, n.name) }));
  log(
    `starting ${layout.length} files-only node(s) on 127.0.0.${FIRST_ADDRESS}-${FIRST_ADDRESS + workers}:${port}`,
  );
  const nodes = await startFilesNodes(layout, { port, client, pki });
  onCleanup(async () => {
    await Promise.all(nodes.map((n) => n.sshd.stop()));
  });
  for (const n of nodes) sh(n, `mkdir -p ${SNAPSHOT} && cp -a /etc/kubernetes /var/lib/kubelet ${SNAPSHOT}/`);
  const targets = new Map(
    layout.map((n) => [n.name, { name: n.name, address: n.address, port, user: 'root' } satisfies SshTarget]),
  );
  return { work, client, port, tool, nodes, targets };
}

/** Every file of the node as it was when it started (a changing run extended its CAs). */
function restore(node: FilesNode): void {
  sh(
    node,
    `find /etc/kubernetes /var/lib/kubelet -mindepth 1 -delete && cp -a ${SNAPSHOT}/kubernetes/. /etc/kubernetes/ && cp -a ${SNAPSHOT}/kubelet/. /var/lib/kubelet/`,
  );
}

function inventory(f: Fleet, workers: number, file: string): string {
  const line = (name: string) => {
    const t = f.targets.get(name)!;
    return `${name} ansible_host=${t.address} ansible_port=${t.port}`;
  };
  const ws = Array.from({ length: workers }, (_, i) => line(`w${i + 1}`));
  fs.writeFileSync(
    file,
    `[kube_control_plane]\n${line('cp1')}\n\n[kube_node]\n${ws.join('\n')}\n\n[all:vars]\nansible_user=root\n`,
  );
  return file;
}

/** One rollout over the fleet, by the CLI as an operator runs it; its result document. */
async function rollout(f: Fleet, label: string, workers: number, args: string[]): Promise<RolloutResult> {
  const adminTmp = path.join(f.work, `admin-tmp-${label}`);
  fs.mkdirSync(adminTmp, { recursive: true, mode: 0o700 });
  const argv = [
    cliPath,
    'rollout',
    '--json',
    '--inventory',
    inventory(f, workers, path.join(f.work, `hosts-${label}.ini`)),
    '--tool',
    f.tool,
    '--ssh-config',
    f.client.config,
    '--connect-timeout',
    '5',
    ...args,
  ];
  const r = await spawnChild(process.execPath, argv, {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: adminTmp },
  }).done;
  let doc: RolloutResult | undefined;
  try {
    doc = JSON.parse(r.stdout) as RolloutResult;
  } catch {
    doc = undefined;
  }
  if (r.code !== 0 || !doc?.ok)
    throw stepFailed(
      `(${label}) rollout ${args.join(' ')} failed (exit ${r.code ?? r.signal})${doc?.problems[0] ? `: ${doc.problems[0]}` : ''}`,
      r.stderr,
      'run the rollout tests (test/integration/rollout-files.test.ts) to see why',
    );
  return doc;
}

/** One plain `ssh node true`, a new connection: what every row is a ratio to. */
async function plainSsh(f: Fleet, target: SshTarget): Promise<number> {
  return timed(async () => {
    const r = await spawnChild('ssh', [
      '-F',
      f.client.config,
      '-o',
      'BatchMode=yes',
      '-p',
      String(target.port),
      '--',
      target.address,
      'true',
    ]).done;
    if (r.code !== 0)
      throw stepFailed(`(r0) ssh ${target.address} true failed (exit ${r.code})`, r.stderr, 'run it by hand');
  });
}

/** A connected session of the rollout's own ssh client, for `body`; closed afterwards. */
async function withSession<T>(f: Fleet, target: SshTarget, body: (s: SshSession) => Promise<T>): Promise<T> {
  const fleet = SshFleet.open({ configFile: f.client.config, hostKeys: 'strict', connectTimeoutSeconds: 5 });
  try {
    const s = fleet.session(target);
    await s.connect();
    return await body(s);
  } finally {
    await fleet.close();
  }
}

function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

interface PerNodeScenario {
  id: string;
  step: string;
  measure(f: Fleet, target: SshTarget, runs: number): Promise<number>;
}

/** What the rollout spends on one node, each the best of `runs`. */
function perNodeScenarios(carried: { file: string; mb: number }): PerNodeScenario[] {
  const copyDir = '/var/lib/kf-bench-copy';
  return [
    {
      id: 'r0',
      step: '(r0) plain `ssh node true`, new connection (baseline)',
      measure: (f, t, runs) => bestOf(runs, () => plainSsh(f, t)),
    },
    {
      id: 'r1',
      step: "(r1) rollout's ssh connection to a node (master up)",
      measure: (f, t, runs) =>
        bestOf(runs, async () => {
          const fleet = SshFleet.open({
            configFile: f.client.config,
            hostKeys: 'strict',
            connectTimeoutSeconds: 5,
          });
          try {
            return await timed(() => fleet.session(t).connect());
          } finally {
            await fleet.close();
          }
        }),
    },
    {
      id: 'r2',
      step: '(r2) one command over that connection',
      measure: (f, t, runs) => withSession(f, t, (s) => bestOf(runs, () => timed(() => s.check(['true'])))),
    },
    {
      id: 'r3',
      step: '(r3) read-only preflight of a node',
      measure: (f, t, runs) => withSession(f, t, (s) => bestOf(runs, () => timed(() => readNodeFacts(s)))),
    },
    {
      id: 'r4',
      step: `(r4) copy the tool to a node (${carried.mb.toFixed(1)} MB, sha256 checked)`,
      measure: (f, t, runs) =>
        withSession(f, t, async (s) => {
          const sha = sha256(carried.file);
          return bestOf(Math.min(runs, 3), async () => {
            await s.check(['rm', '-rf', copyDir]);
            return timed(() => s.copyFile(carried.file, copyDir, 'kubeadm-forever', 0o755, sha));
          }).finally(() => s.check(['rm', '-rf', copyDir]));
        }),
    },
    {
      id: 'r5',
      step: "(r5) the tool's check on a node (check --json)",
      measure: (f, t, runs) =>
        withSession(f, t, async (s) => {
          await s.copyFile(f.tool, copyDir, 'kubeadm-forever', 0o755);
          const check = [`${copyDir}/kubeadm-forever`, 'check', '--json', '--apiserver', 'none'];
          return bestOf(Math.min(runs, 3), () =>
            timed(async () => {
              const r = await s.run(check);
              // 1: a certificate short of the goal (these CAs are made short); still a full check
              if (r.code !== 0 && r.code !== 1)
                throw stepFailed(
                  `(r5) check on ${t.name} exited ${r.code}`,
                  r.stderr,
                  'run it there by hand',
                );
            }),
          );
        }),
    },
    {
      id: 'r6',
      step: '(r6) rollout --report of one control plane (whole run)',
      measure: (f, _t, runs) =>
        bestOf(Math.min(runs, 3), () =>
          timed(async () => {
            const r = await spawnChild(process.execPath, [
              cliPath,
              'rollout',
              '--report',
              '--json',
              '--inventory',
              inventory(f, 0, path.join(f.work, 'hosts-report.ini')),
              '--tool',
              f.tool,
              '--ssh-config',
              f.client.config,
              '--remote-dir',
              '/var/lib/kf-bench-report',
              '--min-years',
              '0.5',
            ]).done;
            if (r.code !== 0)
              throw stepFailed(
                `(r6) rollout --report exited ${r.code}`,
                r.stderr,
                'run it by hand to see why',
              );
          }),
        ),
    },
  ];
}

/** The rollout rows, one run: see the module comment. */
export async function rolloutRows(opts: RolloutOptions): Promise<{
  rows: RolloutRow[];
  growth: RolloutGrowth[];
  machine: Record<string, unknown>;
  text: string;
}> {
  for (const [flag, values] of [
    ['--workers', opts.workers],
    ['--max-unavailable', opts.maxUnavailable],
  ] as const)
    if (values.length === 0 || values.some((v) => !Number.isInteger(v) || v < 1 || v > 32))
      throw new UsageError(
        `invalid ${flag} ${values.join(',')}`,
        'pass whole numbers from 1 to 32, comma-separated',
      );
  const loadAtStart = loadAverage();
  const workers = [...new Set(opts.workers)].sort((a, b) => a - b);
  const f = await startFleet(Math.max(...workers));
  const exe = singleExecutable();
  // the single executable when npm run dist made it: what an operator carries to every node
  const carried = fs.existsSync(exe) ? exe : f.tool;
  const rows: RolloutRow[] = [];
  let base = 0;
  const w1 = f.targets.get('w1')!;
  for (const s of perNodeScenarios({ file: carried, mb: fs.statSync(carried).size / 1e6 })) {
    log(`${s.step} ...`);
    const seconds = await s.measure(f, s.id === 'r6' ? f.targets.get('cp1')! : w1, opts.runs);
    if (s.id === 'r0') base = seconds;
    log(`(${s.id}) ${seconds.toFixed(3)} s`);
    rows.push({
      id: s.id,
      step: s.step,
      seconds: round(seconds, 3),
      ratio: round(seconds / base, 2),
      target: '-',
      pass: null,
    });
  }
  const runs: { workers: number; maxUnavailable: number; seconds: number }[] = [];
  for (const m of opts.maxUnavailable)
    for (const w of workers) {
      const id = `w${w}m${m}`;
      const used = f.nodes.filter((n) => n.name === 'cp1' || Number(n.name.slice(1)) <= w);
      for (const n of used) restore(n);
      const step = `(${id}) rollout --files-only, 1 control plane + ${w} worker(s), --max-unavailable ${m}`;
      log(`${step} ...`);
      const seconds = await timed(() =>
        rollout(f, id, w, [
          '--files-only',
          '--max-unavailable',
          String(m),
          '--journal',
          path.join(f.work, `journal-${id}.json`),
          // a new directory per run: every run copies the tool to every node
          '--remote-dir',
          `/var/lib/kf-bench-tool-${id}`,
        ]),
      );
      log(`(${id}) ${seconds.toFixed(2)} s`);
      runs.push({ workers: w, maxUnavailable: m, seconds });
      rows.push({
        id,
        step,
        seconds: round(seconds, 2),
        ratio: round(seconds / base, 1),
        nodes: w + 1,
        workers: w,
        maxUnavailable: m,
        perNodeSeconds: round(seconds / (w + 1), 3),
        perNodeRatio: round(seconds / (w + 1) / base, 1),
        target: '-',
        pass: null,
      });
    }
  const growth = opts.maxUnavailable.map((m): RolloutGrowth => {
    const pts = runs.filter((r) => r.maxUnavailable === m);
    const slope = leastSquaresSlope(pts.map((p) => [p.workers, p.seconds]));
    return { maxUnavailable: m, secondsPerWorker: round(slope, 3), ratio: round(slope / base, 1) };
  });
  const machine = {
    cores: os.cpus().length,
    loadAtStart,
    loadAtEnd: loadAverage(),
    carried:
      carried === exe
        ? path.relative(repoRoot, exe)
        : 'the test stand-in (no single executable: npm run dist makes it)',
    carriedBytes: fs.statSync(carried).size,
    runTool: 'test stand-in (a script running dist/cli.js)',
    when: new Date().toISOString(),
  };
  const cells = rows.map((r) => [
    r.step,
    `${r.seconds.toFixed(3)} s`,
    r.ratio.toFixed(r.ratio < 10 ? 2 : 1),
    r.perNodeSeconds === undefined ? '' : `${r.perNodeSeconds.toFixed(3)} s`,
    r.perNodeRatio === undefined ? '' : r.perNodeRatio.toFixed(1),
    r.target,
    resultCell(r.pass),
  ]);
  const text = [
    formatTable(
      ['step', 'time', 'x (r0)', 'per node', 'per node x (r0)', 'target', 'result'],
      cells,
      'markdown',
    ),
    '',
    ...growth.map(
      (g) =>
        `--max-unavailable ${g.maxUnavailable}: each added worker ${g.secondsPerWorker.toFixed(3)} s (${g.ratio} x (r0)), least squares over ${workers.join(', ')} workers`,
    ),
    `(r4) copies ${machine.carried} (${(machine.carriedBytes / 1e6).toFixed(1)} MB); the changing runs carry the ${machine.runTool} to every node`,
    `nodes: files-only (sshd in its own mount namespace on 127.0.0.N, no kubelet, API server or etcd); ${machine.cores} cores; load average at start ${loadAtStart.join(' ')}, at end ${machine.loadAtEnd.join(' ')}; ${machine.when}`,
  ].join('\n');
  return { rows, growth, machine, text };
}

/** The slope of the line through the points that fits them best (0 for a single x). */
export function leastSquaresSlope(points: readonly (readonly [number, number])[]): number {
  const n = points.length;
  const mx = points.reduce((t, p) => t + p[0], 0) / n;
  const my = points.reduce((t, p) => t + p[1], 0) / n;
  const sxx = points.reduce((t, p) => t + (p[0] - mx) ** 2, 0);
  const sxy = points.reduce((t, p) => t + (p[0] - mx) * (p[1] - my), 0);
  return sxx === 0 ? 0 : sxy / sxx;
}
