import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { UsageError, messageOf } from '../../core/errors.js';
import { isFileReadError, readBoundedFile, readBoundedText } from '../../adapters/bounded-read.js';
import { isIssuedBy, parseCertificatesPem } from './certs.js';
import { HOUR_MS, YEAR_MS } from '../../core/validity.js';
import type { CheckReport } from './pki-check.js';

/**
 * `check` on a live node: the certificate kube-apiserver actually serves (read from a TLS
 * handshake, not from a file: a renewed file is not served until the process restarts) and the
 * expiry of the API server's in-memory loopback client certificate, which it makes at start
 * with one year of validity and never renews (kubernetes#86552).
 */

/** client-go's GenerateSelfSignedCertKey: valid from start - 1h for 365 days. */
const LOOPBACK_VALID_MS = YEAR_MS - HOUR_MS;
/** Linux's USER_HZ, the unit of /proc/PID/stat's start time, is 100 on every architecture. */
const USER_HZ = 100;

export interface ApiserverProcess {
  pid: number;
  args: string[];
  startedAt: Date;
}

export interface LiveReport {
  /** "host:port" connected to, or null when nothing was asked and no API server runs here */
  endpoint: string | null;
  /** why there is no live part (no API server process in this network namespace, --apiserver none) */
  skipped?: string;
  served?: {
    subject: string;
    issuer: string;
    notBefore: string;
    notAfter: string;
    yearsLeft: number;
    fingerprint256: string;
    /** notBefore <= now <= notAfter */
    validNow: boolean;
    /** whether it chains to the cluster CA (<pki-dir>/ca.crt); null when that file is unreadable */
    issuedByClusterCa: boolean | null;
    /** whether it is the certificate in <pki-dir>/apiserver.crt; null when that file is unreadable */
    sameAsFile: boolean | null;
  };
  /** the handshake failed */
  error?: string;
  loopback?: { pid: number; startedAt: string; expiresAt: string; restartBy: string; daysLeft: number };
  warnings: string[];
  problems: string[];
}

/** The flag values of a command line: `--name=value` or `--name value`. */
export function flagValue(args: string[], name: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.startsWith(`--${name}=`)) return a.slice(name.length + 3);
    if (a === `--${name}` && i + 1 < args.length) return args[i + 1];
  }
  return undefined;
}

/** Where to reach an API server started with these flags from this network namespace. */
export function endpointOf(args: string[]): { host: string; port: number } {
  const port = Number(flagValue(args, 'secure-port') ?? '6443');
  const bind = flagValue(args, 'bind-address');
  const wildcard = bind === undefined || bind === '' || bind === '0.0.0.0' || bind === '::';
  return { host: wildcard ? '127.0.0.1' : bind, port };
}

/** "host:port" as given to --apiserver; IPv6 in brackets. */
export function parseEndpoint(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new UsageError(
      `invalid --apiserver ${JSON.stringify(value)}`,
      'pass HOST:PORT (e.g. 127.0.0.1:6443), auto or none',
    );
  }
  return { host: m[1] ?? m[2]!, port };
}

/** Start time of a process from /proc (boot time + start ticks). */
function processStart(pid: number, procDir: string): Date {
  const stat = fs.readFileSync(path.join(procDir, String(pid), 'stat'), 'utf8');
  // comm may contain spaces and parentheses: fields start after the last ")"
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const startTicks = Number(fields[19]);
  const btime = Number(/^btime (\d+)$/m.exec(fs.readFileSync(path.join(procDir, 'stat'), 'utf8'))?.[1]);
  return new Date((btime + startTicks / USER_HZ) * 1000);
}

/**
 * kube-apiserver processes in this process's network namespace (an API server elsewhere, e.g.
 * in a container with its own network, is not reachable as "this node's" one).
 */
export function findApiserverProcesses(procDir = '/proc'): ApiserverProcess[] {
  let ownNet: string;
  try {
    ownNet = fs.readlinkSync(path.join(procDir, 'self/ns/net'));
  } catch {
    return [];
  }
  const found: ApiserverProcess[] = [];
  for (const e of fs.readdirSync(procDir)) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    try {
      const args = fs
        .readFileSync(path.join(procDir, e, 'cmdline'), 'utf8')
        .split('\0')
        .filter((a, i, all) => a !== '' || i < all.length - 1);
      if (path.basename(args[0] ?? '') !== 'kube-apiserver') continue;
      if (fs.readlinkSync(path.join(procDir, e, 'ns/net')) !== ownNet) continue;
      found.push({ pid, args, startedAt: processStart(pid, procDir) });
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

/** One deadline for the whole probe of the served certificate: connect, TLS handshake and reading it. */
export const PROBE_TIMEOUT_MS = 10_000;

/** What a TLS server presented: its certificate and whatever chain it sent with it. */
export interface ServedChain {
  leaf: X509Certificate;
  /** the other certificates the server sent (intermediates, perhaps its CA), in the order sent */
  presented: X509Certificate[];
}

/**
 * The certificates a TLS server presents (no verification here: this reads, it trusts
 * nothing; checkLiveApiserver judges them). One deadline covers the connect, the handshake
 * and the read, and the socket is destroyed whatever happens: a server that completes the
 * handshake and then holds the connection open keeps nothing waiting.
 */
export function servedCertificate(
  host: string,
  port: number,
  timeoutMs = PROBE_TIMEOUT_MS,
): Promise<ServedChain> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      fn();
    };
    const timer = setTimeout(
      () =>
        settle(() =>
          reject(new Error(`no certificate within ${timeoutMs / 1000}s (connect and TLS handshake)`)),
        ),
      timeoutMs,
    );
    socket.once('secureConnect', () => {
      const peer = socket.getPeerCertificate(true);
      settle(() => {
        if (!peer?.raw) return reject(new Error('the server presented no certificate'));
        const presented: X509Certificate[] = [];
        const seen = new Set<tls.DetailedPeerCertificate>([peer]);
        for (
          let c = peer.issuerCertificate;
          c?.raw && !seen.has(c) && presented.length < 16;
          c = c.issuerCertificate
        ) {
          seen.add(c);
          presented.push(new X509Certificate(c.raw));
        }
        resolve({ leaf: new X509Certificate(peer.raw), presented });
      });
    });
    socket.once('error', (err) => settle(() => reject(err)));
    socket.once('close', () =>
      settle(() => reject(new Error('the server closed the connection during the handshake'))),
    );
  });
}

/** Whether `leaf` chains to one of `cas`, directly or through certificates the server presented. */
export function chainsToAny(
  leaf: X509Certificate,
  presented: X509Certificate[],
  cas: X509Certificate[],
): boolean {
  let current = leaf;
  const used = new Set<X509Certificate>();
  for (let depth = 0; depth <= presented.length; depth++) {
    if (cas.some((ca) => isIssuedBy(current, ca))) return true;
    const next = presented.find((p) => !used.has(p) && p.ca && isIssuedBy(current, p));
    if (!next) return false;
    used.add(next);
    current = next;
  }
  return false;
}

export interface LiveOptions {
  /** "auto" (the kube-apiserver process here), "none", or HOST:PORT */
  apiserver: string;
  pkiDir: string;
  minYears: number;
  now?: Date;
  procDir?: string;
}

/** A name from a remote certificate, one line, control characters escaped (it is untrusted input). */
function printable(name: string): string {
  return (
    name
      .replace(/\n/g, ', ')
      // eslint-disable-next-line no-control-regex -- matching control characters is the point
      .replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
  );
}

function years(ms: number): number {
  return Math.floor((ms / YEAR_MS) * 100) / 100;
}

/** The cluster CA certificates of `pkiDir` (ca.crt, perhaps a bundle), or why they cannot be read. */
function clusterCas(pkiDir: string): { file: string; cas?: X509Certificate[]; error?: string } {
  const file = path.join(pkiDir, 'ca.crt');
  try {
    return { file, cas: parseCertificatesPem(readBoundedText(file, 'certificate'), file) };
  } catch (err) {
    return { file, error: isFileReadError(err) ? err.reason : messageOf(err) };
  }
}

/**
 * The served certificate judged against what is on disk: issued by the cluster CA (an answer
 * from a proxy or another server is not the API server's), valid now, and the same as
 * apiserver.crt. "Restart" is advised only where a restart helps: the file on disk comes from
 * the cluster CA, is valid, and is newer than what is served.
 */
function judgeServed(
  report: LiveReport,
  cert: X509Certificate,
  presented: X509Certificate[],
  pkiDir: string,
  minYears: number,
  now: Date,
): void {
  const at = `served by ${report.endpoint}`;
  const notBefore = new Date(cert.validFrom);
  const notAfter = new Date(cert.validTo);
  const ca = clusterCas(pkiDir);
  const issuedByClusterCa = ca.cas ? chainsToAny(cert, presented, ca.cas) : null;
  const apiserverFile = path.join(pkiDir, 'apiserver.crt');
  let file: X509Certificate | undefined;
  try {
    file = new X509Certificate(readBoundedFile(apiserverFile, 'certificate'));
  } catch {
    // no file to compare with (a remote --apiserver, or another pki dir); check's file part says why
  }
  const sameAsFile = file ? file.fingerprint256 === cert.fingerprint256 : null;
  const validNow = notBefore <= now && now <= notAfter;
  report.served = {
    subject: printable(cert.subject),
    issuer: printable(cert.issuer),
    notBefore: notBefore.toISOString(),
    notAfter: notAfter.toISOString(),
    yearsLeft: years(notAfter.getTime() - now.getTime()),
    fingerprint256: cert.fingerprint256,
    validNow,
    issuedByClusterCa,
    sameAsFile,
  };
  if (issuedByClusterCa === false)
    report.problems.push(
      `${at}: not issued by the cluster CA (${printable(ca.file)}; issuer ${printable(cert.issuer)}): something other than this cluster's kube-apiserver answers there (a proxy, another server), or it serves another certificate`,
    );
  else if (issuedByClusterCa === null)
    report.problems.push(
      `${at}: cannot tell whether the cluster CA issued it: ${printable(ca.file)}: ${printable(ca.error ?? '')}`,
    );
  if (notBefore > now) report.problems.push(`${at}: not valid yet (valid from ${notBefore.toISOString()})`);
  else if (notAfter < now) report.problems.push(`${at}: expired`);
  else if (report.served.yearsLeft < minYears)
    report.problems.push(`${at}: ${report.served.yearsLeft} years left, under --min-years ${minYears}`);

  if (file && sameAsFile === false && issuedByClusterCa === true) {
    const fileFrom = new Date(file.validFrom);
    const fileTo = new Date(file.validTo);
    const newer = fileFrom >= notBefore && fileTo > notAfter;
    const fileValid = fileFrom <= now && now <= fileTo;
    if (newer && fileValid && ca.cas && ca.cas.some((c) => isIssuedBy(file, c)))
      report.warnings.push(
        `the API server still serves a certificate that ends ${notAfter.toISOString()}; ${printable(apiserverFile)} ends ${fileTo.toISOString()}: restart kube-apiserver to serve it`,
      );
  }
}

/** The live part of `check`. Never throws for an unreachable server: that is a problem in the report. */
export async function checkLiveApiserver(opts: LiveOptions): Promise<LiveReport> {
  const now = opts.now ?? new Date();
  const report: LiveReport = { endpoint: null, warnings: [], problems: [] };
  if (opts.apiserver === 'none') return { ...report, skipped: '--apiserver none' };
  const explicit = opts.apiserver === 'auto' ? undefined : parseEndpoint(opts.apiserver);
  const processes = findApiserverProcesses(opts.procDir);
  const proc = processes[0];
  if (!explicit && !proc)
    return { ...report, skipped: 'no kube-apiserver process in this network namespace' };
  const { host, port } = explicit ?? endpointOf(proc!.args);
  report.endpoint = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;

  try {
    const { leaf: cert, presented } = await servedCertificate(host, port);
    judgeServed(report, cert, presented, opts.pkiDir, opts.minYears, now);
  } catch (err) {
    report.error = printable(messageOf(err));
    report.problems.push(`served by ${report.endpoint}: no certificate read: ${report.error}`);
  }

  const own = explicit ? processes.find((p) => endpointOf(p.args).port === port) : proc;
  if (own) {
    const expires = new Date(own.startedAt.getTime() + LOOPBACK_VALID_MS);
    const daysLeft = Math.floor((expires.getTime() - now.getTime()) / 86_400_000);
    report.loopback = {
      pid: own.pid,
      startedAt: own.startedAt.toISOString(),
      expiresAt: expires.toISOString(),
      restartBy: expires.toISOString().slice(0, 10),
      daysLeft,
    };
    const line = `kube-apiserver (pid ${own.pid}) started ${own.startedAt.toISOString()}: its in-memory loopback certificate is valid for one year from then (kubernetes#86552), until ${expires.toISOString()}`;
    if (expires <= now) report.problems.push(`${line}: expired, restart kube-apiserver now`);
    else
      report.warnings.push(
        `${line}: restart kube-apiserver before ${report.loopback.restartBy} (${daysLeft} days)`,
      );
  }
  return report;
}

/** The file report with the live part added: `live` in JSON, its problems counted. */
export function withLive(report: CheckReport, live: LiveReport): CheckReport & { live: LiveReport } {
  const problems = [...report.problems, ...live.problems];
  return { ...report, ok: problems.length === 0, problems, live };
}

/** The live part as lines for the text report. */
export function formatLive(live: LiveReport): string {
  if (live.skipped) return `live: skipped (${live.skipped})`;
  const out: string[] = [];
  if (live.served) {
    const s = live.served;
    const file =
      s.sameAsFile === null ? '' : s.sameAsFile ? ', same as apiserver.crt' : ', NOT apiserver.crt';
    const chain =
      s.issuedByClusterCa === null
        ? ''
        : s.issuedByClusterCa
          ? ', issued by the cluster CA'
          : ', NOT issued by the cluster CA';
    out.push(
      `live: ${live.endpoint} serves ${s.subject.replace(/^CN=/, '')} until ${s.notAfter.slice(0, 10)} (${s.yearsLeft.toFixed(1)} years${chain}${file})`,
    );
  } else out.push(`live: ${live.endpoint}: ${live.error ?? 'no certificate read'}`);
  for (const w of live.warnings) out.push(`warning: ${printable(w)}`);
  return out.join('\n');
}
