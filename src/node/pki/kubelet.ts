import fs from 'node:fs';
import path from 'node:path';
import { KfError, UsageError } from '../../core/errors.js';
import { isFileReadError, readBoundedText } from '../../adapters/bounded-read.js';
import type { Validity } from '../../core/types.js';
import { enforceLifetimes, lifetimeViolations, type Dated } from '../../core/lifetime.js';
import { recoverInterrupted, replaceFiles, type RecoveryReport } from '../../adapters/file-transaction.js';
import { createLeaf, loadCaPair, parseCertificatesPem } from './certs.js';
import { assertWritableDir, fileTimestamp, KEY_MODE, readFileOrFail } from './files.js';
import { generateKey, privateKeyPem } from './keys.js';

export const KUBELET_CURRENT = 'kubelet-client-current.pem';

/** Node names as Kubernetes accepts them (DNS-1123 subdomain): they end up in a CN and a file name. */
export function validateNodeName(name: string): string {
  const ok =
    name.length > 0 &&
    name.length <= 253 &&
    /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(name);
  if (!ok) {
    throw new UsageError(
      `invalid node name ${JSON.stringify(name)}: expected a DNS-1123 subdomain (lowercase letters, digits, '-' and '.')`,
      'pass --node with the name `kubectl get nodes` shows for this node',
    );
  }
  return name;
}

/** kubelet's own file name format for rotated certificates: kubelet-client-2006-01-02-15-04-05.pem (UTC here). */
export function kubeletCertFileName(now: Date): string {
  const t = now
    .toISOString()
    .replace(/\.\d+Z$/, '')
    .replace(/[T:]/g, '-');
  return `kubelet-client-${t}.pem`;
}

export interface KubeletCertOptions {
  nodeName: string;
  pkiDir: string;
  outDir: string;
  validity: Validity;
  /** allow a certificate that ends after its CA, or earlier than the current one (core/lifetime) */
  allowShorter?: boolean;
  now?: Date;
}

export interface IssuedKubeletCert {
  node: string;
  file: string;
  link: string;
  subject: string;
  issuer: string;
  serial: string;
  notAfter: string;
  /** kube-controller-manager flag that keeps certificates the kubelet later rotates as long-lived */
  clusterSigningDuration: string;
  /** a regular file found where the link goes, saved before re-pointing */
  replacedFileBackup?: string;
  warnings: string[];
  recovered: RecoveryReport;
}

/**
 * The certificate kubelet-client-current.pem holds now, if it can be read. A FIFO, a device or
 * an oversized file there is refused (an error naming it): nothing is replaced over it.
 */
export function currentCertificate(link: string): Dated | undefined {
  try {
    const [cert] = parseCertificatesPem(readBoundedText(link, 'certificate'), link);
    return { name: `the current ${link}`, notAfter: new Date(cert!.validTo) };
  } catch (err) {
    if (isFileReadError(err) && err.refused) throw err;
    return undefined;
  }
}

/**
 * A kubelet client certificate signed by the cluster CA, written the way the kubelet's own
 * rotation does: a timestamped PEM (certificate + key, 0600) and `kubelet-client-current.pem`
 * re-pointed at it with an atomic rename of a fresh symlink.
 */
export async function issueKubeletCert(opts: KubeletCertOptions): Promise<IssuedKubeletCert> {
  const now = opts.now ?? new Date();
  const node = validateNodeName(opts.nodeName);
  const pkiDir = path.resolve(opts.pkiDir);
  const outDir = path.resolve(opts.outDir);
  const certFile = path.join(pkiDir, 'ca.crt');
  const keyFile = path.join(pkiDir, 'ca.key');
  const ca = await loadCaPair(
    certFile,
    readFileOrFail(certFile, 'CA certificate').toString('utf8'),
    keyFile,
    readFileOrFail(keyFile, 'CA key', 'key').toString('utf8'),
  );
  assertWritableDir(outDir, 'output directory');
  const recovered = recoverInterrupted([outDir]);
  const link = path.join(outDir, KUBELET_CURRENT);
  // read (or refuse) what the link holds before anything else can fail on the new name
  const current = currentCertificate(link);
  const file = path.join(outDir, kubeletCertFileName(now));
  if (fs.existsSync(file))
    throw new KfError(`${file} already exists`, 'wait a second and run again; nothing was written');

  const key = await generateKey('ecdsa-p256'); // what the kubelet itself generates for its CSRs
  const leaf = await createLeaf(
    ca,
    {
      subject: [{ O: ['system:nodes'] }, { CN: [`system:node:${node}`] }],
      key,
      validityHours: opts.validity.hours,
      clientAuth: true,
      serverAuth: false,
    },
    now,
  );
  const warnings = enforceLifetimes(
    lifetimeViolations({
      name: 'the new kubelet client certificate',
      notAfter: new Date(leaf.cert.validTo),
      current,
      issuer: { name: certFile, notAfter: new Date(ca.cert.validTo) },
    }),
    opts.allowShorter ?? false,
    'extend the CA first (ca extend) or pass a shorter --validity',
  );

  let replacedFileBackup: string | undefined;
  const linkStat = fs.lstatSync(link, { throwIfNoEntry: false });
  if (linkStat && !linkStat.isSymbolicLink()) {
    // A plain file where kubelet keeps a link: keep it, nothing is lost.
    replacedFileBackup = `${link}.kf-backup-${fileTimestamp(now)}`;
    fs.copyFileSync(link, replacedFileBackup, fs.constants.COPYFILE_EXCL);
    fs.chmodSync(replacedFileBackup, KEY_MODE);
  }
  // the certificate and the link in one transaction: never a link to a missing file
  replaceFiles(
    [
      { file, data: leaf.pem + privateKeyPem(key.privateKey), mode: KEY_MODE },
      { file: link, linkTo: file },
    ],
    { backupDir: replacedFileBackup },
  );

  return {
    node,
    file,
    link,
    subject: leaf.cert.subject.replace(/\n/g, ', '),
    issuer: leaf.cert.issuer.replace(/\n/g, ', '),
    serial: leaf.cert.serialNumber,
    notAfter: new Date(leaf.cert.validTo).toISOString(),
    clusterSigningDuration: `${opts.validity.hours}h`,
    replacedFileBackup,
    warnings,
    recovered,
  };
}
