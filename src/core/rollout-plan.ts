import { UsageError } from './errors.js';
import type { FleetNode } from './inventory.js';

/**
 * The rollout as data: every step in the order it runs, with the node it touches and the gates
 * that must pass before the next step starts. `rollout --dry-run` prints exactly this; the runner
 * walks it and the journal records each step's id when it is done, so a resumed rollout skips
 * finished steps by id.
 */

export type Phase =
  'preflight' | 'ca-extend' | 'ca-install' | 'control-plane' | 'workers' | 'cluster-objects';

/** What a step does on its node, in order. */
export type Action =
  /** reachable, same version, same CA on every control plane, the custom kubeadm runs, space, clock */
  | 'preflight'
  /** copy the tool (and on control planes the custom kubeadm) and check their sha256 on arrival */
  | 'copy-tool'
  /** `ca extend` with the node's own CA keys (once, on the first control plane) */
  | 'ca-extend'
  /** fetch the extended CA certificates (certificates only) to the admin host */
  | 'fetch-ca-certs'
  /** `ca extend --new-ca-dir`: install the extended CA certificates, checked to be the same CA */
  | 'ca-install'
  /** backup of /etc/kubernetes (by renew) */
  | 'backup'
  /** `renew` with the custom kubeadm: certs renew all, restart of the static pods */
  | 'renew'
  /** a worker's key makes a CSR; a control plane signs it; the certificate goes back */
  | 'kubelet-csr'
  | 'kubelet-sign'
  | 'kubelet-install'
  | 'kubelet-restart'
  /** cluster-info, kube-root-ca.crt and extension-apiserver-authentication */
  | 'cluster-objects'
  /** `check --json` on the node: every certificate and CA copy, for the report */
  | 'check';

export type GateKind =
  /** the node's CA copies (ca.crt, kubelet.conf CA data…) are the extended CA */
  | 'ca-copies-extended'
  /** that control plane's API server answers /readyz */
  | 'apiserver-readyz'
  /** etcd on that control plane is healthy */
  | 'etcd-healthy'
  /** the node is Ready */
  | 'node-ready'
  /** the certificate the API server serves ends at the goal */
  | 'served-cert-not-after'
  /** the kubelet client certificate ends at the goal */
  | 'kubelet-cert-long-lived';

export interface Gate {
  kind: GateKind;
  node: string;
  /** needs the cluster's API (skipped with clusterSteps false) */
  cluster: boolean;
}

/** What a gate saw when it ran: for the result, the journal and the operator. */
export interface GateRecord {
  step: string;
  node: string;
  gate: GateKind | 'cluster-info' | 'kube-root-ca.crt' | 'extension-apiserver-authentication';
  ok: boolean;
  saw: string;
  seconds: number;
}

export interface PlanStep {
  /** stable across runs of the same plan: the journal's key */
  id: string;
  phase: Phase;
  /** the node it runs on; undefined for steps on the admin host or the whole cluster */
  node?: string;
  /** steps with the same batch number in the workers phase run together */
  batch?: number;
  actions: Action[];
  gates: Gate[];
  describe: string;
}

export interface RolloutPlan {
  /** the control plane whose CA keys extend the CAs and sign the workers' CSRs */
  seed: string;
  maxUnavailable: number;
  clusterSteps: boolean;
  steps: PlanStep[];
}

export interface PlanInput {
  nodes: readonly FleetNode[];
  maxUnavailable: number;
  /** the control plane to extend the CAs on; default the first in name order */
  seed?: string;
  /**
   * false: leave out what needs a running cluster (renew of the control planes, the API, etcd
   * and Ready gates, the cluster objects); for nodes that are only files.
   */
  clusterSteps: boolean;
}

/** The ordered steps of a rollout over these nodes. */
export function planRollout(input: PlanInput): RolloutPlan {
  if (!Number.isInteger(input.maxUnavailable) || input.maxUnavailable < 1) {
    throw new UsageError(
      `invalid --max-unavailable ${JSON.stringify(String(input.maxUnavailable))}`,
      'pass a whole number of workers, 1 or more',
    );
  }
  const seen = new Set<string>();
  for (const n of input.nodes) {
    if (seen.has(n.name)) {
      throw new UsageError(
        `node ${JSON.stringify(n.name)} is listed twice`,
        'list each node once; nothing was changed',
      );
    }
    seen.add(n.name);
  }
  const byName = (a: FleetNode, b: FleetNode) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  const cps = input.nodes.filter((n) => n.role === 'control-plane').sort(byName);
  const workers = input.nodes.filter((n) => n.role === 'worker').sort(byName);
  if (cps.length === 0) {
    throw new UsageError(
      'no control-plane node: the CAs can only be extended where their keys are',
      'include the control planes (kube_control_plane group, or the cluster via --kubeconfig)',
    );
  }
  const seed = input.seed ?? cps[0]!.name;
  if (!cps.some((n) => n.name === seed)) {
    throw new UsageError(
      `--seed ${JSON.stringify(seed)} is not a control-plane node`,
      'name one of the control planes',
    );
  }
  const c = input.clusterSteps;
  const gate = (kind: GateKind, node: string, cluster = false): Gate => ({ kind, node, cluster });
  const steps: PlanStep[] = [];

  steps.push({
    id: 'preflight',
    phase: 'preflight',
    actions: ['preflight'],
    gates: [],
    describe: `every node in parallel (${input.nodes.length}): reachable over ssh, same Kubernetes version, same CA on every control plane, the custom kubeadm runs, space for backups, clock skew`,
  });
  for (const n of [...cps, ...workers]) {
    steps.push({
      id: `copy-tool:${n.name}`,
      phase: 'preflight',
      node: n.name,
      actions: ['copy-tool'],
      gates: [],
      describe: `copy the tool${n.role === 'control-plane' ? ' and the custom kubeadm' : ''} to ${n.name}, sha256 checked on arrival`,
    });
  }
  steps.push({
    id: `ca-extend:${seed}`,
    phase: 'ca-extend',
    node: seed,
    actions: ['ca-extend', 'fetch-ca-certs'],
    gates: [gate('ca-copies-extended', seed)],
    describe: `ca extend on ${seed} with its own CA keys; its extended CA certificates (no keys) fetched to this host`,
  });
  for (const n of [...cps, ...workers]) {
    if (n.name === seed) continue;
    steps.push({
      id: `ca-install:${n.name}`,
      phase: 'ca-install',
      node: n.name,
      actions: ['ca-install'],
      gates: [gate('ca-copies-extended', n.name)],
      describe: `install the extended CA certificates on ${n.name} (ca extend --new-ca-dir: refused unless the same CA)`,
    });
  }
  if (c) {
    for (const n of cps) {
      steps.push({
        id: `renew:${n.name}`,
        phase: 'control-plane',
        node: n.name,
        actions: ['backup', 'renew'],
        gates: [
          gate('apiserver-readyz', n.name, true),
          gate('etcd-healthy', n.name, true),
          gate('node-ready', n.name, true),
          gate('served-cert-not-after', n.name, true),
        ],
        describe: `${n.name}: backup, renew all certificates with the custom kubeadm, restart the static pods`,
      });
    }
  }
  // the control planes' own kubelet client certificates: the same CSR flow (their keys stay there)
  for (const n of cps) {
    steps.push({
      id: `kubelet-cert:${n.name}`,
      phase: 'control-plane',
      node: n.name,
      actions: [
        'kubelet-csr',
        'kubelet-sign',
        'kubelet-install',
        ...(c ? (['kubelet-restart'] as const) : []),
      ],
      gates: [gate('kubelet-cert-long-lived', n.name), ...(c ? [gate('node-ready', n.name, true)] : [])],
      describe: `${n.name}: its kubelet client certificate from a CSR of its own key, signed on ${seed}, installed${c ? ', kubelet restarted' : ''}`,
    });
  }
  workers.forEach((n, i) => {
    steps.push({
      id: `kubelet-cert:${n.name}`,
      phase: 'workers',
      node: n.name,
      batch: Math.floor(i / input.maxUnavailable) + 1,
      actions: [
        'kubelet-csr',
        'kubelet-sign',
        'kubelet-install',
        ...(c ? (['kubelet-restart'] as const) : []),
      ],
      gates: [gate('kubelet-cert-long-lived', n.name), ...(c ? [gate('node-ready', n.name, true)] : [])],
      describe: `${n.name}: a CSR from its own key, signed on ${seed}, installed${c ? ', kubelet restarted' : ''}`,
    });
  });
  if (c) {
    steps.push({
      id: 'cluster-objects',
      phase: 'cluster-objects',
      actions: ['cluster-objects'],
      gates: [],
      describe:
        'cluster-info (kube-public), kube-root-ca.crt in every namespace, extension-apiserver-authentication (kube-system)',
    });
  }
  return { seed, maxUnavailable: input.maxUnavailable, clusterSteps: c, steps };
}

/** The plan as lines for people: one per step, its gates beneath. */
export function formatPlan(plan: RolloutPlan): string {
  const lines: string[] = [];
  plan.steps.forEach((s, i) => {
    const batch = s.batch === undefined ? '' : ` [batch ${s.batch}]`;
    lines.push(`${String(i + 1).padStart(3)}. ${s.phase}${batch}: ${s.describe}`);
    for (const g of s.gates) lines.push(`       gate: ${g.kind} on ${g.node}`);
  });
  if (!plan.clusterSteps) {
    lines.push(
      '     (control-plane renew, API/etcd/Ready gates and the cluster objects left out: --files-only)',
    );
  }
  return lines.join('\n');
}
