import { describe, expect, it } from 'vitest';
import { formatReportTable, nodeReportFromCheck } from '../../src/fleet/report.js';

const doc = (
  rows: {
    source: string;
    kind: 'ca' | 'leaf';
    notAfter: string;
    yearsLeft: number;
    informational?: string;
  }[],
  problems: string[],
) => ({
  ok: problems.length === 0,
  rows,
  problems,
  errors: [],
});

describe('formatReportTable', () => {
  it('names every CA copy short of the goal, per node and in one line at the end', () => {
    const w1 = nodeReportFromCheck(
      { name: 'w1', role: 'worker', address: '192.0.2.21' },
      doc(
        [
          {
            source: '/etc/kubernetes/pki/ca.crt',
            kind: 'ca',
            notAfter: '2026-12-07T02:16:09.000Z',
            yearsLeft: 0,
          },
          {
            source: '/etc/kubernetes/kubelet.conf: cluster kubernetes',
            kind: 'ca',
            notAfter: '2226-12-07T02:16:09.000Z',
            yearsLeft: 200,
          },
          {
            source: '/var/lib/kubelet/pki/kubelet-client-current.pem',
            kind: 'leaf',
            notAfter: '2225-12-07T02:16:09.000Z',
            yearsLeft: 199,
          },
        ],
        ['/etc/kubernetes/pki/ca.crt: 0 years left, under --min-years 100'],
      ),
    );
    const w2 = nodeReportFromCheck(
      { name: 'w2', role: 'worker', address: '192.0.2.22' },
      doc(
        [
          {
            source: '/etc/kubernetes/pki/ca.crt',
            kind: 'ca',
            notAfter: '2226-12-07T02:16:09.000Z',
            yearsLeft: 200,
          },
        ],
        [],
      ),
    );
    const text = formatReportTable([w1, w2]);
    const lines = text.split('\n');
    expect(lines).toContain('  w1: OLD CA COPY /etc/kubernetes/pki/ca.crt (until 2026-12-07T02:16:09.000Z)');
    expect(text).not.toMatch(/OLD CA COPY \/etc\/kubernetes\/kubelet\.conf/);
    expect(text).not.toMatch(/w2: OLD/);
    expect(lines.at(-1)).toBe(
      'OLD CA COPIES on 1 node(s): w1 (they stop trusting the cluster when that CA ends)',
    );
  });

  it('adds no such line when every CA copy is at the goal, even with a short leaf', () => {
    const n = nodeReportFromCheck(
      { name: 'cp1', role: 'control-plane', address: '192.0.2.11' },
      doc(
        [
          {
            source: '/etc/kubernetes/pki/ca.crt',
            kind: 'ca',
            notAfter: '2226-12-07T00:00:00.000Z',
            yearsLeft: 200,
          },
          {
            source: '/etc/kubernetes/pki/apiserver.crt',
            kind: 'leaf',
            notAfter: '2027-12-07T00:00:00.000Z',
            yearsLeft: 1,
          },
        ],
        ['/etc/kubernetes/pki/apiserver.crt: 1 years left, under --min-years 100'],
      ),
    );
    expect(formatReportTable([n])).not.toMatch(/OLD CA/);
  });

  it("leaves out what check shows but does not count: the kubelet's serving certificate is no node's earliest", () => {
    const n = nodeReportFromCheck(
      { name: 'w1', role: 'worker', address: '192.0.2.21' },
      doc(
        [
          {
            source: '/etc/kubernetes/pki/ca.crt',
            kind: 'ca',
            notAfter: '2226-12-07T00:00:00.000Z',
            yearsLeft: 200,
          },
          {
            source: '/var/lib/kubelet/pki/kubelet.crt',
            kind: 'leaf',
            notAfter: '2027-12-07T00:00:00.000Z',
            yearsLeft: 1,
            informational: "kubelet's self-signed serving certificate: 1 year, not configurable; not counted",
          },
        ],
        [],
      ),
    );
    expect(n.earliestNotAfter).toBe('2226-12-07T00:00:00.000Z');
    expect(n.certificates.map((c) => c.source)).toEqual(['/etc/kubernetes/pki/ca.crt']);
    expect(n.atGoal).toBe(true);
  });
});
