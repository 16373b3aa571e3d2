import 'reflect-metadata';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { KfError, UsageError } from '../../core/errors.js';
import type { Validity } from '../../core/types.js';
import { enforceLifetimes, lifetimeViolations } from '../../core/lifetime.js';
import { validateNodeName as validateDns1123 } from '../../core/dns-name.js';
import { replaceFiles } from '../../adapters/file-transaction.js';
import { createLeaf, isIssuedBy, loadCaPair, parseCertificatesPem } from './certs.js';
import { assertWritableDir, KEY_MODE, readFileOrFail } from './files.js';
import { generateKey, loadPrivateKey, privateKeyPem } from './keys.js';
import { currentCertificate, KUBELET_CURRENT, kubeletCertFileName } from './kubelet.js';

/**
 * A worker's kubelet client certificate without its key leaving the worker, or the CA key
 * leaving the control plane: the worker makes a key and a CSR (`kubelet-cert --make-csr`), a
 * control plane signs it (`--sign-csr`), the worker installs the certificate with its key
 * (`--install`). The pending key is kept between the steps, so a repeated --make-csr (a resumed
 * rollout) gives a CSR for the same key.
 */

export const PENDING_KEY = 'kubelet-client-pending.key';
const MAX_PEM_BYTES = 64 * 1024;

function subjectOf(node: string): x509.JsonName {
  return [{ O: ['system:nodes'] }, { CN: [`system:node:${node}`] }];
}

/** A CSR for system:node:NODE and where its pending key is kept. */
export interface KubeletCsr {
  csr: string;
  keyFile: string;
  /** the pending key of an earlier --make-csr, kept */
  reused: boolean;
}

/** A worker's CSR signed by the cluster CA. */
export interface SignedKubeletCsr {
  cert: string;
  notAfter: string;
  subject: string;
}

/** A signed certificate installed with its pending key. */
export interface InstalledKubeletCert {
  file: string;
  link: string;
  notAfter: string;
  subject: string;
}

export async function makeKubeletCsr(opts: { nodeName: string; outDir: string }): Promise<KubeletCsr> {
  const node = validateDns1123(opts.nodeName, '--node');
  const outDir = path.resolve(opts.outDir);
  assertWritableDir(outDir, 'kubelet certificate directory');
  const keyFile = path.join(outDir, PENDING_KEY);
  const reused = fs.existsSync(keyFile);
  const key = reused
    ? await loadPrivateKey(readFileOrFail(keyFile, 'pending kubelet key'), keyFile)
    : await generateKey('ecdsa-p256');
  if (!reused) replaceFiles([{ file: keyFile, data: privateKeyPem(key.privateKey), mode: KEY_MODE }]);
  const publicKey = await crypto.webcrypto.subtle.importKey('spki', key.spki, key.signingAlgorithm, true, [
    'verify',
  ]);
  const signer = await crypto.webcrypto.subtle.importKey(
    'pkcs8',
    key.privateKey.export({ type: 'pkcs8', format: 'der' }),
    key.signingAlgorithm,
    false,
    ['sign'],
  );
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: subjectOf(node),
    keys: { publicKey, privateKey: signer } as unknown as Parameters<
      typeof x509.Pkcs10CertificateRequestGenerator.create
    >[0]['keys'],
    signingAlgorithm: key.signingAlgorithm,
  });
  return { csr: csr.toString('pem'), keyFile, reused };
}

/** Signs a worker's CSR with the cluster CA: only `O=system:nodes, CN=system:node:NODE`, only client auth. */
export async function signKubeletCsr(opts: {
  csrPem: string;
  nodeName: string;
  pkiDir: string;
  validity: Validity;
  allowShorter?: boolean;
  now?: Date;
}): Promise<SignedKubeletCsr> {
  const node = validateDns1123(opts.nodeName, '--node');
  if (opts.csrPem.length > MAX_PEM_BYTES) throw new UsageError('the CSR is over 64 KiB', 'pass one PEM CSR');
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(opts.csrPem);
  } catch {
    throw new UsageError(
      'the CSR is not a PEM certificate request',
      'pass what kubelet-cert --make-csr printed',
    );
  }
  if (!(await csr.verify()))
    throw new UsageError('the CSR signature does not verify', 'make a new CSR on the node');
  const want = `O=system:nodes, CN=system:node:${node}`;
  const got = csr.subject;
  if (got !== want && got !== `CN=system:node:${node}, O=system:nodes`) {
    throw new UsageError(
      `the CSR asks for ${JSON.stringify(got)}, not ${JSON.stringify(want)}`,
      `sign only a CSR made on node ${node} by kubelet-cert --make-csr`,
    );
  }
  const pkiDir = path.resolve(opts.pkiDir);
  const certFile = path.join(pkiDir, 'ca.crt');
  const keyFile = path.join(pkiDir, 'ca.key');
  const ca = await loadCaPair(
    certFile,
    readFileOrFail(certFile, 'CA certificate').toString('utf8'),
    keyFile,
    readFileOrFail(keyFile, 'CA key').toString('utf8'),
  );
  const leaf = await createLeaf(
    ca,
    {
      subject: subjectOf(node),
      key: { spki: new Uint8Array(csr.publicKey.rawData) },
      validityHours: opts.validity.hours,
      clientAuth: true,
      serverAuth: false,
    },
    opts.now,
  );
  enforceLifetimes(
    lifetimeViolations({
      name: 'the new kubelet client certificate',
      notAfter: new Date(leaf.cert.validTo),
      issuer: { name: certFile, notAfter: new Date(ca.cert.validTo) },
    }),
    opts.allowShorter ?? false,
    'extend the CA first (ca extend) or pass a shorter --validity',
  );
  return { cert: leaf.pem, notAfter: new Date(leaf.cert.validTo).toISOString(), subject: want };
}

/**
 * Installs a signed certificate with the pending key: it must hold that key, be issued by the
 * node's ca.crt and end no earlier than the current one; then the timestamped PEM (certificate
 * + key, 0600) and the link, in one transaction, and the pending key removed.
 */
export async function installKubeletCert(opts: {
  certPem: string;
  outDir: string;
  caFile: string;
  allowShorter?: boolean;
  now?: Date;
}): Promise<InstalledKubeletCert> {
  const now = opts.now ?? new Date();
  const outDir = path.resolve(opts.outDir);
  const keyFile = path.join(outDir, PENDING_KEY);
  if (!fs.existsSync(keyFile)) {
    throw new KfError(
      `no pending key ${keyFile}`,
      'run kubelet-cert --make-csr on this node first, and sign its CSR',
    );
  }
  const key = await loadPrivateKey(readFileOrFail(keyFile, 'pending kubelet key'), keyFile);
  if (opts.certPem.length > MAX_PEM_BYTES)
    throw new UsageError('the certificate is over 64 KiB', 'pass one PEM');
  const [cert] = parseCertificatesPem(opts.certPem, 'the signed certificate');
  if (!cert) throw new UsageError('no certificate given', 'pass what kubelet-cert --sign-csr printed');
  const certSpki = new Uint8Array(cert.publicKey.export({ type: 'spki', format: 'der' }));
  if (Buffer.compare(Buffer.from(certSpki), Buffer.from(key.spki)) !== 0) {
    throw new UsageError(
      `the certificate is not for the pending key ${keyFile}`,
      'sign the CSR this node made last (kubelet-cert --make-csr prints it again)',
    );
  }
  const caPem = readFileOrFail(opts.caFile, 'CA certificate').toString('utf8');
  const cas = parseCertificatesPem(caPem, opts.caFile);
  if (!cas.some((c) => isIssuedBy(cert, c))) {
    throw new UsageError(
      `the certificate is not issued by a CA in ${opts.caFile}`,
      "sign it on a control plane of this node's cluster",
    );
  }
  const link = path.join(outDir, KUBELET_CURRENT);
  const current = currentCertificate(link);
  enforceLifetimes(
    lifetimeViolations({
      name: 'the signed kubelet client certificate',
      notAfter: new Date(cert.validTo),
      current,
    }),
    opts.allowShorter ?? false,
    'sign it with a longer --validity',
  );
  const file = path.join(outDir, kubeletCertFileName(now));
  if (fs.existsSync(file))
    throw new KfError(`${file} already exists`, 'wait a second and run again; nothing was written');
  replaceFiles([
    { file, data: `${opts.certPem.trim()}\n${privateKeyPem(key.privateKey)}`, mode: KEY_MODE },
    { file: link, linkTo: file },
  ]);
  fs.rmSync(keyFile, { force: true });
  return {
    file,
    link,
    notAfter: new Date(cert.validTo).toISOString(),
    subject: cert.subject.replace(/\n/g, ', '),
  };
}
