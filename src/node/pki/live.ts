import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { UsageError, messageOf } from '../../core/errors.js';
import { HOUR_MS, YEAR_MS } from '../../core/validity.js';
import type { CheckReport } from './check.js';

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
    notAfter: string;
    yearsLeft: number;
    fingerprint256: string;
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

/** The leaf certificate a TLS server presents (no verification: this reads, it trusts nothing). */
export function servedCertificate(host: string, port: number, timeoutMs = 10_000): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
    const timer = setTimeout(
      () => socket.destroy(new Error(`no TLS handshake within ${timeoutMs / 1000}s`)),
      timeoutMs,
    );
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const peer = socket.getPeerCertificate();
      socket.end();
      if (!peer?.raw) reject(new Error('the server presented no certificate'));
      else resolve(new X509Certificate(peer.raw));
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
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
    const cert = await servedCertificate(host, port);
    const notAfter = new Date(cert.validTo);
    let sameAsFile: boolean | null = null;
    try {
      const file = new X509Certificate(fs.readFileSync(path.join(opts.pkiDir, 'apiserver.crt')));
      sameAsFile = file.fingerprint256 === cert.fingerprint256;
      if (!sameAsFile && new Date(file.validTo) > notAfter) {
        report.warnings.push(
          `the API server still serves a certificate that ends ${notAfter.toISOString()}; ${path.join(opts.pkiDir, 'apiserver.crt')} ends ${new Date(file.validTo).toISOString()}: restart kube-apiserver to serve it`,
        );
      }
    } catch {
      // no file to compare with (a remote --apiserver, or another pki dir)
    }
    report.served = {
      subject: printable(cert.subject),
      issuer: printable(cert.issuer),
      notAfter: notAfter.toISOString(),
      yearsLeft: years(notAfter.getTime() - now.getTime()),
      fingerprint256: cert.fingerprint256,
      sameAsFile,
    };
    if (notAfter < now) report.problems.push(`served by ${report.endpoint}: expired`);
    else if (report.served.yearsLeft < opts.minYears) {
      report.problems.push(
        `served by ${report.endpoint}: ${report.served.yearsLeft} years left, under --min-years ${opts.minYears}`,
      );
    }
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
    out.push(
      `live: ${live.endpoint} serves ${s.subject.replace(/^CN=/, '')} until ${s.notAfter.slice(0, 10)} (${s.yearsLeft.toFixed(1)} years${file})`,
    );
  } else out.push(`live: ${live.endpoint}: ${live.error ?? 'no certificate read'}`);
  for (const w of live.warnings) out.push(`warning: ${w}`);
  return out.join('\n');
}
