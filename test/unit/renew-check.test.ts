import { describe, expect, it } from 'vitest';
import type { CheckReport, CheckRow } from '../../src/node/pki/pki-check.js';
import { judgeRenewal, renewedRows } from '../../src/node/renew/post-renew-check.js';
import { nodeLayout } from '../../src/node/renew/node.js';

const layout = nodeLayout('/etc/kubernetes', '/var/lib/kubelet/pki');
const leaf = { hours: 199 * 8760, text: '199y' };
const row = (source: string, yearsLeft: number, extra: Partial<CheckRow> = {}): CheckRow => ({
  source,
  file: source,
  serialNumber: '01',
  notBefore: '2025-01-01T00:00:00.000Z',
  subject: 'CN=x',
  issuer: 'CN=kubernetes',
  notAfter: '2225-01-01T00:00:00.000Z',
  yearsLeft,
  kind: 'leaf',
  keyMatches: true,
  chainsTo: '/etc/kubernetes/pki/ca.crt',
  problems: [],
  ...extra,
});
const report = (rows: CheckRow[], problems: string[] = []): CheckReport => ({
  ok: problems.length === 0,
  minYears: 0,
  checkedAt: '2026-11-28T00:00:00.000Z',
  rows,
  errors: [],
  missing: [],
  problems,
});

describe('judging a renewal from the check report', () => {
  const rows = [
    row('/etc/kubernetes/pki/apiserver.crt', 198.99),
    row('/etc/kubernetes/pki/etcd/peer.crt', 198.99),
    row('/etc/kubernetes/admin.conf: user kubernetes-admin', 198.99),
    row('/etc/kubernetes/scheduler.conf: user system:kube-scheduler', 198.99),
    row('/etc/kubernetes/pki/ca.crt', 9.99, { kind: 'ca', chainsTo: 'self' }),
    row(
      '/etc/kubernetes/kubelet.conf: user system:node:cp-1 -> /var/lib/kubelet/pki/kubelet-client-current.pem',
      0.9,
    ),
    row('/var/lib/kubelet/pki/kubelet.crt', 0.9, { informational: 'serving' }),
  ];

  it('counts only what certs renew renews: pki leaves and the client certs of admin, controller-manager and scheduler', () => {
    expect(renewedRows(report(rows), layout).map((r) => r.source)).toEqual([
      '/etc/kubernetes/pki/apiserver.crt',
      '/etc/kubernetes/pki/etcd/peer.crt',
      '/etc/kubernetes/admin.conf: user kubernetes-admin',
      '/etc/kubernetes/scheduler.conf: user system:kube-scheduler',
    ]);
  });

  it('passes when every renewed certificate has the asked lifetime', () => {
    const r = judgeRenewal(report(rows), layout, leaf);
    expect(r.ok).toBe(true);
    expect(r.summary).toBe('4 renewed certificates, the shortest has 198.99 years left (asked 199y)');
  });

  it('fails on a 1-year renewal (a stock kubeadm, or 1.31+ configuration) and names the cause', () => {
    const short = rows.map((r) => (r.source.endsWith('apiserver.crt') ? { ...r, yearsLeft: 0.99 } : r));
    const r = judgeRenewal(report(short), layout, leaf);
    expect(r.ok).toBe(false);
    expect(r.summary).toMatch(
      /^pki\/apiserver\.crt lasts 0\.99 years, not 199y: is --kubeadm the custom kubeadm/,
    );
  });

  it('fails on a renewed certificate with a problem, and keeps other problems as warnings', () => {
    const broken = rows.map((r) =>
      r.source.endsWith('peer.crt') ? { ...r, problems: ['does not chain to any CA found'] } : r,
    );
    const problems = [
      '/etc/kubernetes/pki/etcd/peer.crt: does not chain to any CA found',
      '/etc/kubernetes/pki/old.crt: expired',
    ];
    const r = judgeRenewal(report(broken, problems), layout, leaf);
    expect(r.ok).toBe(false);
    expect(r.summary).toMatch(/^pki\/etcd\/peer\.crt: does not chain to any CA found/);
    expect(r.otherProblems).toEqual(['/etc/kubernetes/pki/old.crt: expired']);
  });

  it('fails when nothing renewed was found', () => {
    expect(judgeRenewal(report([]), layout, leaf)).toMatchObject({
      ok: false,
      summary: 'no renewed certificates found',
    });
  });
});
