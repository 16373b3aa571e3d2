// @peculiar/x509 resolves its algorithms through tsyringe, which needs a Reflect polyfill loaded first.
import 'reflect-metadata';
import crypto, { X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { KfError } from '../../core/errors.js';
import { HOUR_MS } from '../../core/validity.js';
import { DerError, equalBytes, signatureAlgorithms, tbsParts } from './der.js';
import { keyForAlgorithm, loadPrivateKey, type SignatureAlgorithm, type SigningKey } from './keys.js';

// @peculiar/x509 builds certificates over node's own WebCrypto: no extra crypto dependency.
x509.cryptoProvider.set(crypto.webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const OID_SKID = '2.5.29.14';

/** A CA certificate with its key, both loaded and checked against each other. */
export interface CaPair {
  certFile: string;
  keyFile: string;
  cert: X509Certificate;
  der: Uint8Array;
  key: SigningKey;
  /** where this CA is in its file (a bundle may hold others) */
  block?: PemCertificate;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]*?)-----END \1-----/g;

export interface PemCertificate {
  cert: X509Certificate;
  /** where its PEM block is in the text (BEGIN line to END line, without the newline after) */
  start: number;
  end: number;
}

/**
 * All certificates in a PEM text with their positions (a file may also hold a key, as kubelet's
 * do, or several certificates, as a CA bundle does). A BEGIN without its END, or a block that
 * does not parse, is an error naming `source`.
 */
export function pemCertificates(pem: string, source: string): PemCertificate[] {
  const certs: PemCertificate[] = [];
  const begins = (pem.match(/-----BEGIN [A-Z0-9 ]+-----/g) ?? []).length;
  let blocks = 0;
  for (const m of pem.matchAll(PEM_BLOCK)) {
    blocks++;
    if (m[1] !== 'CERTIFICATE') continue;
    try {
      const cert = new X509Certificate(Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64'));
      certs.push({ cert, start: m.index, end: m.index + m[0].length });
    } catch (err) {
      throw new KfError(
        `${source} holds a certificate that does not parse (${(err as Error).message})`,
        'restore the file from a backup or reissue it',
      );
    }
  }
  if (begins !== blocks) {
    throw new KfError(
      `${source} is truncated or damaged: a PEM block has no matching END line`,
      'restore the file from a backup or reissue it',
    );
  }
  if (certs.length === 0)
    throw new KfError(
      `${source} holds no PEM certificate`,
      'point at a PEM certificate file (-----BEGIN CERTIFICATE-----)',
    );
  return certs;
}

/** All certificates in a PEM text (see pemCertificates). */
export function parseCertificatesPem(pem: string, source: string): X509Certificate[] {
  return pemCertificates(pem, source).map((c) => c.cert);
}

/** `text` with the PEM block of `block` replaced by `newPem`; every other byte (other certificates, order) kept. */
export function replacePemBlock(text: string, block: PemCertificate, newPem: string): string {
  return text.slice(0, block.start) + newPem.trimEnd() + text.slice(block.end);
}

/**
 * Same CA: self-signed, subject and public key identical byte for byte (what `ca extend` keeps),
 * whatever the validity and serial.
 */
export function isSameCa(a: X509Certificate, b: X509Certificate): boolean {
  if (!a.ca || !b.ca) return false;
  try {
    const x = tbsParts(new Uint8Array(a.raw));
    const y = tbsParts(new Uint8Array(b.raw));
    return (
      equalBytes(x.subject, y.subject) &&
      equalBytes(x.spki, y.spki) &&
      equalBytes(x.subject, x.issuer) &&
      equalBytes(y.subject, y.issuer)
    );
  } catch {
    return false;
  }
}

/**
 * Loads a CA certificate and its key and checks that it is a CA and that the key matches. In a
 * bundle (several certificates in the file) the CA is the one the key belongs to.
 */
export async function loadCaPair(
  certFile: string,
  certPem: string,
  keyFile: string,
  keyPem: string,
): Promise<CaPair> {
  const all = pemCertificates(certPem, certFile);
  const key = await loadPrivateKey(keyPem, keyFile);
  const block = all.find((c) => c.cert.checkPrivateKey(key.privateKey));
  const cert = (block ?? all[0]!).cert;
  if (!cert.ca) {
    throw new KfError(
      `${certFile} is not a CA certificate (basicConstraints CA:TRUE is missing; subject ${cert.subject.replace(/\n/g, ', ')})`,
      'point --pki-dir at a directory whose ca.crt is the cluster CA',
    );
  }
  if (!block) {
    throw new KfError(
      `${keyFile} does not match ${certFile}`,
      'put the key that belongs to this CA beside it (same base name, .key)',
    );
  }
  return { certFile, keyFile, cert, der: new Uint8Array(cert.raw), key, block };
}

/** A random positive serial of 16 octets (RFC 5280: positive, at most 20 octets). */
export function randomSerialHex(): string {
  const b = crypto.randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x40; // positive and a full 16 octets
  return b.toString('hex');
}

function toPem(cert: x509.X509Certificate): string {
  return `${cert.toString('pem').replace(/\r\n/g, '\n').trim()}\n`;
}

export interface NewCa {
  pem: string;
  cert: X509Certificate;
}

/** A self-signed CA as kubeadm's manual procedure makes it: CN, keyUsage, CA:TRUE, SKID, SAN DNS:<CN>. */
export async function createCa(
  commonName: string,
  key: SigningKey,
  validityHours: number,
  now = new Date(),
): Promise<NewCa> {
  const notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialHex(),
    subject: [{ CN: [commonName] }],
    issuer: [{ CN: [commonName] }],
    notBefore,
    notAfter: new Date(notBefore.getTime() + validityHours * HOUR_MS),
    publicKey: key.spki,
    signingKey: key.webKey,
    signingAlgorithm: key.signingAlgorithm,
    extensions: [
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature |
          x509.KeyUsageFlags.keyEncipherment |
          x509.KeyUsageFlags.keyCertSign,
        true,
      ),
      new x509.BasicConstraintsExtension(true, undefined, true),
      await x509.SubjectKeyIdentifierExtension.create(key.spki),
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: commonName }]),
    ],
  });
  const pem = toPem(cert);
  return { pem, cert: new X509Certificate(pem) };
}

/**
 * The same CA for longer: a new self-signed certificate with the original subject, issuer,
 * public key and extensions byte for byte (so every leaf's issuer DN and AKID still match), the
 * original NotBefore and NotAfter = now + validity. The serial is new and random, unless
 * `keepSerial`: certificates whose AKID names the issuer's serial (openssl's
 * `authorityKeyIdentifier=keyid,issuer:always`) only chain to a CA with that serial. Only a
 * self-signed CA can be extended this way; an intermediate would need its parent.
 */
export async function extendCa(
  ca: CaPair,
  validityHours: number,
  now = new Date(),
  keepSerial = false,
): Promise<NewCa> {
  let parts;
  try {
    parts = tbsParts(ca.der);
  } catch (err) {
    if (err instanceof DerError)
      throw new KfError(
        `${ca.certFile} is not a well-formed certificate: ${err.message}`,
        'restore it from a backup',
      );
    throw err;
  }
  if (!equalBytes(parts.subject, parts.issuer) || !ca.cert.verify(ca.cert.publicKey)) {
    throw new KfError(
      `${ca.certFile} is not self-signed (issuer ${ca.cert.issuer.replace(/\n/g, ', ')}), so it cannot be re-signed with its own key`,
      'extend the root CA that issued it, or renew this intermediate with its parent',
    );
  }
  if (!parts.extensions.some((e) => e.oid === OID_SKID)) {
    throw new KfError(
      `${ca.certFile} has no subjectKeyIdentifier, so leaves cannot be matched to it by key id`,
      'create new CAs with `ca init` and reissue the leaves instead',
    );
  }
  // Signed as the original was (scheme and hash): only validity and serial are to change.
  const algorithm = new x509.X509Certificate(ca.der).signatureAlgorithm as SignatureAlgorithm;
  const signer = await keyForAlgorithm(ca.key, algorithm);
  if (!signer) {
    throw new KfError(
      `${ca.certFile} is signed with ${algorithmText(algorithm)}, which ca extend cannot sign with, so it cannot keep it`,
      'create new CAs with `ca init` and reissue the leaves instead; nothing was written',
    );
  }
  const notAfter = new Date(Math.floor(now.getTime() / 1000) * 1000 + validityHours * HOUR_MS);
  const built = await x509.X509CertificateGenerator.create({
    serialNumber: keepSerial ? ca.cert.serialNumber : randomSerialHex(),
    subject: new x509.Name(parts.subject),
    issuer: new x509.Name(parts.issuer),
    notBefore: new Date(ca.cert.validFrom),
    notAfter,
    publicKey: parts.spki,
    signingKey: signer.webKey,
    signingAlgorithm: signer.signingAlgorithm,
    extensions: parts.extensions.map((e) => new x509.Extension(e.der)),
  });
  const pem = toPem(built);
  const cert = new X509Certificate(pem);
  // The point of `extend` is byte-identical identity: prove it rather than trust re-encoding.
  const after = tbsParts(new Uint8Array(cert.raw));
  const sigBefore = signatureAlgorithms(ca.der);
  const sigAfter = signatureAlgorithms(new Uint8Array(cert.raw));
  if (!equalBytes(sigAfter.tbs, sigBefore.tbs) || !equalBytes(sigAfter.outer, sigBefore.outer)) {
    // e.g. RSA-PSS parameters: openssl writes NULL hash parameters, @peculiar/x509 omits them
    throw new KfError(
      `${ca.certFile} is signed with ${algorithmText(algorithm)} in an encoding ca extend cannot reproduce byte for byte`,
      'create new CAs with `ca init` and reissue the leaves instead; nothing was written',
    );
  }
  const same =
    (!keepSerial || equalBytes(after.serial, parts.serial)) &&
    equalBytes(after.subject, parts.subject) &&
    equalBytes(after.issuer, parts.issuer) &&
    equalBytes(after.spki, parts.spki) &&
    after.extensions.length === parts.extensions.length &&
    after.extensions.every((e, i) => equalBytes(e.der, parts.extensions[i]!.der));
  if (!same || !cert.verify(ca.cert.publicKey)) {
    throw new KfError(
      `re-signing ${ca.certFile} would change its ${keepSerial ? 'serial, ' : ''}subject, key or extensions (encoding not reproducible)`,
      'report this with the output of `openssl x509 -noout -text` for the CA; nothing was written',
    );
  }
  return { pem, cert };
}

/** "RSASSA-PKCS1-v1_5 with SHA-512", or the OID of an algorithm @peculiar/x509 does not know. */
function algorithmText(a: SignatureAlgorithm): string {
  const hash = typeof a.hash === 'string' ? a.hash : a.hash?.name;
  return hash ? `${a.name} with ${hash}` : a.name;
}

/**
 * Checks that `fresh` is `old` extended: a self-signed CA with the same subject and public key
 * byte for byte (its lifetime is core/lifetime's business). Used where the CA key is absent.
 */
export function assertSameCa(
  old: X509Certificate,
  oldFile: string,
  fresh: X509Certificate,
  freshFile: string,
): void {
  const a = tbsParts(new Uint8Array(old.raw));
  const b = tbsParts(new Uint8Array(fresh.raw));
  if (!fresh.ca || !equalBytes(b.subject, b.issuer) || !fresh.verify(fresh.publicKey)) {
    throw new KfError(
      `${freshFile} is not a self-signed CA certificate`,
      "pass --new-ca-dir with the control plane's pki directory after ca extend",
    );
  }
  if (!equalBytes(a.subject, b.subject) || !equalBytes(a.spki, b.spki)) {
    throw new KfError(
      `${freshFile} is not the same CA as ${oldFile} (subject or key differ)`,
      'copy the CA certificates that ca extend wrote on a control-plane node of this cluster',
    );
  }
}

/** Hex of the CA's subjectKeyIdentifier, if it has one. */
function subjectKeyIdHex(ca: CaPair): string | undefined {
  const ext = new x509.X509Certificate(ca.der).getExtension(x509.SubjectKeyIdentifierExtension);
  return ext?.keyId;
}

export interface LeafSpec {
  /** e.g. [{ O: ['system:nodes'] }, { CN: ['system:node:n1'] }] */
  subject: x509.JsonName;
  /** only the public key is needed: a CSR's, when the private key stays on its node */
  key: Pick<SigningKey, 'spki'>;
  validityHours: number;
  clientAuth: boolean;
  serverAuth: boolean;
}

/** A leaf signed by `ca`: keyUsage critical digitalSignature+keyEncipherment, EKU, CA:FALSE, SKID, AKID. */
export async function createLeaf(ca: CaPair, spec: LeafSpec, now = new Date()): Promise<NewCa> {
  const notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000);
  const usages: string[] = [];
  if (spec.serverAuth) usages.push(x509.ExtendedKeyUsage.serverAuth);
  if (spec.clientAuth) usages.push(x509.ExtendedKeyUsage.clientAuth);
  const skid = subjectKeyIdHex(ca);
  const built = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialHex(),
    subject: spec.subject,
    issuer: new x509.Name(tbsParts(ca.der).subject),
    notBefore,
    notAfter: new Date(notBefore.getTime() + spec.validityHours * HOUR_MS),
    publicKey: spec.key.spki,
    signingKey: ca.key.webKey,
    signingAlgorithm: ca.key.signingAlgorithm,
    extensions: [
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension(usages, false),
      new x509.BasicConstraintsExtension(false, undefined, true),
      await x509.SubjectKeyIdentifierExtension.create(spec.key.spki),
      skid
        ? new x509.AuthorityKeyIdentifierExtension(skid)
        : await x509.AuthorityKeyIdentifierExtension.create(ca.key.spki),
    ],
  });
  const pem = toPem(built);
  return { pem, cert: new X509Certificate(pem) };
}

/** Whether `leaf` was issued by `ca`: names match and the signature verifies with the CA's key. */
export function isIssuedBy(leaf: X509Certificate, ca: X509Certificate): boolean {
  try {
    return leaf.checkIssued(ca) && leaf.verify(ca.publicKey);
  } catch {
    return false;
  }
}
