import type { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { KfError } from '../../core/errors.js';
import { isFileReadError, readBoundedText } from '../../adapters/bounded-read.js';
import type { Validity } from '../../core/types.js';
import { enforceLifetimes, lifetimeViolations, type Dated } from '../../core/lifetime.js';
import {
  recoverInterrupted,
  replaceFiles,
  type RecoveryReport,
  type StagedFile,
} from '../../adapters/file-transaction.js';
import {
  assertSameCa,
  createCa,
  extendCa,
  isIssuedBy,
  isSameCa,
  loadCaPair,
  parseCertificatesPem,
  pemCertificates,
  replacePemBlock,
  type CaPair,
  type NewCa,
} from './certs.js';
import { akidHasIssuerSerial, isPositiveInteger, tbsParts } from './der.js';
import {
  assertWritableDir,
  backupFiles,
  certFilesUnder,
  CERT_MODE,
  fileTimestamp,
  KEY_MODE,
  readFileOrFail,
  writeTarget,
} from './files.js';
import { generateKey, privateKeyPem, type KeyType } from './keys.js';
import {
  decodeCertData,
  kubeconfigCertRefs,
  listKubeconfigs,
  replaceCaData,
  type CaReplacement,
} from './kubeconfig.js';

/** The three kubeadm CAs, laid out as in /etc/kubernetes/pki. */
export const KUBEADM_CAS = [
  { name: 'ca', commonName: 'kubernetes', cert: 'ca.crt', key: 'ca.key' },
  { name: 'etcd-ca', commonName: 'etcd-ca', cert: 'etcd/ca.crt', key: 'etcd/ca.key' },
  {
    name: 'front-proxy-ca',
    commonName: 'front-proxy-ca',
    cert: 'front-proxy-ca.crt',
    key: 'front-proxy-ca.key',
  },
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

/**
 * Default backup folder: beside `dir`, named after it with a UTC timestamp (and -2, -3, ... when
 * a run in the same second, e.g. a re-run after an interruption, already used the name).
 */
export function defaultBackupDir(dir: string, now: Date): string {
  const abs = path.resolve(dir);
  const base = path.join(path.dirname(abs), `${path.basename(abs)}-backup-${fileTimestamp(now)}`);
  let candidate = base;
  for (let n = 2; fs.existsSync(candidate) && fs.readdirSync(candidate).length > 0; n++)
    candidate = `${base}-${n}`;
  return candidate;
}

const iso = (c: { validTo: string }) => new Date(c.validTo);

export interface CaInitOptions {
  outDir: string;
  validity: Validity;
  keyType: KeyType;
  force: boolean;
  /** replace a CA that ends later than the new one (see core/lifetime) */
  allowShorter?: boolean;
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
  /** what an interrupted earlier run left and this run finished or put back */
  recovered: RecoveryReport;
  /** lifetime rule violations allowed by --allow-shorter */
  warnings: string[];
}

/** `ca init`: three new self-signed CAs. Existing files are refused, or with `force` backed up first. */
export async function caInit(opts: CaInitOptions): Promise<CaInitResult> {
  const now = opts.now ?? new Date();
  const outDir = path.resolve(opts.outDir);
  assertWritableDir(outDir, 'output directory');
  const recovered = recoverInterrupted(caDirs(outDir));
  const targets = KUBEADM_CAS.flatMap((c) => [path.join(outDir, c.cert), path.join(outDir, c.key)]);
  const existing = targets.filter((f) => fs.existsSync(f));
  if (existing.length > 0 && !opts.force) {
    throw new KfError(
      `${existing.length} CA file(s) already exist in ${outDir}, e.g. ${existing[0]}`,
      'pass --force to replace them (they are backed up first), or choose another --out',
    );
  }
  const writes: StagedFile[] = [];
  const cas: CaSummary[] = [];
  const violations: string[] = [];
  for (const c of KUBEADM_CAS) {
    const key = await generateKey(opts.keyType);
    const ca = await createCa(c.commonName, key, opts.validity.hours, now);
    const certFile = path.join(outDir, c.cert);
    const keyFile = path.join(outDir, c.key);
    if (fs.existsSync(certFile)) {
      let current: Dated | undefined;
      try {
        const [old] = parseCertificatesPem(readBoundedText(certFile, 'certificate'), certFile);
        current = { name: `the CA in ${certFile}`, notAfter: iso(old!) };
      } catch (err) {
        if (isFileReadError(err) && err.refused) throw err; // a FIFO or device is not backed up
        current = undefined; // a damaged file has no lifetime to keep; it is backed up all the same
      }
      violations.push(...lifetimeViolations({ name: `the new ${c.cert}`, notAfter: iso(ca.cert), current }));
    }
    writes.push({ file: keyFile, data: privateKeyPem(key.privateKey), mode: KEY_MODE });
    writes.push({ file: certFile, data: ca.pem, mode: CERT_MODE });
    cas.push(summary(c.name, certFile, keyFile, ca));
  }
  const warnings = enforceLifetimes(violations, opts.allowShorter ?? false, 'pass a longer --validity');
  let backupDir: string | undefined;
  let backedUp: string[] = [];
  if (existing.length > 0) {
    backupDir = defaultBackupDir(outDir, now);
    assertWritableDir(path.dirname(backupDir), 'backup directory');
    backedUp = backupFiles(existing, outDir, backupDir);
  }
  replaceFiles(writes, { backupDir });
  return {
    outDir,
    validity: opts.validity.text,
    keyType: opts.keyType,
    cas,
    backupDir,
    backedUp,
    recovered,
    warnings,
  };
}

/** The directories the three CAs live in under `dir`. */
function caDirs(dir: string): string[] {
  return [...new Set(KUBEADM_CAS.map((c) => path.dirname(path.join(dir, c.cert))))];
}

export interface CaExtendOptions {
  pkiDir: string;
  /** undefined: the parent of pkiDir when it is named `pki` (kubeadm's layout), else none */
  kubeconfigDir?: string;
  backupDir?: string;
  validity: Validity;
  /** a node without CA keys: install these already extended CA certificates instead */
  newCaDir?: string;
  /** allow a CA to end earlier than now, or before a certificate it signed (see core/lifetime) */
  allowShorter?: boolean;
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
  /** CA certificates already current (--new-ca-dir re-run): left as they are */
  unchanged: string[];
  recovered: RecoveryReport;
  /** lifetime rule violations allowed by --allow-shorter */
  warnings: string[];
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
  /** the file's new text: only this CA's PEM block replaced (a bundle keeps the others) */
  text: string;
}

/** A certificate some CA may have signed: under the PKI dir or a kubeconfig's client certificate. */
interface IssuedCert {
  name: string;
  cert: X509Certificate;
}

/** Leaf certificates under `pkiDir` and the client certificates embedded in the kubeconfigs. */
function issuedCertificates(pkiDir: string, kubeconfigs: string[]): IssuedCert[] {
  const out: IssuedCert[] = [];
  for (const f of certFilesUnder(pkiDir)) {
    try {
      for (const cert of parseCertificatesPem(readBoundedText(f, 'certificate'), f))
        if (!cert.ca) out.push({ name: f, cert });
    } catch {
      // unreadable files are check's business, not a reason to stop here
    }
  }
  for (const conf of kubeconfigs) {
    try {
      for (const ref of kubeconfigCertRefs(readBoundedText(conf, 'kubeconfig'), conf)) {
        const cert = ref.kind === 'client' && ref.data ? decodeCertData(ref.data) : undefined;
        if (cert) out.push({ name: `${conf}: ${ref.entry}`, cert });
      }
    } catch {
      // as above
    }
  }
  return out;
}

/** Re-signs each CA present in `pkiDir` with its own key. */
async function resignCas(
  pkiDir: string,
  issued: IssuedCert[],
  validity: Validity,
  now: Date,
): Promise<{ prepared: PreparedCa[]; skipped: string[] }> {
  const pairs: { name: string; pair: CaPair; text: string }[] = [];
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
    const text = readFileOrFail(certFile, 'CA certificate').toString('utf8');
    const pair = await loadCaPair(
      certFile,
      text,
      keyFile,
      readFileOrFail(keyFile, 'CA key', 'key').toString('utf8'),
    );
    pairs.push({ name: c.name, pair, text });
  }
  const prepared: PreparedCa[] = [];
  for (const { name, pair, text } of pairs) {
    // Certificates already issued whose AKID names the CA's serial only chain if it is kept.
    const namer = akidHasIssuerSerial(pair.der)
      ? pair.certFile
      : issued.find((c) => isIssuedBy(c.cert, pair.cert) && akidHasIssuerSerial(new Uint8Array(c.cert.raw)))
          ?.name;
    const serialKept = namer !== undefined;
    if (serialKept && !isPositiveInteger(tbsParts(pair.der).serial)) {
      // a new certificate gets a positive serial (RFC 5280); one naming serial 0 cannot be made
      throw new KfError(
        `${pair.certFile} has serial ${pair.cert.serialNumber} and ${namer} names that serial in its authority key identifier: a re-signed CA would need serial ${pair.cert.serialNumber} again, which is not a valid serial (RFC 5280: positive)`,
        'reissue the certificates whose authority key identifier names the CA serial with keyid only (openssl: authorityKeyIdentifier=keyid), then run ca extend again (see README, ca extend); nothing was written',
      );
    }
    const fresh = await extendCa(pair, validity.hours, now, serialKept);
    prepared.push({
      name,
      certFile: pair.certFile,
      keyFile: pair.keyFile,
      oldCert: pair.cert,
      fresh,
      serialKept,
      text: replacePemBlock(text, pair.block!, fresh.pem),
    });
  }
  return { prepared, skipped };
}

/**
 * For nodes without the CA keys (workers): takes the CAs already extended on a control-plane
 * node from `newCaDir`; each replaces the certificate of the same CA (isSameCa) in the local
 * file, other certificates of a bundle stay. A CA already identical is left alone (a re-run).
 */
function adoptExtendedCas(
  pkiDir: string,
  newCaDir: string,
): { prepared: PreparedCa[]; skipped: string[]; unchanged: string[] } {
  const prepared: PreparedCa[] = [];
  const skipped: string[] = [];
  const unchanged: string[] = [];
  for (const c of KUBEADM_CAS) {
    const certFile = path.join(pkiDir, c.cert);
    const newFile = path.join(newCaDir, c.cert);
    if (!fs.existsSync(certFile) || !fs.existsSync(newFile)) {
      skipped.push(c.cert);
      continue;
    }
    const text = readFileOrFail(certFile, 'CA certificate').toString('utf8');
    const local = pemCertificates(text, certFile);
    const fresh = parseCertificatesPem(
      readFileOrFail(newFile, 'extended CA certificate').toString('utf8'),
      newFile,
    );
    let pair: { block: (typeof local)[number]; cert: X509Certificate } | undefined;
    for (const block of local) {
      const match = fresh.find((f) => isSameCa(block.cert, f));
      if (match) {
        pair = { block, cert: match };
        break;
      }
    }
    if (!pair) {
      assertSameCa(local[0]!.cert, certFile, fresh[0]!, newFile); // throws the reason
      throw new KfError(
        `${newFile} is not the same CA as ${certFile}`,
        'copy the CA certificates that ca extend wrote on a control-plane node of this cluster',
      );
    }
    if (pair.block.cert.raw.equals(pair.cert.raw)) {
      unchanged.push(certFile);
      continue;
    }
    const pem = `${pair.cert.toString().trim()}\n`;
    prepared.push({
      name: c.name,
      certFile,
      oldCert: pair.block.cert,
      fresh: { pem, cert: pair.cert },
      serialKept: pair.block.cert.serialNumber === pair.cert.serialNumber,
      text: replacePemBlock(text, pair.block, pem),
    });
  }
  return { prepared, skipped, unchanged };
}

/**
 * `ca extend`: every CA present is re-signed with its own key (same subject, key and
 * extensions; see extendCa), or with `newCaDir` replaced by the copy already extended on a
 * control-plane node. What an interrupted run left is finished or put back first. Everything is
 * prepared and checked in memory (the lifetime rule included); then the old certificates and
 * the kubeconfigs that change are backed up, then all files are replaced in one transaction.
 */
export async function caExtend(opts: CaExtendOptions): Promise<CaExtendResult> {
  const now = opts.now ?? new Date();
  const pkiDir = path.resolve(opts.pkiDir);
  if (!fs.existsSync(pkiDir) || !fs.statSync(pkiDir).isDirectory()) {
    throw new KfError(
      `PKI directory ${pkiDir} does not exist`,
      'pass --pki-dir with the directory holding ca.crt (/etc/kubernetes/pki)',
    );
  }
  if (opts.newCaDir !== undefined && !fs.existsSync(opts.newCaDir)) {
    throw new KfError(
      `--new-ca-dir ${opts.newCaDir} does not exist`,
      "pass the directory holding the control plane's extended ca.crt",
    );
  }
  const kubeconfigDir =
    opts.kubeconfigDir !== undefined ? path.resolve(opts.kubeconfigDir) : defaultKubeconfigDir(pkiDir);
  if (opts.kubeconfigDir !== undefined && !fs.existsSync(kubeconfigDir!)) {
    throw new KfError(
      `kubeconfig directory ${kubeconfigDir} does not exist`,
      'pass --kubeconfig-dir with the directory holding admin.conf (/etc/kubernetes)',
    );
  }
  const recovered = recoverInterrupted([...caDirs(pkiDir), ...(kubeconfigDir ? [kubeconfigDir] : [])]);
  const confFiles = kubeconfigDir ? listKubeconfigs(kubeconfigDir) : [];
  const issued = issuedCertificates(pkiDir, confFiles);
  const { prepared, skipped, unchanged } =
    opts.newCaDir !== undefined
      ? adoptExtendedCas(pkiDir, path.resolve(opts.newCaDir))
      : { ...(await resignCas(pkiDir, issued, opts.validity, now)), unchanged: [] as string[] };
  if (prepared.length === 0 && unchanged.length === 0) {
    throw new KfError(
      `no CA to extend in ${pkiDir} (looked for ca.crt, etcd/ca.crt, front-proxy-ca.crt${opts.newCaDir ? ` and the same names in ${opts.newCaDir}` : ''})`,
      'pass --pki-dir with the cluster PKI (/etc/kubernetes/pki)',
    );
  }
  const extended: CaExtendResult['extended'] = [];
  const writes: StagedFile[] = [];
  // Symbolic links are written through to their targets inside the directories named here.
  const roots = [pkiDir, ...(kubeconfigDir ? [kubeconfigDir] : [])];
  const replacements: CaReplacement[] = [];
  const violations: string[] = [];
  for (const p of prepared) {
    const mode = fs.statSync(p.certFile).mode & 0o777;
    writes.push({
      file: writeTarget(p.certFile, roots, 'CA certificate'),
      data: p.text,
      mode: mode || CERT_MODE,
    });
    replacements.push({
      oldDer: Buffer.from(p.oldCert.raw),
      newPem: p.fresh.pem,
      newCert: p.fresh.cert,
      caFile: p.certFile,
    });
    violations.push(
      ...lifetimeViolations({
        name: `the extended ${path.relative(pkiDir, p.certFile)}`,
        notAfter: iso(p.fresh.cert),
        current: { name: `the CA in ${p.certFile}`, notAfter: iso(p.oldCert) },
        issued: issued
          .filter((c) => isIssuedBy(c.cert, p.oldCert))
          .map((c) => ({ name: c.name, notAfter: iso(c.cert) })),
      }),
    );
    extended.push({
      ...summary(p.name, p.certFile, p.keyFile, p.fresh),
      oldNotAfter: iso(p.oldCert).toISOString(),
      oldSerial: p.oldCert.serialNumber,
      serialKept: p.serialKept,
    });
  }
  // Kubeconfigs also follow CAs left unchanged (a re-run after an interruption may find them behind).
  if (opts.newCaDir !== undefined) {
    for (const file of unchanged) {
      for (const cert of parseCertificatesPem(readBoundedText(file, 'certificate'), file)) {
        if (cert.ca)
          replacements.push({
            oldDer: Buffer.from(cert.raw),
            newPem: `${cert.toString().trim()}\n`,
            newCert: cert,
            caFile: file,
          });
      }
    }
  }

  const kubeconfigs: CaExtendResult['kubeconfigs'] = [];
  const kubeconfigsUnmatched: CaExtendResult['kubeconfigsUnmatched'] = [];
  const changedConfs: string[] = [];
  for (const file of confFiles) {
    const text = readFileOrFail(file, 'kubeconfig', 'kubeconfig').toString('utf8');
    const r = replaceCaData(text, file, replacements);
    if (r.unmatched.length > 0) kubeconfigsUnmatched.push({ file, clusters: r.unmatched });
    if (r.changes.length === 0) continue;
    for (const c of r.changes) {
      const fresh = replacements.find((x) => x.caFile === c.caFile)!;
      violations.push(
        ...lifetimeViolations({
          name: `the CA data of cluster ${c.cluster} in ${file}`,
          notAfter: iso(fresh.newCert),
          current: { name: 'the CA data there', notAfter: c.replacedNotAfter },
        }),
      );
    }
    writes.push({
      file: writeTarget(file, roots, 'kubeconfig'),
      data: r.text,
      mode: fs.statSync(file).mode & 0o777,
    });
    kubeconfigs.push({ file, clusters: r.changes.map((c) => c.cluster) });
    changedConfs.push(file);
  }
  const warnings = enforceLifetimes(
    violations,
    opts.allowShorter ?? false,
    'pass a longer --validity (e.g. 200y)',
  );
  const uniqueWrites = oneWritePerFile(writes);

  const backupDir = path.resolve(opts.backupDir ?? defaultBackupDir(pkiDir, now));
  const result: CaExtendResult = {
    pkiDir,
    validity: opts.newCaDir !== undefined ? 'as in --new-ca-dir' : opts.validity.text,
    extended,
    skipped,
    kubeconfigDir,
    kubeconfigs,
    kubeconfigsUnmatched,
    backupDir,
    backedUp: [],
    unchanged,
    recovered,
    warnings,
  };
  if (writes.length === 0) {
    throw new KfError(
      `every CA in ${pkiDir} is already identical to ${opts.newCaDir ?? 'the new one'} and every kubeconfig embeds it: nothing to install`,
      'run ca extend on a control-plane node first, then copy its result here (if you did, this node already has it)',
    );
  }
  if (fs.existsSync(backupDir) && fs.readdirSync(backupDir).length > 0) {
    throw new KfError(
      `backup directory ${backupDir} is not empty`,
      'pass an empty or new --backup-dir; nothing was written',
    );
  }
  assertWritableDir(backupDir, 'backup directory');
  assertWritableDir(pkiDir, 'PKI directory');
  for (const p of prepared) assertWritableDir(path.dirname(p.certFile), 'PKI directory');
  if (kubeconfigDir && changedConfs.length > 0) assertWritableDir(kubeconfigDir, 'kubeconfig directory');

  result.backedUp = [
    ...backupFiles(
      prepared.map((p) => p.certFile),
      pkiDir,
      path.join(backupDir, 'pki'),
    ),
    ...(kubeconfigDir ? backupFiles(changedConfs, kubeconfigDir, backupDir) : []),
  ];
  replaceFiles(uniqueWrites, { backupDir });
  return result;
}

/**
 * Several names may lead to one file (links): it is written once, and only if every name
 * wants the same content for it (two CAs in one file through two links would not).
 */
function oneWritePerFile(writes: StagedFile[]): StagedFile[] {
  const byFile = new Map<string, StagedFile>();
  for (const w of writes) {
    const seen = byFile.get(w.file);
    if (!seen) byFile.set(w.file, w);
    else if (Buffer.compare(Buffer.from(seen.data), Buffer.from(w.data)) !== 0) {
      throw new KfError(
        `${w.file} is reached through two links that would each give it different content`,
        'replace the links by separate files and run again; nothing was written',
      );
    }
  }
  return [...byFile.values()];
}
