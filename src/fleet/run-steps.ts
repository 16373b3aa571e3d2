import { createHash, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KfError, messageOf } from '../core/errors.js';
import type { FleetNode } from '../core/inventory.js';
import type { GateRecord, PlanStep, RolloutPlan } from '../core/rollout-plan.js';
import { testFaults } from '../core/test-faults.js';
import { describeTarget, type SshFleet, type SshSession } from '../adapters/openssh-client.js';
import type { Journal } from './journal.js';
import { CA_FILES, caCopy, KUBERNETES_DIR, readNodeFacts, type NodeFacts } from './preflight.js';
import {
  checkKubeadmThere,
  clusterObjects,
  controlPlaneGates,
  nodeReadyGate,
  renewControlPlane,
  restartKubelet,
  rollbackControlPlane,
  type GateContext,
} from './cluster-steps.js';

/**
 * The changing run of `rollout`: the plan's steps walked in order, each recorded in the journal
 * when it is done, so a resumed run skips them. Only CA certificates travel between nodes
 * (through a private temp dir on this host); every private key stays on its node: a kubelet's
 * key makes a CSR there, the seed signs it with its CA key (no CSR through the API, so it works
 * when the API cannot). On a running cluster each control plane is renewed by its own `renew`
 * and gated (cluster-steps.ts); in rescue (the API unreachable or its certificates expired) the
 * control planes are renewed file-first and gated together after the last one, since etcd has
 * no quorum until enough members hold renewed certificates.
 */

const PKI_DIR = `${KUBERNETES_DIR}/pki`;
const MAX_PEM_BYTES = 64 * 1024;

export type NodeProgressState = 'done' | 'in progress' | 'failed' | 'untouched';

export interface NodeProgress {
  name: string;
  role: FleetNode['role'];
  state: NodeProgressState;
  /** the node's steps done, of all its steps */
  stepsDone: number;
  steps: number;
  /** the step that failed or was running, when there is one */
  at?: string;
}

export interface RunContext {
  plan: RolloutPlan;
  nodes: readonly FleetNode[];
  fleet: SshFleet;
  journal: Journal;
  /** what preflight read of each node before the run */
  facts: Map<string, NodeFacts>;
  ensureTool(node: FleetNode): Promise<string>;
  /** the custom kubeadm on a control plane (running cluster only) */
  ensureKubeadm?(node: FleetNode): Promise<string>;
  remoteDir: string;
  minYears: number;
  step(text: string): void;
  /** the cluster's API was not usable before the run: control planes renewed file-first */
  rescue?: boolean;
  /** how long each gate waits */
  gateTimeoutMs?: number;
  /** nodes copied to or given the CA certificates at the same time */
  parallel?: number;
}

export interface StepTiming {
  step: string;
  node?: string;
  seconds: number;
}

export interface RunOutcome {
  /** undefined when every step is done */
  failed?: { step: string; node?: string; what: string };
  /** every gate run and what it saw */
  gates: GateRecord[];
  /** how long each step run took (steps done before a resume are not in it) */
  timings: StepTiming[];
}

function yearsAway(notAfter: string): number {
  return (Date.parse(notAfter) - Date.now()) / (365.25 * 24 * 3600 * 1000);
}

/** The first line of an error, for the journal and the one-line problem. */
function firstLine(err: unknown): string {
  const e = err instanceof KfError ? err.message : messageOf(err);
  return e.split('\n')[0]!;
}

/** The extended CA certificates of the seed, kept in a private temp dir on this host. */
class CaBundle {
  readonly files = new Map<string, { local: string; sha256: string; notAfter: string; keyId: string }>();
  constructor(readonly dir: string) {}
  /** where the certificates go on a node, named by their content so a re-run reuses it */
  remoteDir(base: string): string {
    const all = [...this.files.values()].map((f) => f.sha256).join(',');
    return `${base}/new-ca-${createHash('sha256').update(all).digest('hex').slice(0, 16)}`;
  }
}

/** Reads a CA certificate (never a key) from the seed: bounded, parsed, the seed's same CA. */
async function fetchCaCerts(seed: SshSession, seedFacts: NodeFacts, bundle: CaBundle, minYears: number) {
  for (const rel of CA_FILES) {
    const file = `${KUBERNETES_DIR}/${rel}`;
    const before = seedFacts.caCopies.find((c) => c.file === file);
    if (!before) continue;
    // a regular file only (not a link, FIFO or device), bounded before it is read
    const r = await seed.check(
      [
        'sh',
        '-c',
        'if [ -f "$1" ] && [ ! -L "$1" ]; then exec head -c "$2" -- "$1"; fi; echo "not a regular file: $1" >&2; exit 3',
        'kf-fetch',
        file,
        String(MAX_PEM_BYTES + 1),
      ],
      { maxOutputBytes: MAX_PEM_BYTES + 1 },
    );
    const text = r.stdout.toString('utf8');
    const where = `${describeTarget(seed.target)}: ${file}`;
    if (r.stdout.length > MAX_PEM_BYTES)
      throw new KfError(`${where} is over 64 KiB`, 'check the file on the node');
    if (/PRIVATE KEY/.test(text))
      throw new KfError(`${where} holds a private key`, 'a CA certificate file must hold certificates only');
    let copy;
    try {
      copy = caCopy(file, text);
      new X509Certificate(text);
    } catch {
      throw new KfError(`${where} is not a PEM certificate`, 'restore it from the backup ca extend made');
    }
    if (copy.keyId !== before.keyId)
      throw new KfError(
        `${where} is another CA than before the run`,
        'restore it from the backup ca extend made',
      );
    if (yearsAway(copy.notAfter) < minYears)
      throw new KfError(
        `${where} ends ${copy.notAfter}, under the goal of ${minYears} years`,
        'ca extend did not extend it: run ca extend --pki-dir there by hand to see why',
      );
    const local = path.join(bundle.dir, rel);
    fs.mkdirSync(path.dirname(local), { recursive: true, mode: 0o700 });
    fs.writeFileSync(local, text, { mode: 0o644 });
    bundle.files.set(rel, {
      local,
      sha256: createHash('sha256').update(text).digest('hex'),
      notAfter: copy.notAfter,
      keyId: copy.keyId,
    });
  }
  if (!bundle.files.has('pki/ca.crt'))
    throw new KfError(`${describeTarget(seed.target)}: no ${PKI_DIR}/ca.crt`, 'check the seed node');
}

/** The gate: every CA copy of the node is the extended one (same key, same NotAfter). */
async function gateCaCopies(session: SshSession, bundle: CaBundle): Promise<void> {
  const f = await readNodeFacts(session);
  for (const c of f.caCopies) {
    const want = bundle.files.get(c.file.slice(KUBERNETES_DIR.length + 1));
    if (want && (want.keyId !== c.keyId || want.notAfter !== c.notAfter))
      throw new KfError(
        `${describeTarget(session.target)}: ${c.file} ends ${c.notAfter}, not the extended CA's ${want.notAfter}`,
        'run ca extend --new-ca-dir there by hand to see why',
      );
  }
}

/** The node already holds every extended CA certificate it has a copy of (a re-run). */
function alreadyInstalled(f: NodeFacts | undefined, bundle: CaBundle): boolean {
  if (!f || f.caCopies.length === 0) return false;
  return f.caCopies.every((c) => {
    const want = bundle.files.get(c.file.slice(KUBERNETES_DIR.length + 1));
    return !want || (want.keyId === c.keyId && want.notAfter === c.notAfter);
  });
}

function jsonOf<T>(r: { stdout: Buffer }, session: SshSession, what: string): T {
  try {
    return JSON.parse(r.stdout.toString('utf8')) as T;
  } catch {
    throw new KfError(
      `${describeTarget(session.target)}: ${what} did not print its JSON document`,
      'run the tool there by hand to see why',
    );
  }
}

async function runStep(
  ctx: RunContext,
  s: PlanStep,
  bundle: CaBundle,
  ensureBundle: () => Promise<void>,
  gates: GateRecord[],
): Promise<void> {
  const node = s.node === undefined ? undefined : ctx.nodes.find((n) => n.name === s.node)!;
  const seedNode = ctx.nodes.find((n) => n.name === ctx.plan.seed)!;
  const gctx: GateContext = {
    step: s.id,
    timeoutMs: ctx.gateTimeoutMs ?? 300_000,
    minYears: ctx.minYears,
    record: (g) => gates.push(g),
  };
  if (s.id === 'preflight') return; // done by the caller before any step
  if (s.actions.includes('cluster-objects')) {
    await ensureBundle();
    const fp = bundle.files.get('pki/front-proxy-ca.crt');
    await clusterObjects(
      gctx,
      ctx.fleet.session(seedNode),
      seedNode.name,
      bundle.files.get('pki/ca.crt')!.local,
      fp?.local,
    );
    return;
  }
  if (!node) throw new KfError(`step ${s.id} has no node`, 'this is a bug: report it');
  const session = ctx.fleet.session(node);
  const tool = await ctx.ensureTool(node);
  // the node's clock: a lease renewed after this moment was renewed after the step began
  const sinceOnNode = () => Date.now() + (ctx.facts.get(node.name)?.clockSkewSeconds ?? 0) * 1000 - 2000;
  if (s.actions.includes('copy-tool')) {
    if (ctx.plan.clusterSteps && node.role === 'control-plane' && ctx.ensureKubeadm)
      await checkKubeadmThere(session, await ctx.ensureKubeadm(node));
    return;
  }
  if (s.actions.includes('renew')) {
    if (!ctx.ensureKubeadm) throw new KfError('renew needs --kubeadm', 'pass --kubeadm PATH');
    const kubeadm = await ctx.ensureKubeadm(node);
    const since = sinceOnNode();
    const renewed = await renewControlPlane(session, tool, kubeadm);
    if (ctx.rescue) {
      // no quorum until enough members are renewed: every control plane is gated after the last
      const cps = ctx.plan.steps.filter((t) => t.actions.includes('renew'));
      if (cps.at(-1)?.id !== s.id) return;
      for (const t of cps) {
        const cp = ctx.nodes.find((n) => n.name === t.node)!;
        await controlPlaneGates(gctx, cp, ctx.fleet.session(cp), await ctx.ensureTool(cp));
      }
      return;
    }
    try {
      if (!renewed.checkOk)
        throw new KfError(
          `${node.name}: the check after renew failed: ${renewed.summary}`,
          'see the node (kubeadm-forever check)',
        );
      await controlPlaneGates(gctx, node, session, tool, { admin: session, sinceMs: since });
    } catch (err) {
      const back = await rollbackControlPlane(session, tool, renewed.backup);
      throw new KfError(
        `${firstLine(err)}; node ${node.name} ${back}; the nodes before it are renewed, those after it untouched`,
        'fix what the gate saw, then run again with --resume',
      );
    }
    return;
  }
  if (s.actions.includes('ca-extend')) {
    const f = ctx.facts.get(node.name)!;
    // a re-run after the CAs were extended: extending again would only move the dates
    if (!f.caCopies.every((c) => yearsAway(c.notAfter) >= ctx.minYears))
      await session.check([tool, 'ca', 'extend', '--pki-dir', PKI_DIR], { timeoutMs: 300_000 });
    await ensureBundle();
    await gateCaCopies(session, bundle);
    return;
  }
  if (s.actions.includes('ca-install')) {
    await ensureBundle();
    const now = await readNodeFacts(session);
    if (!alreadyInstalled(now, bundle)) {
      const dir = bundle.remoteDir(ctx.remoteDir);
      for (const c of now.caCopies) {
        const rel = c.file.slice(KUBERNETES_DIR.length + 1);
        const b = bundle.files.get(rel);
        if (!b) continue;
        const sub = path.posix.dirname(rel.slice('pki/'.length));
        await session.copyFile(
          b.local,
          sub === '.' ? dir : `${dir}/${sub}`,
          path.posix.basename(rel),
          0o644,
          b.sha256,
        );
      }
      await session.check([tool, 'ca', 'extend', '--pki-dir', PKI_DIR, '--new-ca-dir', dir], {
        timeoutMs: 300_000,
      });
    }
    await gateCaCopies(session, bundle);
    return;
  }
  if (s.actions.includes('kubelet-csr')) {
    // the key stays on the node: only its CSR and the signed certificate travel
    const made = jsonOf<{ csr: string }>(
      await session.check([tool, 'kubelet-cert', '--json', '--node', node.name, '--make-csr'], {
        timeoutMs: 120_000,
      }),
      session,
      'kubelet-cert --make-csr',
    );
    const seed = ctx.fleet.session(seedNode);
    const seedTool = await ctx.ensureTool(seedNode);
    const signed = jsonOf<{ cert: string }>(
      await seed.check(
        [seedTool, 'kubelet-cert', '--json', '--node', node.name, '--pki-dir', PKI_DIR, '--sign-csr=-'],
        { input: made.csr, timeoutMs: 120_000 },
      ),
      seed,
      'kubelet-cert --sign-csr',
    );
    const installed = jsonOf<{ notAfter: string }>(
      await session.check([tool, 'kubelet-cert', '--json', '--node', node.name, '--install=-'], {
        input: signed.cert,
        timeoutMs: 120_000,
      }),
      session,
      'kubelet-cert --install',
    );
    if (!(yearsAway(installed.notAfter) >= ctx.minYears))
      throw new KfError(
        `${describeTarget(session.target)}: the kubelet certificate ends ${installed.notAfter}, under the goal of ${ctx.minYears} years`,
        'check the signing validity',
      );
    gates.push({
      step: s.id,
      node: node.name,
      gate: 'kubelet-cert-long-lived',
      ok: true,
      saw: `installed, ends ${installed.notAfter}`,
      seconds: 0,
    });
    if (s.actions.includes('kubelet-restart')) {
      // a kubelet.conf that embeds its client certificate would never use the installed one
      const uses = await session.run(
        [
          'grep',
          '-q',
          '-F',
          '/var/lib/kubelet/pki/kubelet-client-current.pem',
          `${KUBERNETES_DIR}/kubelet.conf`,
        ],
        { timeoutMs: 120_000 },
      );
      if (uses.code !== 0)
        throw new KfError(
          `${describeTarget(session.target)}: ${KUBERNETES_DIR}/kubelet.conf does not name /var/lib/kubelet/pki/kubelet-client-current.pem (it embeds its client certificate), so the kubelet would not use the installed one`,
          'point its client-certificate and client-key at /var/lib/kubelet/pki/kubelet-client-current.pem (as kubeadm writes it since 1.17), then run again with --resume',
        );
      const since = sinceOnNode();
      await restartKubelet(session);
      await nodeReadyGate(gctx, node, ctx.fleet.session(seedNode), since);
    }
    return;
  }
  throw new KfError(
    `step ${s.id}: ${s.actions.join(', ')} is not a step this version runs`,
    'this is a bug: report it',
  );
}

/** Test-only (core/test-faults.ts): the run stops at this step as if the tool were killed. */
async function maybeFailForTest(stepId: string): Promise<void> {
  if (testFaults(process.env).rolloutStopAt === stepId) {
    process.kill(process.pid, 'SIGKILL');
    await new Promise(() => undefined);
  }
}

/** Walks the plan; stops at the first failed step (a batch of workers finishes together). */
export async function runPlan(ctx: RunContext): Promise<RunOutcome> {
  const gates: GateRecord[] = [];
  const timings: StepTiming[] = [];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-rollout-ca-'));
  fs.chmodSync(dir, 0o700);
  const bundle = new CaBundle(dir);
  let fetched: Promise<void> | undefined;
  const seedNode = ctx.nodes.find((n) => n.name === ctx.plan.seed)!;
  const ensureBundle = () =>
    (fetched ??= fetchCaCerts(
      ctx.fleet.session(seedNode),
      ctx.facts.get(seedNode.name)!,
      bundle,
      ctx.minYears,
    ).catch((err: unknown) => {
      fetched = undefined;
      throw err;
    }));
  try {
    const steps = ctx.plan.steps;
    for (let i = 0; i < steps.length;) {
      const s = steps[i]!;
      // the workers of one batch run together; so do the copies of the tool and the CA installs
      // (each touches its own node only, nothing restarts), up to `parallel` nodes at a time
      const sideBySide = (t: PlanStep) =>
        t.actions.includes('copy-tool') ? 'copy' : t.actions.includes('ca-install') ? 'install' : undefined;
      let end = i + 1;
      if (s.batch !== undefined) while (end < steps.length && steps[end]!.batch === s.batch) end++;
      else if (sideBySide(s))
        while (
          end < steps.length &&
          end - i < (ctx.parallel ?? 16) &&
          sideBySide(steps[end]!) === sideBySide(s)
        )
          end++;
      const group = steps.slice(i, end);
      i = end;
      const todo = group.filter((t) => !ctx.journal.isDone(t.id));
      if (todo.length === 0) continue;
      ctx.step(todo.map((t) => t.id).join(', '));
      const results = await Promise.allSettled(
        todo.map(async (t) => {
          ctx.journal.mark(t.id, 'running');
          const t0 = Date.now();
          // what this step's gates saw goes into the journal with its state
          const seen = () => gates.filter((g) => g.step === t.id);
          try {
            await maybeFailForTest(t.id);
            await runStep(ctx, t, bundle, ensureBundle, gates);
          } catch (err) {
            ctx.journal.mark(t.id, 'failed', { detail: firstLine(err), gates: seen() });
            throw err;
          } finally {
            timings.push({
              step: t.id,
              ...(t.node ? { node: t.node } : {}),
              seconds: (Date.now() - t0) / 1000,
            });
          }
          ctx.journal.mark(t.id, 'done', { gates: seen() });
        }),
      );
      const bad = results.findIndex((r) => r.status === 'rejected');
      if (bad >= 0) {
        const t = todo[bad]!;
        return {
          failed: {
            step: t.id,
            ...(t.node ? { node: t.node } : {}),
            what: firstLine((results[bad] as PromiseRejectedResult).reason),
          },
          gates,
          timings,
        };
      }
    }
    return { gates, timings };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Where each node stands by the journal: done, in progress, failed or untouched. */
export function nodeProgress(
  plan: RolloutPlan,
  nodes: readonly FleetNode[],
  journal: Journal,
): NodeProgress[] {
  const doc = journal.document;
  return nodes.map((n) => {
    const mine = plan.steps.filter((s) => s.node === n.name);
    const done = mine.filter((s) => doc.steps[s.id]?.state === 'done').length;
    const failed = mine.find((s) => doc.steps[s.id]?.state === 'failed');
    const running = mine.find((s) => doc.steps[s.id]?.state === 'running');
    const state: NodeProgressState = failed
      ? 'failed'
      : done === mine.length
        ? 'done'
        : done > 0 || running
          ? 'in progress'
          : 'untouched';
    const at =
      failed ??
      running ??
      (state === 'in progress' ? mine.find((s) => doc.steps[s.id]?.state !== 'done') : undefined);
    return {
      name: n.name,
      role: n.role,
      state,
      stepsDone: done,
      steps: mine.length,
      ...(at ? { at: at.id } : {}),
    };
  });
}

export function formatProgressTable(rows: readonly NodeProgress[]): string {
  const w = Math.max(4, ...rows.map((r) => r.name.length));
  const lines = [`${'NODE'.padEnd(w)}  ${'ROLE'.padEnd(13)}  ${'STATE'.padEnd(11)}  STEPS  AT`];
  for (const r of rows)
    lines.push(
      `${r.name.padEnd(w)}  ${r.role.padEnd(13)}  ${r.state.padEnd(11)}  ${`${r.stepsDone}/${r.steps}`.padEnd(5)}  ${r.at ?? ''}`.trimEnd(),
    );
  return lines.join('\n');
}
