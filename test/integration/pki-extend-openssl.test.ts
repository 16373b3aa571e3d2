import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/env.js';
import { opensslNotAfter, opensslPubkey, opensslVerify, tempDir, yearsFromNow } from './pki-support.js';

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
    expect(execFileSync('openssl', ['x509', '-in', ca, '-noout', '-text'], { encoding: 'utf8' })).toMatch(
      /ecdsa-with-SHA384/,
    );
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
