import type { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { KfError } from '../errors.js';
import type { Validity } from '../core/types.js';
import { assertSameCa, createCa, extendCa, isIssuedBy, loadCaPair, parseCertificatesPem, type CaPair, type NewCa } from './certs.js';
import { akidHasIssuerSerial } from './der.js';
import {
  assertWritableDir,
  backupFiles,
  certFilesUnder,
  CERT_MODE,
  fileTimestamp,
  KEY_MODE,
  readFileOrFail,
  writeFilesAtomically,
  type PendingWrite,
} from './files.js';
import { generateKey, privateKeyPem, type KeyType } from './keys.js';
import { listKubeconfigs, replaceCaData } from './kubeconfig.js';

/** The three kubeadm CAs, laid out as in /etc/kubernetes/pki. */
export const KUBEADM_CAS = [
  { name: 'ca', commonName: 'kubernetes', cert: 'ca.crt', key: 'ca.key' },
  { name: 'etcd-ca', commonName: 'etcd-ca', cert: 'etcd/ca.crt', key: 'etcd/ca.key' },
  { name: 'front-proxy-ca', commonName: 'front-proxy-ca', cert: 'front-proxy-ca.crt', key: 'front-proxy-ca.key' },
] as const;

export interface CaSummary {
  name: string;
  cert: string;
  /** undefined when installed from --new-ca-dir (no key on this node) */
  key?: string;
  subject: string;
  serial: string;
  notBefore: string;
  notAfter: string;
}

function summary(name: string, certFile: string, keyFile: string | undefined, ca: NewCa): CaSummary {
  return {
    name,
    cert: certFile,
    key: keyFile,
    subject: ca.cert.subject.replace(/\n/g, ', '),
    serial: ca.cert.serialNumber,
    notBefore: new Date(ca.cert.validFrom).toISOString(),
    notAfter: new Date(ca.cert.validTo).toISOString(),
  };
}

/** Default backup folder: beside `dir`, named after it with a UTC timestamp. */
export function defaultBackupDir(dir: string, now: Date): string {
  const abs = path.resolve(dir);
  return path.join(path.dirname(abs), `${path.basename(abs)}-backup-${fileTimestamp(now)}`);
}

export interface CaInitOptions {
  outDir: string;
  validity: Validity;
  keyType: KeyType;
  force: boolean;
  now?: Date;
}

export interface CaInitResult {
  outDir: string;
  validity: string;
  keyType: KeyType;
  cas: CaSummary[];
  /** where the replaced files went (with --force only) */
  backupDir?: string;
  backedUp: string[];
}

/** `ca init`: three new self-signed CAs. Existing files are refused, or with `force` backed up first. */
export async function caInit(opts: CaInitOptions): Promise<CaInitResult> {
  const now = opts.now ?? new Date();
  const outDir = path.resolve(opts.outDir);
  assertWritableDir(outDir, 'output directory');
  const targets = KUBEADM_CAS.flatMap((c) => [path.join(outDir, c.cert), path.join(outDir, c.key)]);
  const existing = targets.filter((f) => fs.existsSync(f));
  if (existing.length > 0 && !opts.force) {
    throw new KfError(
      `${existing.length} CA file(s) already exist in ${outDir}, e.g. ${existing[0]}`,
      'pass --force to replace them (they are backed up first), or choose another --out',
    );
  }
  const writes: PendingWrite[] = [];
  const cas: CaSummary[] = [];
  for (const c of KUBEADM_CAS) {
    const key = await generateKey(opts.keyType);
    const ca = await createCa(c.commonName, key, opts.validity.hours, now);
    const certFile = path.join(outDir, c.cert);
    const keyFile = path.join(outDir, c.key);
    writes.push({ file: keyFile, data: privateKeyPem(key.privateKey), mode: KEY_MODE });
    writes.push({ file: certFile, data: ca.pem, mode: CERT_MODE });
    cas.push(summary(c.name, certFile, keyFile, ca));
  }
  let backupDir: string | undefined;
  let backedUp: string[] = [];
  if (existing.length > 0) {
    backupDir = defaultBackupDir(outDir, now);
    assertWritableDir(path.dirname(backupDir), 'backup directory');
    backedUp = backupFiles(existing, outDir, backupDir);
  }
  writeFilesAtomically(writes);
  return { outDir, validity: opts.validity.text, keyType: opts.keyType, cas, backupDir, backedUp };
}

export interface CaExtendOptions {
  pkiDir: string;
  /** undefined: the parent of pkiDir when it is named `pki` (kubeadm's layout), else none */
  kubeconfigDir?: string;
  backupDir?: string;
  validity: Validity;
  /** a node without CA keys: install these already extended CA certificates instead */
  newCaDir?: string;
  now?: Date;
}

export interface CaExtendResult {
  pkiDir: string;
  validity: string;
  /** serialKept: a certificate's AKID names the CA serial, so the serial could not change */
  extended: (CaSummary & { oldNotAfter: string; oldSerial: string; serialKept: boolean })[];
  skipped: string[];
  kubeconfigDir?: string;
  kubeconfigs: { file: string; clusters: string[] }[];
  /** clusters whose CA data matched none of the CAs (left as they were) */
  kubeconfigsUnmatched: { file: string; clusters: string[] }[];
  backupDir: string;
  backedUp: string[];
}

/** The kubeconfig dir `ca extend` uses when none is given. */
export function defaultKubeconfigDir(pkiDir: string): string | undefined {
  const abs = path.resolve(pkiDir);
  return path.basename(abs) === 'pki' ? path.dirname(abs) : undefined;
}

/** One CA `ca extend` replaces: where it is, what it was, and its new certificate. */
interface PreparedCa {
  name: string;
  certFile: string;
  keyFile?: string;
  oldCert: X509Certificate;
  fresh: NewCa;
  serialKept: boolean;
}

/** Re-signs each CA present in `pkiDir` with its own key. */
async function resignCas(pkiDir: string, validity: Validity, now: Date): Promise<{ prepared: PreparedCa[]; skipped: string[] }> {
  const pairs: { name: string; pair: CaPair }[] = [];
  const skipped: string[] = [];
  for (const c of KUBEADM_CAS) {
    const certFile = path.join(pkiDir, c.cert);
    const keyFile = path.join(pkiDir, c.key);
    if (!fs.existsSync(certFile)) {
      skipped.push(c.cert);
      continue;
    }
    if (!fs.existsSync(keyFile)) {
      throw new KfError(
        `${certFile} has no key beside it (${keyFile}), so it cannot be re-signed here`,
        'run ca extend on a control-plane node; on other nodes install its result with --new-ca-dir',
      );
    }
    const pair = await loadCaPair(
      certFile,
      readFileOrFail(certFile, 'CA certificate').toString('utf8'),
      keyFile,
      readFileOrFail(keyFile, 'CA key').toString('utf8'),
    );
    pairs.push({ name: c.name, pair });
  }
  // Certificates already issued whose AKID names the CA's serial only chain if it is kept.
  const issued = certFilesUnder(pkiDir).flatMap((f) => {
    try {
      return parseCertificatesPem(fs.readFileSync(f, 'utf8'), f);
    } catch {
      return []; // unreadable files are check's business, not a reason to stop here
    }
  });
  const prepared: PreparedCa[] = [];
  for (const { name, pair } of pairs) {
    const serialKept =
      akidHasIssuerSerial(pair.der) ||
      issued.some((c) => !c.ca && isIssuedBy(c, pair.cert) && akidHasIssuerSerial(new Uint8Array(c.raw)));
    const fresh = await extendCa(pair, validity.hours, now, serialKept);
    prepared.push({ name, certFile: pair.certFile, keyFile: pair.keyFile, oldCert: pair.cert, fresh, serialKept });
  }
  return { prepared, skipped };
}

/**
 * For nodes without the CA keys (workers): takes the CAs already extended on a control-plane
 * node from `newCaDir` and checks each is the same CA as the local one (sameCaIdentity).
 */
function adoptExtendedCas(pkiDir: string, newCaDir: string): { prepared: PreparedCa[]; skipped: string[] } {
  const prepared: PreparedCa[] = [];
  const skipped: string[] = [];
  for (const c of KUBEADM_CAS) {
    const certFile = path.join(pkiDir, c.cert);
    const newFile = path.join(newCaDir, c.cert);
    if (!fs.existsSync(certFile) || !fs.existsSync(newFile)) {
      skipped.push(c.cert);
      continue;
    }
    const [oldCert] = parseCertificatesPem(readFileOrFail(certFile, 'CA certificate').toString('utf8'), certFile);
    const newPem = readFileOrFail(newFile, 'extended CA certificate').toString('utf8');
    const [newCert] = parseCertificatesPem(newPem, newFile);
    assertSameCa(oldCert!, certFile, newCert!, newFile);
    const pem = `${newCert!.toString().trim()}\n`;
    prepared.push({ name: c.name, certFile, oldCert: oldCert!, fresh: { pem, cert: newCert! }, serialKept: oldCert!.serialNumber === newCert!.serialNumber });
  }
  return { prepared, skipped };
}

/**
 * `ca extend`: every CA present is re-signed with its own key (same subject, key and
 * extensions; see extendCa), or with `newCaDir` replaced by the copy already extended on a
 * control-plane node. Everything is prepared and checked in memory first; then the old
 * certificates and the kubeconfigs that change are backed up, then all files are written.
 */
export async function caExtend(opts: CaExtendOptions): Promise<CaExtendResult> {
  const now = opts.now ?? new Date();
  const pkiDir = path.resolve(opts.pkiDir);
  if (!fs.existsSync(pkiDir) || !fs.statSync(pkiDir).isDirectory()) {
    throw new KfError(`PKI directory ${pkiDir} does not exist`, 'pass --pki-dir with the directory holding ca.crt (/etc/kubernetes/pki)');
  }
  if (opts.newCaDir !== undefined && !fs.existsSync(opts.newCaDir)) {
    throw new KfError(`--new-ca-dir ${opts.newCaDir} does not exist`, "pass the directory holding the control plane's extended ca.crt");
  }
  const { prepared, skipped } =
    opts.newCaDir !== undefined ? adoptExtendedCas(pkiDir, path.resolve(opts.newCaDir)) : await resignCas(pkiDir, opts.validity, now);
  if (prepared.length === 0) {
    throw new KfError(
      `no CA to extend in ${pkiDir} (looked for ca.crt, etcd/ca.crt, front-proxy-ca.crt${opts.newCaDir ? ` and the same names in ${opts.newCaDir}` : ''})`,
      'pass --pki-dir with the cluster PKI (/etc/kubernetes/pki)',
    );
  }
  const extended: CaExtendResult['extended'] = [];
  const writes: PendingWrite[] = [];
  const replacements: { oldDer: Buffer; newPem: string; caFile: string }[] = [];
  for (const p of prepared) {
    const mode = fs.statSync(p.certFile).mode & 0o777;
    writes.push({ file: p.certFile, data: p.fresh.pem, mode: mode || CERT_MODE });
    replacements.push({ oldDer: Buffer.from(p.oldCert.raw), newPem: p.fresh.pem, caFile: p.certFile });
    extended.push({
      ...summary(p.name, p.certFile, p.keyFile, p.fresh),
      oldNotAfter: new Date(p.oldCert.validTo).toISOString(),
      oldSerial: p.oldCert.serialNumber,
      serialKept: p.serialKept,
    });
  }

  const kubeconfigDir = opts.kubeconfigDir !== undefined ? path.resolve(opts.kubeconfigDir) : defaultKubeconfigDir(pkiDir);
  if (opts.kubeconfigDir !== undefined && !fs.existsSync(kubeconfigDir!)) {
    throw new KfError(`kubeconfig directory ${kubeconfigDir} does not exist`, 'pass --kubeconfig-dir with the directory holding admin.conf (/etc/kubernetes)');
  }
  const kubeconfigs: CaExtendResult['kubeconfigs'] = [];
  const kubeconfigsUnmatched: CaExtendResult['kubeconfigsUnmatched'] = [];
  const changedConfs: string[] = [];
  for (const file of kubeconfigDir ? listKubeconfigs(kubeconfigDir) : []) {
    const text = readFileOrFail(file, 'kubeconfig').toString('utf8');
    const r = replaceCaData(text, file, replacements);
    if (r.unmatched.length > 0) kubeconfigsUnmatched.push({ file, clusters: r.unmatched });
    if (r.changes.length === 0) continue;
    writes.push({ file, data: r.text, mode: fs.statSync(file).mode & 0o777 });
    kubeconfigs.push({ file, clusters: r.changes.map((c) => c.cluster) });
    changedConfs.push(file);
  }

  const backupDir = path.resolve(opts.backupDir ?? defaultBackupDir(pkiDir, now));
  if (fs.existsSync(backupDir) && fs.readdirSync(backupDir).length > 0) {
    throw new KfError(`backup directory ${backupDir} is not empty`, 'pass an empty or new --backup-dir; nothing was written');
  }
  assertWritableDir(backupDir, 'backup directory');
  assertWritableDir(pkiDir, 'PKI directory');
  for (const p of prepared) assertWritableDir(path.dirname(p.certFile), 'PKI directory');
  if (kubeconfigDir && changedConfs.length > 0) assertWritableDir(kubeconfigDir, 'kubeconfig directory');

  const backedUp = [
    ...backupFiles(
      prepared.map((p) => p.certFile),
      pkiDir,
      path.join(backupDir, 'pki'),
    ),
    ...(kubeconfigDir ? backupFiles(changedConfs, kubeconfigDir, backupDir) : []),
  ];
  writeFilesAtomically(writes);
  return {
    pkiDir,
    validity: opts.newCaDir !== undefined ? 'as in --new-ca-dir' : opts.validity.text,
    extended,
    skipped,
    kubeconfigDir,
    kubeconfigs,
    kubeconfigsUnmatched,
    backupDir,
    backedUp,
  };
}
