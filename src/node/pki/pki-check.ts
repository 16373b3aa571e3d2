import crypto, { X509Certificate, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { escapeControl, isKfError, messageOf } from '../../core/errors.js';
import { outlivesIssuerProblem } from '../../core/lifetime.js';
import { YEAR_MS } from '../../core/validity.js';
import { isIssuedBy, parseCertificatesPem } from './certs.js';
import { isFileReadError, readBoundedFile, readBoundedText } from '../../adapters/bounded-read.js';
import { scanCertFiles } from './files.js';
import { decodeCertData, kubeconfigCertRefs, scanKubeconfigs } from './kubeconfig.js';
import { KUBELET_CURRENT } from './kubelet.js';
import { formatTable } from '../../core/text-table.js';

export interface CheckOptions {
  pkiDir: string;
  /** kubeconfigs (*.conf) to read; skipped when undefined */
  kubeconfigDir?: string;
  /** kubelet client/serving certificates; skipped when undefined */
  kubeletDir?: string;
  /** fail any certificate with fewer years left (default 0: only expired ones fail) */
  minYears?: number;
  now?: Date;
}

export interface CheckRow {
  /** file, or "file: user NAME" / "file: cluster NAME" for kubeconfig entries */
  source: string;
  /** the file it was read from (a kubeconfig for embedded data), as found (links not resolved) */
  file: string;
  /** for kubeconfig entries: the `clusters[]` or `users[]` entry it came from */
  embedded?: { kind: 'cluster' | 'user'; name: string };
  /** serial number, hex as node:crypto gives it */
  serialNumber: string;
  notBefore: string;
  subject: string;
  issuer: string;
  notAfter: string;
  yearsLeft: number;
  kind: 'ca' | 'leaf';
  /** whether the private key beside it (or embedded) matches; null when there is none to compare */
  keyMatches: boolean | null;
  /** the CA certificate it verifies against ("self" for a self-signed CA); null when none does */
  chainsTo: string | null;
  /** shown but not counted (kubelet's self-signed serving certificate) */
  informational?: string;
  problems: string[];
}

export interface CheckReport {
  ok: boolean;
  minYears: number;
  checkedAt: string;
  rows: CheckRow[];
  /** files that could not be read or parsed */
  errors: { file: string; message: string }[];
  /** directories that were not there (not an error: e.g. no kubelet on this machine) */
  missing: string[];
  /** every reason `ok` is false, one line each */
  problems: string[];
}

interface Found {
  source: string;
  file: string;
  embedded?: CheckRow['embedded'];
  cert: X509Certificate;
  key?: KeyObject;
  /** a key file beside it or embedded that could not be read */
  keyError?: string;
  informational?: string;
}

function oneLine(name: string): string {
  return name.replace(/\n/g, ', ');
}

function keyFromPem(pem: string): KeyObject | undefined {
  const m = /-----BEGIN ((?:RSA |EC )?PRIVATE KEY)-----[\s\S]*?-----END \1-----/.exec(pem);
  return m ? crypto.createPrivateKey(m[0]) : undefined;
}

/** What the walk over the directories gathers before the rows are made. */
interface Collected {
  found: Found[];
  errors: CheckReport['errors'];
  missing: string[];
  /** file (links resolved) # certificate fingerprint: the same certificate is listed once */
  seen: Set<string>;
}

/** A key beside a certificate or embedded, read; its problem as text when it cannot be. */
function readKey(read: () => KeyObject | undefined): { key?: KeyObject; keyError?: string } {
  try {
    return { key: read() };
  } catch (err) {
    const reason = isFileReadError(err) ? `${err.file}: ${err.reason}` : messageOf(err).split('\n')[0];
    return { keyError: `key unreadable: ${reason}` };
  }
}

/** Every certificate of one PEM file (a bundle gives several rows), with the key beside it. */
function collectFile(
  c: Collected,
  file: string,
  source: string,
  extra: { keyFile?: string; informational?: string; embedded?: CheckRow['embedded'] } = {},
): void {
  let real: string;
  let pem: string;
  try {
    pem = readBoundedText(file, 'certificate');
    real = fs.realpathSync(file);
  } catch (err) {
    c.errors.push({ file: source, message: isFileReadError(err) ? err.reason : messageOf(err) });
    return;
  }
  let certs: X509Certificate[];
  try {
    certs = parseCertificatesPem(pem, file);
  } catch (err) {
    c.errors.push({ file: source, message: isKfError(err) ? err.what : messageOf(err) });
    return;
  }
  const { keyFile } = extra;
  const { key, keyError } = readKey(
    () =>
      keyFromPem(pem) ??
      (keyFile && fs.existsSync(keyFile)
        ? crypto.createPrivateKey(readBoundedFile(keyFile, 'key'))
        : undefined),
  );
  certs.forEach((cert, i) => {
    const id = `${real}#${cert.fingerprint256}`;
    if (c.seen.has(id)) return;
    c.seen.add(id);
    const label = certs.length > 1 ? `${source} [${i + 1}/${certs.length}]` : source;
    c.found.push({
      source: label,
      file,
      embedded: extra.embedded,
      cert,
      key: i === 0 ? key : undefined,
      keyError: i === 0 ? keyError : undefined,
      informational: extra.informational,
    });
  });
}

/** Whether a directory to read is there; a missing one is noted, not an error. */
function present(c: Collected, dir: string): boolean {
  if (fs.existsSync(dir)) return true;
  c.missing.push(dir);
  return false;
}

function collectPkiDir(c: Collected, pkiDir: string): void {
  const scan = scanCertFiles(pkiDir);
  c.errors.push(...scan.errors);
  for (const file of scan.files) {
    const keyFile = file.endsWith('.crt') ? file.replace(/\.crt$/, '.key') : undefined;
    collectFile(c, file, file, { keyFile });
  }
}

/** The kubelet's client certificate, and its serving one (shown, not counted). */
function collectKubeletDir(c: Collected, kubeletDir: string): void {
  const current = path.join(kubeletDir, KUBELET_CURRENT);
  if (fs.existsSync(current)) collectFile(c, current, current);
  const serving = path.join(kubeletDir, 'kubelet.crt');
  if (fs.existsSync(serving)) {
    collectFile(c, serving, serving, {
      keyFile: path.join(kubeletDir, 'kubelet.key'),
      informational: "kubelet's self-signed serving certificate: 1 year, not configurable; not counted",
    });
  }
}

/** Each kubeconfig's CA and client certificate, embedded or referenced by file. */
function collectKubeconfigs(c: Collected, kubeconfigDir: string): void {
  const scan = scanKubeconfigs(kubeconfigDir);
  c.errors.push(...scan.errors);
  for (const { file: conf, text } of scan.found) {
    let refs;
    try {
      refs = kubeconfigCertRefs(text, conf);
    } catch (err) {
      c.errors.push({ file: conf, message: isKfError(err) ? err.what : messageOf(err) });
      continue;
    }
    for (const ref of refs) {
      const source = `${conf}: ${ref.entry}`;
      const embedded = {
        kind: ref.kind === 'ca' ? 'cluster' : 'user',
        name: ref.entry.replace(/^(cluster|user) /, ''),
      } as const;
      if (ref.data !== undefined) {
        const cert = decodeCertData(ref.data);
        if (!cert) {
          c.errors.push({ file: source, message: 'embedded certificate data does not parse' });
          continue;
        }
        const { key, keyError } = readKey(() => {
          if (ref.keyData) return crypto.createPrivateKey(Buffer.from(ref.keyData, 'base64'));
          if (ref.keyFile) return crypto.createPrivateKey(readBoundedFile(ref.keyFile, 'key'));
          return undefined;
        });
        c.found.push({ source, file: conf, embedded, cert, key, keyError });
      } else if (ref.file !== undefined) {
        collectFile(c, ref.file, `${source} -> ${ref.file}`, { keyFile: ref.keyFile, embedded });
      }
    }
  }
}

/** One certificate's row: years left, key match, the CA it chains to, and what is wrong with it. */
function rowOf(f: Found, cas: Found[], now: Date, minYears: number): CheckRow {
  const notAfter = new Date(f.cert.validTo);
  const yearsLeft = Math.floor(((notAfter.getTime() - now.getTime()) / YEAR_MS) * 100) / 100;
  const problems: string[] = [];
  let keyMatches: boolean | null = null;
  if (f.key) keyMatches = f.cert.checkPrivateKey(f.key);
  if (f.keyError) {
    keyMatches = false;
    problems.push(f.keyError);
  } else if (keyMatches === false) problems.push('private key does not match');
  let chainsTo: string | null = null;
  if (f.cert.ca && isIssuedBy(f.cert, f.cert)) chainsTo = 'self';
  // of several CAs that verify it (a bundle holding the same CA twice), the longest-lived counts
  const issuer =
    chainsTo === 'self'
      ? undefined
      : cas
          .filter((c) => c !== f && isIssuedBy(f.cert, c.cert))
          .sort((a, b) => new Date(b.cert.validTo).getTime() - new Date(a.cert.validTo).getTime())[0];
  if (chainsTo !== 'self') chainsTo = issuer?.source ?? null;
  const validNow = new Date(f.cert.validFrom) <= now && now <= notAfter;
  if (!f.informational) {
    if (!validNow) problems.push(notAfter < now ? 'expired' : 'not valid yet');
    else if (yearsLeft < minYears) problems.push(`${yearsLeft} years left, under --min-years ${minYears}`);
    if (!f.cert.ca && chainsTo === null) problems.push('does not chain to any CA found');
    const outlives =
      issuer &&
      outlivesIssuerProblem(
        { name: f.source, notAfter },
        { name: issuer.source, notAfter: new Date(issuer.cert.validTo) },
      );
    if (outlives) problems.push(outlives);
  }
  return {
    source: f.source,
    file: f.file,
    ...(f.embedded ? { embedded: f.embedded } : {}),
    serialNumber: f.cert.serialNumber,
    notBefore: new Date(f.cert.validFrom).toISOString(),
    subject: oneLine(f.cert.subject),
    issuer: oneLine(f.cert.issuer),
    notAfter: notAfter.toISOString(),
    yearsLeft,
    kind: f.cert.ca ? 'ca' : 'leaf',
    keyMatches,
    chainsTo,
    ...(f.informational ? { informational: f.informational } : {}),
    problems,
  };
}

/**
 * The expiry report: every certificate under `pkiDir` (recursively), the kubelet's
 * certificates and every kubeconfig's CA and client certificate, each with years left, CA or
 * leaf, key match and the CA it chains to. Unreadable files are listed, never thrown.
 */
export function checkPki(opts: CheckOptions): CheckReport {
  const now = opts.now ?? new Date();
  const minYears = opts.minYears ?? 0;
  const c: Collected = { found: [], errors: [], missing: [], seen: new Set() };
  if (present(c, opts.pkiDir)) collectPkiDir(c, opts.pkiDir);
  if (opts.kubeletDir !== undefined && present(c, opts.kubeletDir)) collectKubeletDir(c, opts.kubeletDir);
  if (opts.kubeconfigDir !== undefined && present(c, opts.kubeconfigDir))
    collectKubeconfigs(c, opts.kubeconfigDir);

  const cas = c.found.filter((f) => f.cert.ca);
  const rows = c.found.map((f) => rowOf(f, cas, now, minYears));
  const problems = [
    ...rows.flatMap((r) => r.problems.map((p) => `${r.source}: ${p}`)),
    ...c.errors.map((e) => `${e.file}: ${e.message}`),
  ];
  if (c.found.length === 0 && c.errors.length === 0)
    problems.push(`no certificates found under ${opts.pkiDir}`);
  return {
    ok: problems.length === 0,
    minYears,
    checkedAt: now.toISOString(),
    rows,
    errors: c.errors,
    missing: c.missing,
    problems,
  };
}

function cn(name: string): string {
  const m = /CN=([^,]+)/.exec(name);
  return escapeControl(m ? m[1]! : name);
}

/**
 * The report as a table for people. `base` paths are shortened relative to it. File names and
 * certificate names are input: every control character in them is shown escaped.
 */
export function formatCheckReport(report: CheckReport, base?: string): string {
  const rel = (s: string) => escapeControl(base ? s.split(base + path.sep).join('') : s);
  const header = ['FILE', 'SUBJECT', 'ISSUER', 'NOT AFTER', 'YEARS', 'TYPE', 'KEY', 'CHAIN'];
  const lines = report.rows.map((r) => [
    rel(r.source),
    cn(r.subject),
    cn(r.issuer),
    r.notAfter.slice(0, 10),
    r.yearsLeft.toFixed(1),
    r.kind,
    r.keyMatches === null ? '-' : r.keyMatches ? 'ok' : 'MISMATCH',
    r.chainsTo === null
      ? r.kind === 'ca'
        ? '-'
        : 'NONE'
      : r.chainsTo === 'self'
        ? 'self'
        : `ok (${cn(report.rows.find((x) => x.source === r.chainsTo)?.subject ?? r.chainsTo)})`,
  ]);
  const out = [formatTable(header, lines)];
  for (const r of report.rows) if (r.informational) out.push(`note: ${rel(r.source)}: ${r.informational}`);
  for (const m of report.missing) out.push(`note: ${m} not found, skipped`);
  for (const e of report.errors) out.push(`unreadable: ${rel(e.file)}: ${e.message}`);
  // a copy of a CA that ends before another copy of the same CA on this node: left behind when
  // the CA was extended, it stops this node trusting the cluster on the day the old one ends
  const cas = report.rows.filter((r) => r.kind === 'ca');
  for (const r of cas) {
    const latest = cas
      .filter((x) => x.subject === r.subject && x.issuer === r.issuer)
      .reduce((a, x) => (x.notAfter > a ? x.notAfter : a), r.notAfter);
    if (latest > r.notAfter)
      out.push(
        `OLD CA COPY: ${rel(r.source)} ends ${r.notAfter}; another copy of ${cn(r.subject)} here ends ${latest}`,
      );
  }
  out.push(
    report.ok
      ? `OK: every certificate has at least ${report.minYears} years left and chains to its CA`
      : `FAILED (${report.problems.length}):`,
  );
  for (const p of report.problems) out.push(`  ${rel(p)}`);
  return out.join('\n');
}
