import { describe, expect, it } from 'vitest';
import type { CheckReport, CheckRow } from '../../src/node/pki/pki-check.js';
import { toKubeadmExpirationInfo } from '../../src/node/pki/check-report-kubeadm.js';
import { escapeLabelValue, formatPrometheus } from '../../src/node/pki/check-report-prometheus.js';

// The check formatters on hand-made reports: escaping, collisions, kubeadm's names and rules.

const checkedAt = '2026-12-01T00:00:00.000Z';

function row(over: Partial<CheckRow> & Pick<CheckRow, 'file'>): CheckRow {
  return {
    source: over.file,
    serialNumber: '0A',
    notBefore: '2026-01-01T00:00:00.000Z',
    subject: 'CN=kubernetes',
    issuer: 'CN=kubernetes',
    notAfter: '2226-01-01T00:00:00.000Z',
    yearsLeft: 199,
    kind: 'ca',
    keyMatches: true,
    chainsTo: 'self',
    problems: [],
    ...over,
  };
}

function report(rows: CheckRow[], errors: CheckReport['errors'] = []): CheckReport {
  return {
    ok: errors.length === 0,
    minYears: 0,
    checkedAt,
    rows,
    errors,
    missing: [],
    problems: errors.map((e) => e.file),
  };
}

describe('escapeLabelValue', () => {
  it('escapes backslash, double quote and line feed as the format does, other controls as visible text', () => {
    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
    // ESC, tab, DEL, a C1 CSI and a direction mark: the value holds "\x1b" etc. as text
    expect(escapeLabelValue('e\x1b[31mf\tg\x7fh\x9bi\u202ej')).toBe(
      'e\\\\x1b[31mf\\\\tg\\\\x7fh\\\\x9bi\\\\u202ej',
    );
  });
});

describe('formatPrometheus', () => {
  it('splits subjects into enix-style fields, joins repeated ones and writes the serial in decimal', () => {
    const text = formatPrometheus(
      report([
        row({
          file: '/p/admin.crt',
          kind: 'leaf',
          subject: 'O=system:masters, O=extra, CN=kubernetes-admin',
          serialNumber: 'FF',
          chainsTo: '/p/ca.crt',
        }),
      ]),
    );
    expect(text).toMatch(
      /^x509_cert_not_after\{filename="admin\.crt",filepath="\/p\/admin\.crt",embedded_kind="",embedded_key="",serial_number="255",.*subject_O="system:masters,extra",subject_OU="",subject_CN="kubernetes-admin",.*issuer_CN="kubernetes"\} 8078572800$/m,
    );
    expect(text).toMatch(/^x509_cert_expires_in_seconds\{.*\} 6282489600$/m);
    expect(text.endsWith('\n')).toBe(true);
  });

  it('gives a second series with the same labels a discriminator (node_exporter drops a file with duplicates)', () => {
    const text = formatPrometheus(report([row({ file: '/p/ca.crt' }), row({ file: '/p/ca.crt' })]));
    const lines = text.split('\n').filter((l) => l.startsWith('x509_cert_not_after{'));
    expect(lines).toHaveLength(2);
    expect(lines[0]).not.toContain('discriminator');
    expect(lines[1]).toContain(',discriminator="1"}');
  });

  it('counts read errors and names each unreadable file; no key means no key_match series', () => {
    const text = formatPrometheus(
      report([row({ file: '/p/x.crt', keyMatches: null })], [{ file: '/p/broken.crt', message: 'damaged' }]),
    );
    expect(text).toContain('\nx509_read_errors 1\n');
    expect(text).toContain('\nx509_cert_error{filepath="/p/broken.crt",filename="broken.crt"} 1\n');
    expect(text).not.toContain('kubeadm_forever_cert_key_match');
    expect(text).toContain('\nkubeadm_forever_check_ok{min_years="0"} 0\n');
    expect(text).toContain('\nkubeadm_forever_check_timestamp_seconds 1796083200\n');
  });

  it('marks expired certificates', () => {
    const text = formatPrometheus(
      report([row({ file: '/p/old.crt', notAfter: '2025-01-01T00:00:00.000Z' })]),
    );
    expect(text).toMatch(/^x509_cert_expired\{.*\} 1$/m);
    expect(text).toMatch(/^x509_cert_expires_in_seconds\{.*\} -60393600$/m);
  });
});

describe('toKubeadmExpirationInfo', () => {
  const layout = { pkiDir: '/etc/kubernetes/pki', kubeconfigDir: '/etc/kubernetes' };

  it('lists kubeadm names sorted, missing ones marked, and leaves etcd out when there is no local etcd', () => {
    const doc = toKubeadmExpirationInfo(report([row({ file: '/etc/kubernetes/pki/ca.crt' })]), layout);
    expect(doc.kind).toBe('CertificateExpirationInfo');
    expect(doc.apiVersion).toBe('output.kubeadm.k8s.io/v1alpha3');
    expect(doc.certificateAuthorities.map((c) => c.name)).toEqual(['ca', 'front-proxy-ca']);
    expect(doc.certificates.map((c) => c.name)).toEqual([
      'admin.conf',
      'apiserver',
      'apiserver-kubelet-client',
      'controller-manager.conf',
      'front-proxy-client',
      'scheduler.conf',
    ]);
    expect(doc.certificateAuthorities[0]).toEqual({
      name: 'ca',
      expirationDate: '2226-01-01T00:00:00Z',
      residualTime: 6282489600,
      externallyManaged: false,
      missing: false,
    });
    expect(doc.certificateAuthorities[1]).toEqual({
      name: 'front-proxy-ca',
      expirationDate: null,
      residualTime: 0,
      externallyManaged: false,
      missing: true,
    });
  });

  it('reads kubeconfig users, treats a CA without its key as external, and lists super-admin.conf only when present', () => {
    const rows = [
      row({ file: '/etc/kubernetes/pki/ca.crt', keyMatches: null }),
      row({ file: '/etc/kubernetes/pki/etcd/ca.crt' }),
      row({
        file: '/etc/kubernetes/admin.conf',
        embedded: { kind: 'cluster', name: 'kubernetes' },
        notAfter: '2030-01-01T00:00:00.000Z',
      }),
      row({
        file: '/etc/kubernetes/admin.conf',
        embedded: { kind: 'user', name: 'kubernetes-admin' },
        kind: 'leaf',
        notAfter: '2225-06-01T00:00:00.000Z',
      }),
      row({
        file: '/etc/kubernetes/super-admin.conf',
        embedded: { kind: 'user', name: 'kubernetes-super-admin' },
        kind: 'leaf',
      }),
    ];
    const doc = toKubeadmExpirationInfo(report(rows), layout);
    const admin = doc.certificates.find((c) => c.name === 'admin.conf')!;
    expect(admin).toEqual({
      name: 'admin.conf',
      expirationDate: '2225-06-01T00:00:00Z',
      residualTime: expect.any(Number),
      externallyManaged: true,
      caName: 'ca',
      missing: false,
    });
    expect(doc.certificates.map((c) => c.name)).toContain('etcd-server');
    expect(doc.certificates.at(-1)!.name).toBe('super-admin.conf');
    expect(doc.certificateAuthorities.find((c) => c.name === 'ca')!.externallyManaged).toBe(true);
    expect(doc.certificates.find((c) => c.name === 'etcd-server')).toMatchObject({
      externallyManaged: false,
      caName: 'etcd-ca',
      missing: true,
    });
  });
});
