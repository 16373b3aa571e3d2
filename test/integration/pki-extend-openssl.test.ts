import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/env.js';
import {
  opensslNotAfter,
  opensslPubkey,
  opensslVerify,
  snapshot,
  tempDir,
  yearsFromNow,
} from './pki-support.js';

// `ca extend` on CAs made by openssl (not kubeadm): unusual subjects (UTF-8, multi-valued RDN,
// emailAddress as IA5String), a P-384 key in PKCS#8, and leaves whose AKID names the CA serial.

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

const ossl = (args: string[], cwd: string) =>
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });

/** Subject with every attribute's ASN.1 string type, as openssl prints it. */
const typedSubject = (file: string) =>
  execFileSync(
    'openssl',
    ['x509', '-in', file, '-noout', '-subject', '-nameopt', 'multiline,show_type,esc_msb'],
    { encoding: 'utf8' },
  );
const serialOf = (file: string) =>
  execFileSync('openssl', ['x509', '-in', file, '-noout', '-serial'], { encoding: 'utf8' }).trim();

/** Every "Signature Algorithm" openssl prints (the TBS field and the outer one, PSS parameters too). */
const signatureLines = (file: string) =>
  execFileSync('openssl', ['x509', '-in', file, '-noout', '-text'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => /Signature Algorithm|Hash Algorithm|Mask Algorithm|Salt Length/.test(l))
    .map((l) => l.trim());

function openssLeaf(root: string, akid: string) {
  ossl(
    [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'leaf.key',
      '-out',
      'leaf.csr',
      '-subj',
      '/CN=leaf',
    ],
    root,
  );
  fs.writeFileSync(path.join(root, 'ext'), `authorityKeyIdentifier=${akid}\nbasicConstraints=CA:FALSE\n`);
  ossl(
    [
      'x509',
      '-req',
      '-in',
      'leaf.csr',
      '-CA',
      'pki/ca.crt',
      '-CAkey',
      'pki/ca.key',
      '-CAcreateserial',
      '-out',
      'pki/leaf.crt',
      '-days',
      '365',
      '-extfile',
      'ext',
    ],
    root,
  );
}

describe('ca extend on openssl-made CAs', () => {
  it('keeps an unusual subject byte for byte (string types too) with a P-384 PKCS#8 key', () => {
    const root = tempDir('ossl-extend');
    dirs.push(root);
    fs.mkdirSync(path.join(root, 'pki'));
    ossl(
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-384',
        '-nodes',
        '-keyout',
        'pki/ca.key',
        '-out',
        'pki/ca.crt',
        '-days',
        '3650',
        '-utf8',
        '-subj',
        '/C=DE/O=Acme Ümlaut/OU=a+OU=b/CN=kubernetes/emailAddress=ops@example.com',
      ],
      root,
    );
    expect(fs.readFileSync(path.join(root, 'pki/ca.key'), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    openssLeaf(root, 'keyid');
    const ca = path.join(root, 'pki/ca.crt');
    const subjectBefore = typedSubject(ca);
    expect(subjectBefore).toMatch(/UTF8STRING/);
    expect(subjectBefore).toMatch(/IA5STRING/);
    const serialBefore = serialOf(ca);
    const pubBefore = opensslPubkey(ca);
    const sigBefore = signatureLines(ca);

    const r = runCli([
      'ca',
      'extend',
      '--pki-dir',
      path.join(root, 'pki'),
      '--kubeconfig-dir',
      root,
      '--json',
    ]);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).extended[0].serialKept).toBe(false);
    expect(typedSubject(ca)).toBe(subjectBefore);
    expect(opensslPubkey(ca)).toBe(pubBefore);
    expect(serialOf(ca)).not.toBe(serialBefore);
    expect(yearsFromNow(opensslNotAfter(ca))).toBeGreaterThanOrEqual(199.9);
    // openssl signs with SHA-256 by default, whatever the curve: the extended CA too
    expect(signatureLines(ca)).toEqual(sigBefore);
    expect(sigBefore[0]).toBe('Signature Algorithm: ecdsa-with-SHA256');
    const v = opensslVerify(ca, [path.join(root, 'pki/leaf.crt'), ca]);
    expect(v.out).not.toMatch(/error/);
    expect(v.ok).toBe(true);
  }, 60_000);

  it('keeps the serial when a leaf AKID names it, so the leaf still chains', () => {
    const root = tempDir('ossl-akid');
    dirs.push(root);
    fs.mkdirSync(path.join(root, 'pki'));
    ossl(
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        'pki/ca.key',
        '-out',
        'pki/ca.crt',
        '-days',
        '3650',
        '-subj',
        '/CN=kubernetes',
      ],
      root,
    );
    openssLeaf(root, 'keyid,issuer:always');
    const ca = path.join(root, 'pki/ca.crt');
    const leaf = path.join(root, 'pki/leaf.crt');
    expect(execFileSync('openssl', ['x509', '-in', leaf, '-noout', '-text'], { encoding: 'utf8' })).toMatch(
      /Authority Key Identifier:[\s\S]*serial:/,
    );
    const serialBefore = serialOf(ca);

    const r = runCli([
      'ca',
      'extend',
      '--pki-dir',
      path.join(root, 'pki'),
      '--kubeconfig-dir',
      root,
      '--json',
    ]);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).extended[0].serialKept).toBe(true);
    expect(serialOf(ca)).toBe(serialBefore);
    expect(yearsFromNow(opensslNotAfter(ca))).toBeGreaterThanOrEqual(199.9);
    const v = opensslVerify(ca, [leaf]);
    expect(v.out).not.toMatch(/error/);
    expect(v.ok).toBe(true);
  }, 60_000);
});

const keyArgs = (key: string) =>
  key.startsWith('rsa') ? ['-newkey', key] : ['-newkey', 'ec', '-pkeyopt', `ec_paramgen_curve:${key}`];

/** root/pki/ca.{crt,key} made by openssl with `key` and `sign` (digest and -sigopt), and root/pki/leaf.crt signed by it the same way. */
function opensslCaWithLeaf(root: string, key: string, sign: string[], caOnly: string[] = []) {
  fs.mkdirSync(path.join(root, 'pki'));
  ossl(
    [
      'req',
      '-x509',
      ...keyArgs(key),
      '-nodes',
      '-keyout',
      'pki/ca.key',
      '-out',
      'pki/ca.crt',
      '-days',
      '3650',
      '-subj',
      '/CN=kubernetes',
      ...sign,
      ...caOnly,
    ],
    root,
  );
  ossl(
    ['req', ...keyArgs('P-256'), '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=leaf'],
    root,
  );
  fs.writeFileSync(path.join(root, 'ext'), 'authorityKeyIdentifier=keyid\nbasicConstraints=CA:FALSE\n');
  ossl(
    [
      'x509',
      '-req',
      '-in',
      'leaf.csr',
      '-CA',
      'pki/ca.crt',
      '-CAkey',
      'pki/ca.key',
      '-set_serial',
      '7',
      '-out',
      'pki/leaf.crt',
      '-days',
      '365',
      '-extfile',
      'ext',
      ...sign,
    ],
    root,
  );
}

describe('ca extend keeps the signature algorithm of the CA', () => {
  const cases = [
    ['rsa:2048', 'sha256', 'sha256WithRSAEncryption'],
    ['rsa:2048', 'sha384', 'sha384WithRSAEncryption'],
    ['rsa:2048', 'sha512', 'sha512WithRSAEncryption'],
    ['P-256', 'sha256', 'ecdsa-with-SHA256'],
    ['P-256', 'sha384', 'ecdsa-with-SHA384'],
    ['P-256', 'sha512', 'ecdsa-with-SHA512'],
    ['P-384', 'sha256', 'ecdsa-with-SHA256'],
    ['P-384', 'sha384', 'ecdsa-with-SHA384'],
    ['P-384', 'sha512', 'ecdsa-with-SHA512'],
  ] as const;
  it.each(cases)(
    '%s signed with %s stays %s, and the old leaf still verifies',
    (key, digest, name) => {
      const root = tempDir('ossl-sigalg');
      dirs.push(root);
      opensslCaWithLeaf(root, key, [`-${digest}`]);
      const ca = path.join(root, 'pki/ca.crt');
      const before = signatureLines(ca);
      expect(before).toEqual([`Signature Algorithm: ${name}`, `Signature Algorithm: ${name}`]);
      const pubBefore = opensslPubkey(ca);
      const serialBefore = serialOf(ca);

      const r = runCli(['ca', 'extend', '--pki-dir', path.join(root, 'pki'), '--kubeconfig-dir', root]);
      expect(r.status, r.stderr).toBe(0);
      expect(signatureLines(ca)).toEqual(before);
      expect(opensslPubkey(ca)).toBe(pubBefore);
      expect(serialOf(ca)).not.toBe(serialBefore);
      expect(yearsFromNow(opensslNotAfter(ca))).toBeGreaterThanOrEqual(199.9);
      const v = opensslVerify(ca, [path.join(root, 'pki/leaf.crt'), ca]);
      expect(v.out).not.toMatch(/error/);
      expect(v.ok).toBe(true);
    },
    60_000,
  );

  it.each([
    [
      'SHA-224 (no WebCrypto hash)',
      ['-sha224'],
      /is signed with 1\.2\.840\.113549\.1\.1\.14, which ca extend cannot sign with/,
    ],
    [
      'RSA-PSS as openssl encodes it',
      ['-sha256', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:32'],
      /is signed with RSA-PSS with SHA-256 in an encoding ca extend cannot reproduce byte for byte/,
    ],
  ] as const)(
    'an RSA CA signed with %s is refused, nothing changed',
    (_what, sign, message) => {
      const root = tempDir('ossl-sigalg-refused');
      dirs.push(root);
      opensslCaWithLeaf(root, 'rsa:2048', [...sign]);
      const before = snapshot(root);
      const r = runCli(['ca', 'extend', '--pki-dir', path.join(root, 'pki'), '--kubeconfig-dir', root]);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/^error: [^\n]+\nnext: [^\n]+\n$/);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toMatch(/next: create new CAs with `ca init` .*nothing was written/);
      expect(snapshot(root)).toEqual(before);
    },
    60_000,
  );
});

describe('ca extend of a serial-0 CA', () => {
  it('refuses, naming the leaf, when a leaf AKID names serial 0 (a new certificate cannot have serial 0); nothing changed', () => {
    const root = tempDir('ossl-serial0');
    dirs.push(root);
    opensslCaWithLeaf(root, 'rsa:2048', ['-sha256'], ['-set_serial', '0']);
    // the leaf again, now naming the CA serial in its AKID
    fs.writeFileSync(
      path.join(root, 'ext'),
      'authorityKeyIdentifier=keyid,issuer:always\nbasicConstraints=CA:FALSE\n',
    );
    ossl(
      [
        'x509',
        '-req',
        '-in',
        'leaf.csr',
        '-CA',
        'pki/ca.crt',
        '-CAkey',
        'pki/ca.key',
        '-set_serial',
        '8',
        '-out',
        'pki/leaf.crt',
        '-days',
        '365',
        '-extfile',
        'ext',
      ],
      root,
    );
    expect(serialOf(path.join(root, 'pki/ca.crt'))).toBe('serial=00');
    const before = snapshot(root);
    const r = runCli(['ca', 'extend', '--pki-dir', path.join(root, 'pki'), '--kubeconfig-dir', root]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^error: [^\n]+\nnext: [^\n]+\n$/);
    expect(r.stderr).toContain(
      `error: ${root}/pki/ca.crt has serial 0 and ${root}/pki/leaf.crt names that serial in its authority key identifier`,
    );
    expect(r.stderr).toMatch(
      /next: reissue the certificates .* authorityKeyIdentifier=keyid\), then run ca extend again/,
    );
    expect(snapshot(root)).toEqual(before);
  }, 60_000);
});
