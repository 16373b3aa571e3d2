import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { KfError } from '../../src/core/errors.js';
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

// Every YAML form client-go accepts for certificate-authority-data (go-yaml reads block scalars,
// quoting, aliases, merge keys and flow collections alike). Each case is a whole kubeconfig as a
// function of the value's lines: the input has the old CA wrapped over lines as tools write it,
// the expected output the new CA on one line with every other byte the same.
const wrap = (s: string) => s.match(/.{1,64}/g)!;
const tail = [
  'contexts:',
  '- context: {cluster: kubernetes, user: admin}',
  '  name: admin@kubernetes',
  'current-context: admin@kubernetes',
  'kind: Config',
  'users:',
  '- name: admin',
  '  user:',
  '    client-key: keys/admin.key',
  '',
];
const withValue = (value: string) =>
  [
    'apiVersion: v1',
    'clusters:',
    '- cluster:',
    `    certificate-authority-data: ${value}`,
    '    server: https://10.0.0.1:6443 # the API server',
    '  name: kubernetes',
    '# a comment that must survive',
    ...tail,
  ].join('\n');
const indented = (lines: string[], indent: string) => lines.map((l) => `${indent}${l}`).join('\n');

const shapes: { name: string; make: (lines: string[]) => string; clusters?: string[] }[] = [
  { name: 'block literal |', make: (l) => withValue(`|\n${indented(l, '      ')}`) },
  { name: 'block literal |-', make: (l) => withValue(`|-\n${indented(l, '      ')}`) },
  {
    name: 'block literal |+ with a blank line kept',
    make: (l) => withValue(`|+\n${indented(l, '      ')}\n`),
  },
  {
    name: 'block literal with a header comment',
    make: (l) => withValue(`| # the cluster CA\n${indented(l, '      ')}`),
  },
  {
    name: 'block literal with an indentation indicator',
    make: (l) => withValue(`|2\n${indented(l, '      ')}`),
  },
  { name: 'block folded >', make: (l) => withValue(`>\n${indented(l, '      ')}`) },
  { name: 'block folded >-', make: (l) => withValue(`>-\n${indented(l, '      ')}`) },
  { name: 'plain folded over lines', make: (l) => withValue(indented(l, '      ').trimStart()) },
  {
    name: 'double quoted folded over lines with escaped breaks',
    make: (l) => withValue(`"${l.join('\\\n      ')}"`),
  },
  { name: 'single quoted folded over lines', make: (l) => withValue(`'${l.join('\n      ')}'`) },
  {
    name: 'tagged !!binary',
    make: (l) => withValue(`!!binary |\n${indented(l, '      ')}`),
  },
  {
    name: 'flow mapping',
    make: (l) =>
      [
        'apiVersion: v1',
        'clusters:',
        `- {name: kubernetes, cluster: {server: "https://10.0.0.1:6443", certificate-authority-data: ${l.join('\n    ')}}}`,
        ...tail,
      ].join('\n'),
  },
  {
    name: 'anchored in one cluster, aliased in another',
    clusters: ['kubernetes', 'again'],
    make: (l) =>
      [
        'apiVersion: v1',
        'clusters:',
        '- cluster:',
        `    certificate-authority-data: &ca |`,
        indented(l, '      '),
        '    server: https://10.0.0.1:6443',
        '  name: kubernetes',
        '- cluster:',
        '    certificate-authority-data: *ca',
        '    server: https://10.0.0.2:6443',
        '  name: again',
        ...tail,
      ].join('\n'),
  },
  {
    name: 'anchored outside the clusters, aliased in the cluster',
    make: (l) =>
      [
        'apiVersion: v1',
        `x-ca: &ca ${l.join('\n  ')}`,
        'clusters:',
        '- cluster:',
        '    certificate-authority-data: *ca',
        '    server: https://10.0.0.1:6443',
        '  name: kubernetes',
        ...tail,
      ].join('\n'),
  },
  {
    name: 'merged in with a merge key',
    make: (l) =>
      [
        'apiVersion: v1',
        'x-base: &base',
        `  certificate-authority-data: >-`,
        indented(l, '    '),
        '  insecure-skip-tls-verify: false',
        'clusters:',
        '- cluster:',
        '    <<: *base',
        '    server: https://10.0.0.1:6443',
        '  name: kubernetes',
        ...tail,
      ].join('\n'),
  },
  {
    name: 'an aliased cluster entry',
    make: (l) =>
      [
        'apiVersion: v1',
        'x-cluster: &c',
        `  certificate-authority-data: ${l.join('\n    ')}`,
        '  server: https://10.0.0.1:6443',
        'clusters:',
        '- cluster: *c',
        '  name: kubernetes',
        ...tail,
      ].join('\n'),
  },
  {
    name: 'CRLF line ends',
    make: (l) => withValue(`|\n${indented(l, '      ')}`).replace(/\n/g, '\r\n'),
  },
  {
    name: 'block literal as the last line, no final newline',
    make: (l) =>
      `apiVersion: v1\nclusters:\n- name: kubernetes\n  cluster:\n    certificate-authority-data: |\n${indented(l, '      ')}`,
  },
];

/** The CA data of each cluster as client-go would read it: the value with line breaks dropped. */
function caDataByCluster(text: string): Record<string, string> {
  const js = parseDocument(text, { merge: true }).toJS() as {
    clusters: { name: string; cluster: Record<string, unknown> }[];
  };
  const out: Record<string, string> = {};
  for (const c of js.clusters) {
    const v = c.cluster['certificate-authority-data'];
    out[c.name] =
      Buffer.isBuffer(v) || v instanceof Uint8Array
        ? Buffer.from(v).toString()
        : Buffer.from(String(v).replace(/\n/g, ''), 'base64').toString();
  }
  return out;
}

describe('replaceCaData over every YAML form of the CA data', () => {
  it.each(shapes)('$name: only the value changes, to the new CA on one line', ({ make, clusters }) => {
    const text = make(wrap(b64(oldPem)));
    expect(Object.values(caDataByCluster(text))).toContain(oldPem); // the fixture is what it claims
    const r = replaceCaData(text, 'admin.conf', [replacement]);
    expect(r.changes.map((c) => c.cluster)).toEqual(clusters ?? ['kubernetes']);
    expect(r.text).toBe(make([b64(newPem)]));
    for (const data of Object.values(caDataByCluster(r.text))) expect(data).toBe(newPem);
    // the rest of the document is unchanged (the data set back, the two parse to the same thing)
    const before = parseDocument(text, { merge: true }).toJS() as Record<string, unknown>;
    const after = parseDocument(r.text, { merge: true }).toJS() as Record<string, unknown>;
    expect({
      ...after,
      clusters: undefined,
      'x-ca': undefined,
      'x-base': undefined,
      'x-cluster': undefined,
    }).toEqual({
      ...before,
      clusters: undefined,
      'x-ca': undefined,
      'x-base': undefined,
      'x-cluster': undefined,
    });
  });

  it('refuses, naming the file and the cluster, a block value it cannot rewrite exactly (content indented past its indicator)', () => {
    // |2 under a 4-space key fixes the indentation at 6: the 8-space lines carry two spaces of value
    const text = withValue(`|2\n${indented(wrap(b64(oldPem)), '        ')}`);
    expect(caDataByCluster(text).kubernetes).toBe(oldPem);
    let err: unknown;
    try {
      replaceCaData(text, '/etc/kubernetes/admin.conf', [replacement]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KfError);
    const e = err as KfError;
    expect(e.message).toMatch(
      /^\/etc\/kubernetes\/admin\.conf: the certificate-authority-data of cluster kubernetes cannot be rewritten in place/,
    );
    expect(e.next).toMatch(/nothing was written/);
  });

  it('a cluster whose CA data is not a string (a mapping) is reported unmatched, not skipped silently', () => {
    const text = withValue('{not: data}');
    const r = replaceCaData(text, 'admin.conf', [replacement]);
    expect(r.unmatched).toEqual(['kubernetes']);
    expect(r.text).toBe(text);
  });
});

describe('kubeconfigCertRefs over other YAML forms', () => {
  it('sees CA data merged in with a merge key and a !!binary value, as client-go does', () => {
    const text = [
      'x-base: &base',
      `  certificate-authority-data: ${b64(oldPem)}`,
      'clusters:',
      '- name: merged',
      '  cluster:',
      '    <<: *base',
      '    server: https://10.0.0.1:6443',
      '- name: binary',
      '  cluster:',
      `    certificate-authority-data: !!binary ${b64(otherPem)}`,
      '',
    ].join('\n');
    const refs = kubeconfigCertRefs(text, '/etc/kubernetes/admin.conf');
    expect(refs.map((r) => [r.entry, r.data])).toEqual([
      ['cluster merged', b64(oldPem)],
      ['cluster binary', b64(otherPem)],
    ]);
  });
});
