import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { createCa } from '../../src/node/pki/certs.js';
import { generateKey } from '../../src/node/pki/keys.js';
import { kubeconfigCertRefs, replaceCaData, type CaReplacement } from '../../src/node/pki/kubeconfig.js';

// Kubeconfig edits must leave every byte but the CA data as it was: fixtures are written in the
// style client-go emits (unindented sequences, plain scalars), plus comments and quoting.

let oldPem: string;
let midPem: string;
let newPem: string;
let otherPem: string;
let replacement: CaReplacement;

beforeAll(async () => {
  const key = await generateKey('ecdsa-p256');
  oldPem = (await createCa('kubernetes', key, 24 * 365 * 10)).pem;
  midPem = (await createCa('kubernetes', key, 24 * 365 * 50)).pem;
  newPem = (await createCa('kubernetes', key, 24 * 365 * 200)).pem;
  otherPem = (await createCa('someone-else', await generateKey('ecdsa-p256'), 24)).pem;
  replacement = {
    oldDer: Buffer.from(new X509Certificate(oldPem).raw),
    newPem,
    newCert: new X509Certificate(newPem),
    caFile: 'pki/ca.crt',
  };
});

const notAfter = (pem: string) => new Date(new X509Certificate(pem).validTo);

const b64 = (s: string) => Buffer.from(s).toString('base64');

function kubeconfig(caOld: string, caOther: string): string {
  return [
    'apiVersion: v1',
    'clusters:',
    '- cluster:',
    `    certificate-authority-data: ${b64(caOld)}`,
    '    server: https://10.0.0.1:6443',
    '  name: kubernetes',
    '# a comment that must survive',
    '- cluster:',
    `    certificate-authority-data: "${b64(caOther)}"`,
    '    server: https://elsewhere:6443',
    '  name: other',
    '- cluster:',
    `    certificate-authority-data: '${b64(caOld)}'`,
    '    server: https://10.0.0.2:6443',
    '  name: quoted',
    'contexts:',
    '- context:',
    '    cluster: kubernetes',
    '    user: kubernetes-admin',
    '  name: kubernetes-admin@kubernetes',
    'current-context: kubernetes-admin@kubernetes',
    'kind: Config',
    'preferences: {}',
    'users:',
    '- name: kubernetes-admin',
    '  user:',
    `    client-certificate-data: ${'QUJD'.repeat(400)}`,
    '    client-key: keys/admin.key',
    '- name: kubelet',
    '  user:',
    '    client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem',
    '    client-key: /var/lib/kubelet/pki/kubelet-client-current.pem',
    '',
  ].join('\n');
}

describe('replaceCaData', () => {
  it('replaces only the CA data that matches the old CA, keeping quoting and every other byte', () => {
    const text = kubeconfig(oldPem, otherPem);
    const r = replaceCaData(text, 'admin.conf', [replacement]);
    expect(r.changes).toEqual([
      { cluster: 'kubernetes', caFile: 'pki/ca.crt', replacedNotAfter: notAfter(oldPem) },
      { cluster: 'quoted', caFile: 'pki/ca.crt', replacedNotAfter: notAfter(oldPem) },
    ]);
    expect(r.unmatched).toEqual(['other']);
    const expected = kubeconfig(newPem, otherPem);
    expect(r.text).toBe(expected);
    const clusters = (parseDocument(r.text).toJS() as { clusters: { cluster: Record<string, string> }[] })
      .clusters;
    expect(Buffer.from(clusters[0]!.cluster['certificate-authority-data']!, 'base64').toString()).toBe(
      newPem,
    );
    expect(Buffer.from(clusters[1]!.cluster['certificate-authority-data']!, 'base64').toString()).toBe(
      otherPem,
    );
  });

  it('changes nothing when no CA matches', () => {
    const text = kubeconfig(otherPem, otherPem);
    const r = replaceCaData(text, 'x.conf', [replacement]);
    expect(r.changes).toEqual([]);
    expect(r.text).toBe(text);
  });

  it('keeps the other certificates of a CA bundle in the data, in order, replacing only the extended CA', () => {
    const text = kubeconfig(`${otherPem}${oldPem}`, otherPem);
    const r = replaceCaData(text, 'admin.conf', [replacement]);
    expect(r.changes.map((c) => c.cluster)).toEqual(['kubernetes', 'quoted']);
    expect(r.text).toBe(kubeconfig(`${otherPem}${newPem}`, otherPem));
  });

  it('recognises an older certificate of the same CA (an interrupted run left it behind) and reports its NotAfter', () => {
    const text = kubeconfig(midPem, otherPem);
    const r = replaceCaData(text, 'admin.conf', [replacement]);
    expect(r.changes).toEqual([
      { cluster: 'kubernetes', caFile: 'pki/ca.crt', replacedNotAfter: notAfter(midPem) },
      { cluster: 'quoted', caFile: 'pki/ca.crt', replacedNotAfter: notAfter(midPem) },
    ]);
    expect(r.text).toBe(kubeconfig(newPem, otherPem));
  });

  it('leaves data that already holds the new CA alone, and does not call it unmatched', () => {
    const text = kubeconfig(newPem, otherPem);
    const r = replaceCaData(text, 'admin.conf', [replacement]);
    expect(r.changes).toEqual([]);
    expect(r.unmatched).toEqual(['other']);
    expect(r.text).toBe(text);
  });

  it('rejects YAML that does not parse, naming the file', () => {
    expect(() => replaceCaData('clusters: [\n', '/etc/kubernetes/admin.conf', [])).toThrow(
      /admin\.conf is not valid YAML/,
    );
  });
});

describe('kubeconfigCertRefs', () => {
  it('lists cluster CAs and user certificates, embedded or by file (relative paths resolved)', () => {
    const refs = kubeconfigCertRefs(kubeconfig(oldPem, otherPem), '/etc/kubernetes/admin.conf');
    expect(refs.map((r) => [r.entry, r.kind, r.file, r.keyFile])).toEqual([
      ['cluster kubernetes', 'ca', undefined, undefined],
      ['cluster other', 'ca', undefined, undefined],
      ['cluster quoted', 'ca', undefined, undefined],
      ['user kubernetes-admin', 'client', undefined, '/etc/kubernetes/keys/admin.key'],
      [
        'user kubelet',
        'client',
        '/var/lib/kubelet/pki/kubelet-client-current.pem',
        '/var/lib/kubelet/pki/kubelet-client-current.pem',
      ],
    ]);
    expect(refs[0]!.data).toBe(b64(oldPem));
  });
});
