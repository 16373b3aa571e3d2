import crypto, { X509Certificate, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { isKfError, messageOf } from '../../core/errors.js';
import { outlivesIssuerProblem } from '../../core/lifetime.js';
import { isIssuedBy, parseCertificatesPem } from './certs.js';
import { certFilesUnder } from './files.js';
import { decodeCertData, kubeconfigCertRefs, listKubeconfigs } from './kubeconfig.js';

const YEAR_MS = 365 * 24 * 3_600_000;

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

/**
 * The expiry report: every certificate under `pkiDir` (recursively), the kubelet's
 * certificates and every kubeconfig's CA and client certificate, each with years left, CA or
 * leaf, key match and the CA it chains to. Unreadable files are listed, never thrown.
 */
export function checkPki(opts: CheckOptions): CheckReport {
  const now = opts.now ?? new Date();
  const minYears = opts.minYears ?? 0;
  const errors: CheckReport['errors'] = [];
  const missing: string[] = [];
  const found: Found[] = [];
  const seen = new Set<string>();

  const addFile = (
    file: string,
    source: string,
    keyFile?: string,
    informational?: string,
    embedded?: CheckRow['embedded'],
  ) => {
    let real: string;
    let pem: string;
    try {
      real = fs.realpathSync(file);
      pem = fs.readFileSync(real, 'utf8');
    } catch (err) {
      errors.push({ file: source, message: messageOf(err) });
      return;
    }
    let certs: X509Certificate[];
    try {
      certs = parseCertificatesPem(pem, file);
    } catch (err) {
      errors.push({ file: source, message: isKfError(err) ? err.what : messageOf(err) });
      return;
    }
    let key: KeyObject | undefined;
    let keyError: string | undefined;
    try {
      key = keyFromPem(pem);
      if (!key && keyFile && fs.existsSync(keyFile)) key = crypto.createPrivateKey(fs.readFileSync(keyFile));
    } catch (err) {
      keyError = `key unreadable: ${messageOf(err).split('\n')[0]}`;
    }
    certs.forEach((cert, i) => {
      const id = `${real}#${cert.fingerprint256}`;
      if (seen.has(id)) return;
      seen.add(id);
      const label = certs.length > 1 ? `${source} [${i + 1}/${certs.length}]` : source;
      found.push({
        source: label,
        file,
        embedded,
        cert,
        key: i === 0 ? key : undefined,
        keyError: i === 0 ? keyError : undefined,
        informational,
      });
    });
  };

  const dirExists = (dir: string) => {
    if (fs.existsSync(dir)) return true;
    missing.push(dir);
    return false;
  };

  if (dirExists(opts.pkiDir)) {
    for (const file of certFilesUnder(opts.pkiDir)) {
      const keyFile = file.endsWith('.crt') ? file.replace(/\.crt$/, '.key') : undefined;
      addFile(file, file, keyFile);
    }
  }
  if (opts.kubeletDir !== undefined && dirExists(opts.kubeletDir)) {
    const current = path.join(opts.kubeletDir, 'kubelet-client-current.pem');
    if (fs.existsSync(current)) addFile(current, current);
    const serving = path.join(opts.kubeletDir, 'kubelet.crt');
    if (fs.existsSync(serving)) {
      addFile(
        serving,
        serving,
        path.join(opts.kubeletDir, 'kubelet.key'),
        "kubelet's self-signed serving certificate: 1 year, not configurable; not counted",
      );
    }
  }
  if (opts.kubeconfigDir !== undefined && dirExists(opts.kubeconfigDir)) {
    for (const conf of listKubeconfigs(opts.kubeconfigDir)) {
      let refs;
      try {
        refs = kubeconfigCertRefs(fs.readFileSync(conf, 'utf8'), conf);
      } catch (err) {
        errors.push({ file: conf, message: isKfError(err) ? err.what : messageOf(err) });
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
            errors.push({ file: source, message: 'embedded certificate data does not parse' });
            continue;
          }
          let key: KeyObject | undefined;
          let keyError: string | undefined;
          try {
            if (ref.keyData) key = crypto.createPrivateKey(Buffer.from(ref.keyData, 'base64'));
            else if (ref.keyFile) key = crypto.createPrivateKey(fs.readFileSync(ref.keyFile));
          } catch (err) {
            keyError = `key unreadable: ${messageOf(err).split('\n')[0]}`;
          }
          found.push({ source, file: conf, embedded, cert, key, keyError });
        } else if (ref.file !== undefined) {
          addFile(ref.file, `${source} -> ${ref.file}`, ref.keyFile, undefined, embedded);
        }
      }
    }
  }

  const cas = found.filter((f) => f.cert.ca);
  const rows: CheckRow[] = found.map((f) => {
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
  });

  const problems = [
    ...rows.flatMap((r) => r.problems.map((p) => `${r.source}: ${p}`)),
    ...errors.map((e) => `${e.file}: ${e.message}`),
  ];
  if (found.length === 0 && errors.length === 0) problems.push(`no certificates found under ${opts.pkiDir}`);
  return {
    ok: problems.length === 0,
    minYears,
    checkedAt: now.toISOString(),
    rows,
    errors,
    missing,
    problems,
  };
}

function cn(name: string): string {
  const m = /CN=([^,]+)/.exec(name);
  return m ? m[1]! : name;
}

/** The report as a table for people. `base` paths are shortened relative to it. */
export function formatCheckReport(report: CheckReport, base?: string): string {
  const rel = (s: string) => (base ? s.split(base + path.sep).join('') : s);
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
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cols: string[]) =>
    cols
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  const out = [fmt(header), ...lines.map(fmt)];
  for (const r of report.rows) if (r.informational) out.push(`note: ${rel(r.source)}: ${r.informational}`);
  for (const m of report.missing) out.push(`note: ${m} not found, skipped`);
  for (const e of report.errors) out.push(`unreadable: ${rel(e.file)}: ${e.message}`);
  out.push(
    report.ok
      ? `OK: every certificate has at least ${report.minYears} years left and chains to its CA`
      : `FAILED (${report.problems.length}):`,
  );
  for (const p of report.problems) out.push(`  ${rel(p)}`);
  return out.join('\n');
}
