import { describe, expect, it } from 'vitest';
import { formatCheckReport, type CheckReport, type CheckRow } from '../../src/node/pki/pki-check.js';

const row = (source: string, notAfter: string, over: Partial<CheckRow> = {}): CheckRow => ({
  source,
  file: source.split(':')[0]!,
  serialNumber: '01',
  notBefore: '2016-12-07T00:00:00.000Z',
  subject: 'CN=kubernetes',
  issuer: 'CN=kubernetes',
  notAfter,
  yearsLeft: 1,
  kind: 'ca',
  keyMatches: null,
  chainsTo: 'self',
  problems: [],
  ...over,
});

const report = (rows: CheckRow[]): CheckReport => ({
  ok: true,
  minYears: 0,
  checkedAt: '2026-12-07T00:00:00.000Z',
  rows,
  errors: [],
  missing: [],
  problems: [],
});

describe('check: a CA copy older than another copy of the same CA on the node', () => {
  it('is named on its own line, even when nothing has expired yet', () => {
    const text = formatCheckReport(
      report([
        row('/etc/kubernetes/pki/ca.crt', '2226-12-07T00:00:00.000Z'),
        row('/etc/kubernetes/kubelet.conf: cluster kubernetes', '2026-12-08T00:00:00.000Z'),
        row('/etc/kubernetes/pki/front-proxy-ca.crt', '2026-12-08T00:00:00.000Z', {
          subject: 'CN=front-proxy-ca',
          issuer: 'CN=front-proxy-ca',
        }),
      ]),
    );
    const old = text.split('\n').filter((l) => l.startsWith('OLD CA COPY'));
    expect(old).toEqual([
      'OLD CA COPY: /etc/kubernetes/kubelet.conf: cluster kubernetes ends 2026-12-08T00:00:00.000Z; another copy of kubernetes here ends 2226-12-07T00:00:00.000Z',
    ]);
  });

  it('is not claimed when every copy of each CA ends at the same time', () => {
    const text = formatCheckReport(
      report([
        row('/etc/kubernetes/pki/ca.crt', '2226-12-07T00:00:00.000Z'),
        row('/etc/kubernetes/kubelet.conf: cluster kubernetes', '2226-12-07T00:00:00.000Z'),
      ]),
    );
    expect(text).not.toMatch(/OLD CA COPY/);
  });
});
