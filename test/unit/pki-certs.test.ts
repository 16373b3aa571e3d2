import crypto, { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KfError } from '../../src/core/errors.js';
import {
  createCa,
  createLeaf,
  extendCa,
  isIssuedBy,
  loadCaPair,
  parseCertificatesPem,
  randomSerialHex,
  type CaPair,
} from '../../src/node/pki/certs.js';
import { decodeOid, DerError, equalBytes, readTlv, tbsParts } from '../../src/node/pki/der.js';
import { generateKey, loadPrivateKey, privateKeyPem } from '../../src/node/pki/keys.js';
import { kubeletCertFileName, validateNodeName } from '../../src/node/pki/kubelet.js';

// In-memory certificate building and reading; openssl checks of the written files are in
// test/integration/pki-*.test.ts.

const YEAR_H = 24 * 365;

async function caPair(type: 'rsa-2048' | 'ecdsa-p256', cn = 'kubernetes', years = 10): Promise<CaPair> {
  const key = await generateKey(type);
  const ca = await createCa(cn, key, years * YEAR_H);
  return loadCaPair('ca.crt', ca.pem, 'ca.key', privateKeyPem(key.privateKey));
}

describe('der', () => {
  it('decodes OIDs', () => {
    expect(decodeOid(Buffer.from('551d0e', 'hex'))).toBe('2.5.29.14');
    expect(decodeOid(Buffer.from('2a864886f70d01010b', 'hex'))).toBe('1.2.840.113549.1.1.11');
  });

  it('refuses truncated input', () => {
    expect(() => readTlv(Buffer.from('3082ffff00', 'hex'), 0)).toThrow(DerError);
    expect(() => readTlv(Buffer.from('30', 'hex'), 0)).toThrow(DerError);
  });

  it('splits a certificate into subject, issuer, key and extensions', async () => {
    const key = await generateKey('ecdsa-p256');
    const ca = await createCa('etcd-ca', key, YEAR_H);
    const parts = tbsParts(new Uint8Array(ca.cert.raw));
    expect(equalBytes(parts.subject, parts.issuer)).toBe(true);
    expect(equalBytes(parts.spki, key.spki)).toBe(true);
    expect(parts.extensions.map((e) => e.oid)).toEqual(['2.5.29.15', '2.5.29.19', '2.5.29.14', '2.5.29.17']);
    expect(() => tbsParts(new Uint8Array(ca.cert.raw).subarray(0, 100))).toThrow(DerError);
  });
});

describe('createCa', () => {
  it('sets the validity in hours and a positive 16-octet serial', async () => {
    const now = new Date('2026-01-01T00:00:00Z');
    const ca = await createCa('kubernetes', await generateKey('ecdsa-p256'), 200 * YEAR_H, now);
    expect(ca.cert.ca).toBe(true);
    expect(new Date(ca.cert.validFrom).toISOString()).toBe('2026-01-01T00:00:00.000Z');
    expect(new Date(ca.cert.validTo).toISOString()).toBe(
      new Date(now.getTime() + 200 * YEAR_H * 3_600_000).toISOString(),
    );
    expect(ca.cert.serialNumber).toMatch(/^[4-7][0-9A-F]{31}$/);
    expect(ca.cert.subjectAltName).toBe('DNS:kubernetes');
    expect(ca.cert.verify(ca.cert.publicKey)).toBe(true);
  });

  it('draws different random serials', () => {
    const serials = new Set(Array.from({ length: 50 }, randomSerialHex));
    expect(serials.size).toBe(50);
    for (const s of serials) expect(Number.parseInt(s.slice(0, 2), 16)).toBeLessThan(0x80);
  });
});

describe('loadCaPair', () => {
  it('refuses a non-CA certificate, a key that does not match, and truncated PEM', async () => {
    const ca = await caPair('ecdsa-p256');
    const leafKey = await generateKey('ecdsa-p256');
    const leaf = await createLeaf(ca, {
      subject: [{ CN: ['x'] }],
      key: leafKey,
      validityHours: 24,
      clientAuth: true,
      serverAuth: false,
    });
    const leafKeyPem = privateKeyPem(leafKey.privateKey);
    await expect(loadCaPair('ca.crt', leaf.pem, 'ca.key', leafKeyPem)).rejects.toThrow(
      /ca\.crt is not a CA certificate/,
    );
    const other = await generateKey('ecdsa-p256');
    await expect(
      loadCaPair('ca.crt', ca.cert.toString(), 'ca.key', privateKeyPem(other.privateKey)),
    ).rejects.toThrow(/ca\.key does not match ca\.crt/);
    const pem = ca.cert.toString();
    await expect(loadCaPair('ca.crt', pem.slice(0, pem.length - 40), 'ca.key', '')).rejects.toThrow(
      /truncated or damaged/,
    );
    await expect(loadCaPair('ca.crt', pem, 'ca.key', 'garbage')).rejects.toThrow(KfError);
  });

  it('reads PKCS#1, SEC1 and PKCS#8 keys', async () => {
    for (const type of ['rsa', 'ec'] as const) {
      const { privateKey } =
        type === 'rsa'
          ? crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
          : crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' });
      for (const format of [type === 'rsa' ? 'pkcs1' : 'sec1', 'pkcs8'] as const) {
        const key = await loadPrivateKey(
          privateKey.export({ type: format, format: 'pem' }),
          `${type}-${format}`,
        );
        expect(
          equalBytes(key.spki, crypto.createPublicKey(privateKey).export({ type: 'spki', format: 'der' })),
        ).toBe(true);
      }
    }
  });

  it('parses PEM files holding a certificate and a key (kubelet style)', async () => {
    const ca = await caPair('ecdsa-p256');
    const certs = parseCertificatesPem(`${ca.cert.toString()}${privateKeyPem(ca.key.privateKey)}`, 'x.pem');
    expect(certs).toHaveLength(1);
    expect(() => parseCertificatesPem(privateKeyPem(ca.key.privateKey), 'k.pem')).toThrow(
      /holds no PEM certificate/,
    );
  });
});

describe('extendCa', () => {
  for (const type of ['rsa-2048', 'ecdsa-p256'] as const) {
    it(`keeps subject, key and extensions of a ${type} CA byte for byte; old leaves verify against the new one`, async () => {
      const ca = await caPair(type);
      const leaf = await createLeaf(ca, {
        subject: [{ CN: ['kube-apiserver'] }],
        key: await generateKey('ecdsa-p256'),
        validityHours: YEAR_H,
        clientAuth: false,
        serverAuth: true,
      });
      const now = new Date(Date.now() + 60_000);
      const fresh = await extendCa(ca, 200 * YEAR_H, now);
      const a = tbsParts(ca.der);
      const b = tbsParts(new Uint8Array(fresh.cert.raw));
      expect(equalBytes(a.subject, b.subject)).toBe(true);
      expect(equalBytes(a.spki, b.spki)).toBe(true);
      expect(b.extensions.map((e) => Buffer.from(e.der).toString('hex'))).toEqual(
        a.extensions.map((e) => Buffer.from(e.der).toString('hex')),
      );
      expect(equalBytes(a.serial, b.serial)).toBe(false);
      expect(fresh.cert.validFrom).toBe(ca.cert.validFrom);
      expect(new Date(fresh.cert.validTo).getTime()).toBe(
        Math.floor(now.getTime() / 1000) * 1000 + 200 * YEAR_H * 3_600_000,
      );
      expect(isIssuedBy(leaf.cert, fresh.cert)).toBe(true);
      expect(isIssuedBy(leaf.cert, (await caPair(type)).cert)).toBe(false);
    });
  }

  it('refuses a CA that is not self-signed', async () => {
    const root = await caPair('ecdsa-p256');
    const interKey = await generateKey('ecdsa-p256');
    const inter = await createLeaf(root, {
      subject: [{ CN: ['intermediate'] }],
      key: interKey,
      validityHours: 24,
      clientAuth: false,
      serverAuth: false,
    });
    // createLeaf makes CA:FALSE; a leaf-shaped "CA" is refused earlier, so build the pair by hand
    const pair: CaPair = {
      certFile: 'inter.crt',
      keyFile: 'inter.key',
      cert: inter.cert,
      der: new Uint8Array(inter.cert.raw),
      key: interKey,
    };
    await expect(extendCa(pair, YEAR_H)).rejects.toThrow(/inter\.crt is not self-signed/);
  });
});

describe('kubelet naming', () => {
  it('accepts DNS-1123 node names and refuses the rest', () => {
    for (const ok of ['node1', 'worker-1.example.com', 'a', '0abc']) expect(validateNodeName(ok)).toBe(ok);
    for (const bad of ['', 'Node1', 'node_1', '-a', 'a-', 'a..b', '../x', 'a/b', 'a b', 'a'.repeat(254)]) {
      expect(() => validateNodeName(bad), bad).toThrow(/invalid node name/);
    }
  });

  it("names the file the way the kubelet's rotation does", () => {
    expect(kubeletCertFileName(new Date('2026-11-28T20:05:09.123Z'))).toBe(
      'kubelet-client-2026-11-28-20-05-09.pem',
    );
  });

  it('issues a clientAuth leaf with the node subject', async () => {
    const ca = await caPair('rsa-2048');
    const leaf = await createLeaf(ca, {
      subject: [{ O: ['system:nodes'] }, { CN: ['system:node:n1'] }],
      key: await generateKey('ecdsa-p256'),
      validityHours: 199 * YEAR_H,
      clientAuth: true,
      serverAuth: false,
    });
    expect(leaf.cert.subject).toBe('O=system:nodes\nCN=system:node:n1');
    expect(leaf.cert.ca).toBe(false);
    expect(leaf.cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    expect(isIssuedBy(leaf.cert, ca.cert)).toBe(true);
    expect(new X509Certificate(leaf.pem).issuer).toBe('CN=kubernetes');
  });
});
