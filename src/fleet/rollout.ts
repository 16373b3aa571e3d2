import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KfError, messageOf, UsageError } from '../core/errors.js';
import { asKfError } from '../core/errors.js';
import type { CommandIo } from '../core/command-io.js';
import type { FleetNode } from '../core/inventory.js';
import { reporter } from '../core/progress.js';
import { formatPlan, planRollout, type GateRecord, type RolloutPlan } from '../core/rollout-plan.js';
import { sha256File } from '../adapters/fs.js';
import { describeTarget, SshFleet, type HostKeyPolicy, type SshSession } from '../adapters/openssh-client.js';
import { readInventory } from './inventory-file.js';
import { clusterNodes, mergeNodes } from './cluster-nodes.js';
import { probeApi, type ApiState } from './cluster-steps.js';
import { Journal } from './journal.js';
import {
  formatProgressTable,
  nodeProgress,
  runPlan,
  type NodeProgress,
  type StepTiming,
} from './run-steps.js';
import { preflightProblems, readNodeFacts, type NodeFacts } from './preflight.js';
import {
  formatReportTable,
  isCheckDocument,
  nodeReportFromCheck,
  unreachableReport,
  type NodeReport,
} from './report.js';

/**
 * `rollout`: every node of a cluster brought to long-lived certificates and CA copies, from an
 * admin host over ssh: --dry-run (the plan, and every node's preflight read without changing
 * anything), --report (every node's own `check`, for monitoring the whole cluster) and the
 * changing run (run-steps.ts), on a running cluster or on one whose certificates have expired
 * (rescue: file-first), or on nodes that are only files (--files-only).
 */

export type RolloutMode = 'dry-run' | 'report' | 'run';

export interface RolloutInput {
  mode: RolloutMode;
  /** an Ansible inventory (INI or YAML) */
  inventory?: string;
  /** an admin kubeconfig: the nodes (names, roles, InternalIP) read from the cluster */
  kubeconfig?: string;
  /** how long each gate waits, seconds */
  gateTimeoutSeconds?: number;
  /** the single-file executable of this tool, copied to each node to run its node commands */
  tool?: string;
  /** the custom kubeadm, copied to the control planes */
  kubeadm?: string;
  maxUnavailable: number;
  seed?: string;
  /** the goal: every certificate and CA copy at least this many years away */
  minYears: number;
  /** nodes that are only files (no kubelet, API or etcd): no renew, no cluster gates */
  filesOnly: boolean;
  ssh: { configFile?: string; hostKeys: HostKeyPolicy; connectTimeoutSeconds: number };
  /** where the tool is put on each node */
  remoteDir: string;
  /** nodes reached at once */
  parallel: number;
  /** the changing run's journal on this host */
  journal?: string;
  /** continue the rollout of that journal */
  resume?: boolean;
}

export interface NodeState {
  name: string;
  role: FleetNode['role'];
  address: string;
  reachable: boolean;
  facts?: NodeFacts;
  error?: string;
}

/** The --json document of rollout, whatever the mode. */
export interface RolloutResult {
  mode: RolloutMode;
  /** every node at the goal (report), or fit for a rollout (dry-run) */
  ok: boolean;
  plan: RolloutPlan;
  /** what preflight read of each node (dry-run) */
  nodes: NodeState[];
  /** every reason ok is false, one line each naming the node */
  problems: string[];
  /** each node's certificates and CA copies (report) */
  report?: NodeReport[];
  /** hosts of the inventory in neither a control-plane nor a worker group */
  ignoredHosts: string[];
  /** the changing run: where each node stands by the journal, and the journal's path */
  progress?: NodeProgress[];
  journal?: string;
  /** the changing run: the step that failed */
  failedStep?: { step: string; node?: string; what: string };
  /** the cluster's API before the run, as the seed's admin.conf saw it (rescue when not ok) */
  api?: ApiState & { rescue: boolean };
  /** the changing run: what each gate saw, and each step's time */
  gates?: GateRecord[];
  timings?: StepTiming[];
  /** the changing run: seconds from start to end */
  totalSeconds?: number;
}

/** The journal's default place: the user's state directory (XDG). */
export function defaultJournal(env: NodeJS.ProcessEnv): string {
  const state = env.XDG_STATE_HOME || path.join(env.HOME || os.homedir(), '.local', 'state');
  return path.join(state, 'kubeadm-forever', 'rollout-journal.json');
}

export const DEFAULT_REMOTE_DIR = '/var/tmp/kubeadm-forever';

async function nodesOf(input: RolloutInput): Promise<{ nodes: FleetNode[]; ignored: string[] }> {
  if (input.inventory === undefined && input.kubeconfig === undefined) {
    throw new UsageError(
      'no nodes: rollout needs --inventory or --kubeconfig',
      'pass --inventory FILE (an Ansible inventory, INI or YAML; kubespray inventories work unchanged) or --kubeconfig admin.conf',
    );
  }
  const inv = input.inventory === undefined ? { nodes: [], ignored: [] } : readInventory(input.inventory);
  if (input.kubeconfig === undefined) return inv;
  return { nodes: mergeNodes(await clusterNodes(input.kubeconfig), inv.nodes), ignored: inv.ignored };
}

function checkKubeadm(kubeadm: string | undefined): string {
  if (kubeadm === undefined)
    throw new UsageError(
      'rollout renews the control planes with the custom kubeadm, and none was given',
      'pass --kubeadm PATH (kubeadm-forever build makes it; the cluster’s exact version)',
    );
  if (!fs.statSync(kubeadm, { throwIfNoEntry: false })?.isFile())
    throw new UsageError(
      `--kubeadm ${JSON.stringify(kubeadm)} is not a file`,
      'pass the custom kubeadm’s path',
    );
  return kubeadm;
}

function checkTool(tool: string | undefined): string {
  if (tool === undefined) {
    throw new UsageError(
      'rollout needs the single-file executable of kubeadm-forever to run its node commands on each node',
      'pass --tool PATH (the executable built by npm run dist)',
    );
  }
  const st = fs.statSync(tool, { throwIfNoEntry: false });
  if (!st?.isFile()) {
    throw new UsageError(
      `--tool ${JSON.stringify(tool)} is not a file`,
      'pass --tool PATH (the executable built by npm run dist)',
    );
  }
  return tool;
}

/** Runs fn over items, at most `limit` at a time, results in order. */
async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** sha256 of a local file: each file hashed once per run (streamed), however many nodes it goes to. */
type FileHasher = (file: string) => Promise<string>;
function hashEachFileOnce(): FileHasher {
  const hashes = new Map<string, Promise<string>>();
  return (file) => {
    let p = hashes.get(file);
    if (!p) {
      p = sha256File(file);
      hashes.set(file, p);
      p.catch(() => hashes.delete(file));
    }
    return p;
  };
}

/** The tool on the node, content-addressed: copied (sha256 checked) unless already there. */
function ensureTool(session: SshSession, tool: string, remoteDir: string, hash: FileHasher): Promise<string> {
  return ensureFile(session, tool, remoteDir, 'kubeadm-forever', hash);
}

/** A local executable on the node as remoteDir/<stem>-<sha256 prefix>, copied unless there. */
async function ensureFile(
  session: SshSession,
  local: string,
  remoteDir: string,
  stem: string,
  hash: FileHasher,
): Promise<string> {
  const sha = await hash(local);
  const name = `${stem}-${sha.slice(0, 16)}`;
  const remote = `${remoteDir}/${name}`;
  // generous: on a loaded node (a control plane restarting its pods) ssh itself can take long
  const have = await session.run(['sha256sum', remote], { timeoutMs: 300_000 });
  if (have.code !== 0 || have.stdout.toString().split(' ')[0] !== sha) {
    await session.copyFile(local, remoteDir, name, 0o755, sha);
  }
  return remote;
}

/** `check --json` on the node by its own copy of the tool. */
async function checkNode(
  node: FleetNode,
  session: SshSession,
  toolPath: string,
  input: RolloutInput,
): Promise<NodeReport> {
  const apiserver = input.filesOnly || node.role === 'worker' ? 'none' : 'auto';
  const r = await session.run(
    [toolPath, 'check', '--json', '--min-years', String(input.minYears), '--apiserver', apiserver],
    {
      timeoutMs: 120_000,
      maxOutputBytes: 8 * 1024 * 1024,
    },
  );
  let doc: unknown;
  try {
    doc = JSON.parse(r.stdout.toString('utf8'));
  } catch {
    doc = undefined;
  }
  if ((r.code !== 0 && r.code !== 1) || !isCheckDocument(doc)) {
    const why = r.stderr.trim().split('\n').slice(0, 2).join(' / ');
    throw new KfError(
      `${describeTarget(session.target)}: check on the node failed (exit ${r.code})${why ? `: ${why}` : ''}`,
      'run the tool there by hand (check --json) to see why',
    );
  }
  return nodeReportFromCheck(node, doc);
}

export async function runRollout(input: RolloutInput, io: CommandIo): Promise<RolloutResult> {
  const progress = reporter(io.progress);
  const started = Date.now();
  const hash = hashEachFileOnce();
  const { nodes, ignored } = await nodesOf(input);
  const plan = planRollout({
    nodes,
    maxUnavailable: input.maxUnavailable,
    seed: input.seed,
    clusterSteps: !input.filesOnly,
  });
  if (input.mode !== 'run' && input.resume)
    throw new UsageError('--resume is for the changing run', 'drop --dry-run/--report, or --resume');
  const tool = input.mode !== 'dry-run' ? checkTool(input.tool) : input.tool;
  const kubeadm = input.mode === 'run' && !input.filesOnly ? checkKubeadm(input.kubeadm) : input.kubeadm;
  const journalFile = input.journal ?? defaultJournal(io.env);
  // refused (another plan, or an existing journal without --resume) before any node is reached
  const journal =
    input.mode === 'run' ? Journal.open(journalFile, plan, { resume: input.resume ?? false }) : undefined;
  const toolProblem =
    input.mode === 'dry-run' && tool === undefined
      ? ['--tool not given: a rollout needs the single-file executable (npm run dist) to copy to each node']
      : input.mode === 'dry-run' &&
          tool !== undefined &&
          !fs.statSync(tool, { throwIfNoEntry: false })?.isFile()
        ? [`--tool ${JSON.stringify(tool)} is not a file`]
        : [];
  const fleet = SshFleet.open({
    configFile: input.ssh.configFile,
    hostKeys: input.ssh.hostKeys,
    connectTimeoutSeconds: input.ssh.connectTimeoutSeconds,
    env: io.env,
  });
  try {
    progress.step(`reading ${nodes.length} node(s) over ssh`);
    const states = await pool(nodes, input.parallel, async (n): Promise<NodeState> => {
      const base = { name: n.name, role: n.role, address: n.address };
      try {
        const facts = await readNodeFacts(fleet.session(n));
        return { ...base, reachable: true, facts };
      } catch (err) {
        return { ...base, reachable: false, error: asKfError(err)?.what ?? messageOf(err) };
      }
    });
    const facts = new Map(states.filter((s) => s.facts).map((s) => [s.name, s.facts!]));
    const problems = [
      ...states.filter((s) => !s.reachable).map((s) => s.error!),
      ...preflightProblems(facts, nodes, plan.seed),
    ];
    // the API before any step: when it cannot be used the control planes go file-first (rescue)
    let api: RolloutResult['api'];
    if (!input.filesOnly && input.mode !== 'report' && states.find((s) => s.name === plan.seed)?.reachable) {
      progress.step(`asking the API through ${plan.seed}'s admin.conf`);
      const seedNode = nodes.find((n) => n.name === plan.seed)!;
      // a probe that did not run (ssh failed, timed out) says nothing about the API: a problem,
      // not a rescue, which would take away the gates between the control planes
      const a = await probeApi(fleet.session(seedNode)).catch((err: unknown): ApiState | undefined => {
        problems.push(
          `node ${plan.seed}: the API could not be asked through it: ${asKfError(err)?.what ?? messageOf(err)}`,
        );
        return undefined;
      });
      const caExpired =
        facts.get(plan.seed)?.caCopies.some((c) => Date.parse(c.notAfter) <= Date.now()) ?? false;
      if (a) api = { ...a, rescue: a.state !== 'ok' || caExpired };
      else api = undefined;
      if (a && api?.rescue)
        progress.warn(
          `the API cannot be used (${a.state}: ${a.detail}${caExpired ? '; a CA has expired' : ''}): rescue, the control planes are renewed file-first and gated after the last one`,
        );
    }
    const kubeadmProblem =
      input.mode === 'dry-run' &&
      !input.filesOnly &&
      (kubeadm === undefined || !fs.statSync(kubeadm, { throwIfNoEntry: false })?.isFile())
        ? [
            `--kubeadm ${kubeadm === undefined ? 'not given' : `${JSON.stringify(kubeadm)} is not a file`}: the control planes are renewed with the custom kubeadm`,
          ]
        : [];
    if (input.mode === 'dry-run') {
      return {
        mode: 'dry-run',
        ok: problems.length === 0 && toolProblem.length === 0 && kubeadmProblem.length === 0,
        ...(api ? { api } : {}),
        plan,
        nodes: states,
        problems: [...problems, ...toolProblem, ...kubeadmProblem],
        ignoredHosts: ignored,
      };
    }
    let ran: Pick<RolloutResult, 'progress' | 'journal' | 'failedStep' | 'gates' | 'timings' | 'api'> = {};
    if (input.mode === 'run') {
      if (problems.length > 0) {
        return {
          mode: 'run',
          ok: false,
          plan,
          nodes: states,
          problems,
          ignoredHosts: ignored,
          progress: nodeProgress(plan, nodes, journal!),
          journal: journalFile,
        };
      }
      journal!.mark('preflight', 'done');
      const tools = new Map<string, Promise<string>>();
      const kubeadms = new Map<string, Promise<string>>();
      const outcome = await runPlan({
        plan,
        nodes,
        fleet,
        journal: journal!,
        facts,
        remoteDir: input.remoteDir,
        minYears: input.minYears,
        step: (t) => progress.step(t),
        rescue: api?.rescue ?? false,
        parallel: input.parallel,
        gateTimeoutMs: (input.gateTimeoutSeconds ?? 300) * 1000,
        ...(kubeadm !== undefined && !input.filesOnly
          ? {
              ensureKubeadm: (n: FleetNode) => {
                let p = kubeadms.get(n.name);
                if (!p) {
                  p = ensureFile(fleet.session(n), kubeadm, input.remoteDir, 'kubeadm', hash);
                  kubeadms.set(n.name, p);
                  p.catch(() => kubeadms.delete(n.name));
                }
                return p;
              },
            }
          : {}),
        ensureTool: (n) => {
          let p = tools.get(n.name);
          if (!p) {
            p = ensureTool(fleet.session(n), tool!, input.remoteDir, hash);
            tools.set(n.name, p);
            p.catch(() => tools.delete(n.name));
          }
          return p;
        },
      });
      ran = {
        progress: nodeProgress(plan, nodes, journal!),
        journal: journalFile,
        gates: outcome.gates,
        timings: outcome.timings,
        ...(api ? { api } : {}),
      };
      if (outcome.failed) {
        const f = outcome.failed;
        return {
          mode: 'run',
          ok: false,
          plan,
          nodes: states,
          problems: [`${f.node ? `node ${f.node}, ` : ''}step ${f.step} failed: ${f.what}`],
          ignoredHosts: ignored,
          ...ran,
          failedStep: f,
          totalSeconds: (Date.now() - started) / 1000,
        };
      }
    }
    progress.step(`checking the certificates of ${nodes.length} node(s)`);
    const report = await pool(nodes, input.parallel, async (n): Promise<NodeReport> => {
      const state = states.find((s) => s.name === n.name)!;
      if (!state.reachable) return unreachableReport(n, state.error!);
      try {
        const session = fleet.session(n);
        const toolPath = await ensureTool(session, tool!, input.remoteDir, hash);
        return await checkNode(n, session, toolPath, input);
      } catch (err) {
        return unreachableReport(n, asKfError(err)?.what ?? messageOf(err));
      }
    });
    const notAtGoal = report
      .filter((r) => !r.atGoal)
      .map((r) => `node ${r.name}: not at the goal (${r.problems[0] ?? 'see the report'})`);
    return {
      mode: input.mode,
      ok: notAtGoal.length === 0,
      plan,
      nodes: states,
      problems: [...problems, ...notAtGoal],
      report,
      ignoredHosts: ignored,
      ...ran,
      ...(input.mode === 'run' ? { totalSeconds: (Date.now() - started) / 1000 } : {}),
    };
  } finally {
    await fleet.close();
  }
}

/** The result for people: the plan and preflight (dry-run) or the table (report). */
export function formatRolloutResult(r: RolloutResult): string {
  const out: string[] = [];
  if (r.mode === 'dry-run') {
    out.push(
      `plan (${r.plan.steps.length} steps, seed ${r.plan.seed}, --max-unavailable ${r.plan.maxUnavailable}):`,
    );
    out.push(formatPlan(r.plan), '');
    out.push('preflight (read only):');
    for (const n of r.nodes) {
      if (!n.reachable) {
        out.push(`  ${n.name} (${n.role}): UNREACHABLE`);
        continue;
      }
      const f = n.facts!;
      const cas = f.caCopies
        .map((c) => `${c.file.replace(/^\/etc\/kubernetes\//, '')} until ${c.notAfter}`)
        .join(', ');
      out.push(
        `  ${n.name} (${n.role}): kubelet ${f.kubeletVersion ?? 'none'}, clock ${f.clockSkewSeconds >= 0 ? '+' : ''}${f.clockSkewSeconds} s, ${f.availableKiB ?? '?'} KiB free; ${cas || 'no CA copy'}`,
      );
    }
    if (r.api)
      out.push(
        '',
        `API: ${r.api.state} (${r.api.detail})${r.api.rescue ? ': rescue, the control planes would be renewed file-first' : ''}`,
      );
  } else {
    if (r.api?.rescue)
      out.push(`rescue: the API was ${r.api.state} (${r.api.detail}); control planes renewed file-first`, '');
    if (r.progress) out.push(`rollout (journal ${r.journal}):`, formatProgressTable(r.progress), '');
    if (r.timings && r.timings.length > 0)
      out.push(
        'steps:',
        ...r.timings.map((t) => `  ${t.step.padEnd(32)} ${t.seconds.toFixed(1).padStart(7)} s`),
        ...(r.totalSeconds !== undefined ? [`  total ${r.totalSeconds.toFixed(1)} s`] : []),
        '',
      );
    if (r.gates && r.gates.length > 0)
      out.push(
        'gates:',
        ...r.gates.map(
          (g) => `  ${g.ok ? 'ok  ' : 'FAIL'} ${g.node} ${g.gate} (${g.seconds.toFixed(1)} s): ${g.saw}`,
        ),
        '',
      );
    if (r.report) out.push(formatReportTable(r.report));
  }
  if (r.ignoredHosts.length > 0)
    out.push(`ignored (in no control-plane or worker group): ${r.ignoredHosts.join(', ')}`);
  if (r.problems.length > 0) out.push('', 'problems:', ...r.problems.map((p) => `  ${p}`));
  out.push(
    r.ok
      ? r.mode !== 'dry-run'
        ? 'every node is at the goal'
        : 'nothing was changed; the fleet is fit for a rollout'
      : '',
  );
  return out.join('\n').trimEnd();
}
