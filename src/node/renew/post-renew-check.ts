import path from 'node:path';
import { HOURS_PER_YEAR } from '../../core/validity.js';
import { checkPki, formatCheckReport, type CheckReport, type CheckRow } from '../pki/pki-check.js';
import { renewedKubeconfigs, type NodeLayout } from './node.js';

/** The result of checking a node's certificates after a renewal. */
export interface NodeCheck {
  ok: boolean;
  summary: string;
  /** the `check` table, for people */
  table: string;
  /** problems outside what renew renewed (e.g. a short CA): shown, not failed on */
  otherProblems: string[];
  report: CheckReport;
}

export type NodeChecker = (layout: NodeLayout, leaf: { hours: number; text: string }) => Promise<NodeCheck>;

/** kubeadm sets NotAfter = now + validity; allow a few days for clocks and the time renew takes. */
const slackYears = 0.01;

/** The rows `certs renew all` renewed: leaf certificates under pki/ and the client certificates of its kubeconfigs. */
export function renewedRows(report: CheckReport, layout: NodeLayout): CheckRow[] {
  const confs = renewedKubeconfigs.map((c) => `${path.join(layout.kubernetesDir, c)}: user `);
  return report.rows.filter(
    (r) =>
      r.kind === 'leaf' &&
      !r.informational &&
      (r.source.startsWith(layout.pkiDir + path.sep) || confs.some((c) => r.source.startsWith(c))),
  );
}

/** Pure: did the renewal give every renewed certificate the asked lifetime, valid and chained? */
export function judgeRenewal(
  report: CheckReport,
  layout: NodeLayout,
  leaf: { hours: number; text: string },
): NodeCheck {
  const expected = leaf.hours / HOURS_PER_YEAR;
  const renewed = renewedRows(report, layout);
  const rel = (s: string) => s.split(layout.kubernetesDir + path.sep).join('');
  const failures = [
    ...renewed
      .filter((r) => r.yearsLeft < expected - slackYears)
      .map((r) => `${rel(r.source)} lasts ${r.yearsLeft} years, not ${leaf.text}`),
    ...renewed.flatMap((r) => r.problems.map((p) => `${rel(r.source)}: ${p}`)),
  ];
  const renewedSources = new Set(renewed.map((r) => r.source));
  const otherProblems = report.problems.filter(
    (p) => ![...renewedSources].some((s) => p.startsWith(`${s}: `)),
  );
  const shortest = renewed.reduce((m, r) => Math.min(m, r.yearsLeft), Infinity);
  let summary: string;
  if (renewed.length === 0) summary = 'no renewed certificates found';
  else if (failures.length === 0)
    summary = `${renewed.length} renewed certificates, the shortest has ${shortest} years left (asked ${leaf.text})`;
  else {
    summary =
      `${failures[0]}${failures.length > 1 ? ` (and ${failures.length - 1} more)` : ''}: ` +
      'is --kubeadm the custom kubeadm for this validity? (1.31+: the kubeadm-config lifetimes win)';
  }
  return {
    ok: renewed.length > 0 && failures.length === 0,
    summary,
    table: formatCheckReport(report, layout.kubernetesDir),
    otherProblems,
    report,
  };
}

/** The one seam between renew and the PKI `check`. */
export const checkNode: NodeChecker = async (layout, leaf) =>
  judgeRenewal(
    checkPki({
      pkiDir: layout.pkiDir,
      kubeconfigDir: layout.kubernetesDir,
      kubeletDir: layout.kubeletPkiDir,
    }),
    layout,
    leaf,
  );
