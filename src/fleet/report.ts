import type { NodeRole } from '../core/inventory.js';

/**
 * One row per node of what its own `check --json` found: every certificate and CA copy with
 * its NotAfter, the earliest of them, and whether the node is at the goal (every one at least
 * the goal's years away). The same rows make the table, the JSON and the Prometheus text.
 */

export interface NodeCert {
  source: string;
  kind: 'ca' | 'leaf';
  notAfter: string;
  yearsLeft: number;
}

export interface NodeReport {
  name: string;
  role: NodeRole;
  address: string;
  /** reached and checked */
  reachable: boolean;
  /** every certificate and CA copy at least minYears away */
  atGoal: boolean;
  /** the earliest NotAfter on the node */
  earliestNotAfter?: string;
  certificates: NodeCert[];
  /** why the node is not at the goal, or could not be checked */
  problems: string[];
}

/** The subset of `check --json` this reads (src/node/pki/pki-check.ts CheckReport). */
export interface CheckDocument {
  ok: boolean;
  rows: {
    source: string;
    kind: 'ca' | 'leaf';
    notAfter: string;
    yearsLeft: number;
    informational?: string;
  }[];
  problems: string[];
  errors: { file: string; message: string }[];
}

export function isCheckDocument(v: unknown): v is CheckDocument {
  const d = v as CheckDocument;
  return (
    typeof d === 'object' &&
    d !== null &&
    typeof d.ok === 'boolean' &&
    Array.isArray(d.rows) &&
    Array.isArray(d.problems) &&
    d.rows.every((r) => typeof r.source === 'string' && typeof r.notAfter === 'string')
  );
}

export function nodeReportFromCheck(
  node: { name: string; role: NodeRole; address: string },
  doc: CheckDocument,
): NodeReport {
  // shown by check but not counted there (the kubelet's self-signed serving certificate): not
  // counted here either, or its 1 year would be every node's earliest NotAfter
  const certificates = doc.rows
    .filter((r) => !r.informational)
    .map((r) => ({
      source: r.source,
      kind: r.kind,
      notAfter: r.notAfter,
      yearsLeft: r.yearsLeft,
    }));
  const earliest = certificates.map((c) => c.notAfter).sort()[0];
  const problems = [...doc.problems];
  if (certificates.length === 0) problems.push('no certificate found');
  return {
    ...node,
    reachable: true,
    atGoal: doc.ok && certificates.length > 0,
    ...(earliest ? { earliestNotAfter: earliest } : {}),
    certificates,
    problems,
  };
}

export function unreachableReport(
  node: { name: string; role: NodeRole; address: string },
  why: string,
): NodeReport {
  return { ...node, reachable: false, atGoal: false, certificates: [], problems: [why] };
}

/** One line per node, then the node's problems indented. */
export function formatReportTable(nodes: readonly NodeReport[], label = 'now'): string {
  const rows = nodes.map((n) => [
    n.name,
    n.role,
    n.reachable ? (n.atGoal ? 'at goal' : 'NOT at goal') : 'UNREACHABLE',
    String(n.certificates.filter((c) => c.kind === 'ca').length),
    String(n.certificates.filter((c) => c.kind === 'leaf').length),
    n.earliestNotAfter ?? '-',
  ]);
  const header = ['NODE', 'ROLE', 'STATE', 'CA COPIES', 'CERTS', `EARLIEST NOTAFTER (${label})`];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  const out = [line(header), ...rows.map(line)];
  // a CA copy short of the goal is what breaks a node on the day the old CA ends: named first
  const oldCopies = nodes.map((n) => ({
    n,
    old: n.certificates.filter(
      (c) => c.kind === 'ca' && n.problems.some((p) => p.startsWith(`${c.source}: `)),
    ),
  }));
  for (const { n, old } of oldCopies) {
    for (const c of old) out.push(`  ${n.name}: OLD CA COPY ${c.source} (until ${c.notAfter})`);
    for (const p of n.problems) out.push(`  ${n.name}: ${p}`);
  }
  const holders = oldCopies.filter((o) => o.old.length > 0).map((o) => o.n.name);
  if (holders.length > 0)
    out.push(
      `OLD CA COPIES on ${holders.length} node(s): ${holders.join(', ')} (they stop trusting the cluster when that CA ends)`,
    );
  return out.join('\n');
}

/** A label value as the Prometheus text format requires: backslash, quote and newline escaped. */
export function promLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** The report as Prometheus text (exposition format 0.0.4), one series per node and certificate. */
export function formatReportPrometheus(nodes: readonly NodeReport[]): string {
  const out: string[] = [];
  const metric = (name: string, help: string, rows: [string, number][]) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const [labels, value] of rows) out.push(`${name}{${labels}} ${value}`);
  };
  const nl = (n: NodeReport) => `node="${promLabel(n.name)}",role="${n.role}"`;
  metric(
    'kubeadm_forever_fleet_node_reachable',
    'Whether the node was reached over ssh and checked (1) or not (0).',
    nodes.map((n) => [nl(n), n.reachable ? 1 : 0]),
  );
  metric(
    'kubeadm_forever_fleet_node_at_goal',
    'Whether every certificate and CA copy on the node is long-lived (1) or not (0).',
    nodes.map((n) => [nl(n), n.atGoal ? 1 : 0]),
  );
  metric(
    'kubeadm_forever_fleet_node_earliest_not_after_seconds',
    'The earliest NotAfter of any certificate or CA copy on the node, Unix seconds.',
    nodes
      .filter((n) => n.earliestNotAfter)
      .map((n) => [nl(n), Math.floor(Date.parse(n.earliestNotAfter!) / 1000)]),
  );
  metric(
    'kubeadm_forever_fleet_cert_not_after_seconds',
    'NotAfter of each certificate and CA copy on each node, Unix seconds.',
    nodes.flatMap((n) =>
      n.certificates.map(
        (c) =>
          [
            `${nl(n)},source="${promLabel(c.source)}",kind="${c.kind}"`,
            Math.floor(Date.parse(c.notAfter) / 1000),
          ] as [string, number],
      ),
    ),
  );
  return `${out.join('\n')}\n`;
}
