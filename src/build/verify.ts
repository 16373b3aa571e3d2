import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Platform, Validities } from '../core/types.js';
import { KfError, messageOf } from '../core/errors.js';
import { formatPlatform } from '../core/platform.js';
import { HOUR_MS, YEAR_MS } from '../core/validity.js';
import { parseKubeVersion, VERSION_NUMBER_FIELDS } from '../core/version.js';
import { certsPhaseInvocation, VERSION_JSON_ARGS } from '../core/verify-invocation.js';
import { findEmulator, type Emulator } from './emulator.js';

const run = promisify(execFile);

/** NotAfter may fall this far short of start+validity (clock reads, second rounding). */
export const VALIDITY_TOLERANCE_MS = 10 * 60_000;

export interface CertificateCheck {
  /** path relative to the cert dir, e.g. "etcd/ca.crt" */
  file: string;
  kind: 'ca' | 'leaf';
  subject: string;
  notAfter: string;
  /** years (365 days) from the start of the verify run to NotAfter */
  years: number;
  expectedYears: number;
  ok: boolean;
}

export interface VersionCheck {
  gitVersion: string;
  gitCommit: string;
  goVersion: string;
  major: string;
  minor: string;
  platform: string;
  ok: boolean;
}

/** How the binary was run: on this host, through a user-mode emulator, or not at all. */
export type Execution = 'native' | 'emulated' | 'not executed';

export interface VerifyReport {
  /** false for a binary of a foreign platform no emulator here runs: then nothing was checked, nothing passed */
  executed: boolean;
  /** why not executed */
  reason?: string;
  execution: Execution;
  /** with execution "emulated": what ran it, e.g. /usr/bin/qemu-aarch64-static */
  emulator?: string;
  /** wall time of the runs (version and certs), seconds */
  seconds?: number;
  passed: boolean;
  version?: VersionCheck;
  certificates: CertificateCheck[];
  /** one line per shortfall or mismatch */
  failures: string[];
}

export interface VerifyBinaryInput {
  binary: string;
  /**
   * the target; without one the binary's own version must be a release version (not v0.0.0-…).
   * The other fields, when given, must match too: what the original `kubeadm version` printed
   * (major and minor; on 1.33+ the emulation and min-compatibility fields, empty in kubeadm's own
   * output, which an -X flag never sets).
   */
  expected?:
    | ({ gitVersion: string; gitCommit: string } & Partial<
        Record<(typeof EXTRA_VERSION_FIELDS)[number], string>
      >)
    | undefined;
  validity: Validities;
  /** platform the binary was built for; defaults to this host's */
  platform?: Platform;
  /** --emulator: the emulator to run a foreign binary with, or "none"; default: found here */
  emulator?: string | undefined;
}

/** Fields of `version -o json` compared when the target carries them (absent in the output = ""). */
export const EXTRA_VERSION_FIELDS = VERSION_NUMBER_FIELDS;

const GOARCH: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
};

/** This host as a Go platform, e.g. linux/amd64. */
export function hostPlatform(): Platform {
  return { os: process.platform, arch: GOARCH[process.arch] ?? process.arch };
}

// Under a user-mode emulator kubeadm runs several times slower (an arm64 certs phase ~12 s here).
const NATIVE_TIMEOUT_MS = 120_000;
const EMULATED_TIMEOUT_MS = 600_000;

async function runBinary(binary: string, args: string[], emulator?: Emulator): Promise<string> {
  const [file, argv] = emulator?.command ? [emulator.command, [binary, ...args]] : [binary, args];
  try {
    const { stdout } = await run(file, argv, {
      timeout: emulator ? EMULATED_TIMEOUT_MS : NATIVE_TIMEOUT_MS,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; code?: string | number };
    const detail = (e.stderr ?? '').trim().split('\n').filter(Boolean).pop() ?? messageOf(err);
    throw new KfError(
      `'${path.basename(binary)} ${args.join(' ')}'${emulator ? ` (under ${emulator.description})` : ''} failed: ${detail}`,
      emulator
        ? `check that ${binary} is a kubeadm binary and that ${emulator.description} runs it (or pass --emulator none)`
        : `check that ${binary} is a kubeadm binary for this platform`,
    );
  }
}

function listCertificates(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const name = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...listCertificates(dir, name));
    else if (entry.name.endsWith('.crt')) out.push(name);
  }
  return out.sort();
}

/**
 * Runs the binary: `version -o json` must report the expected gitVersion and gitCommit (and the
 * platform it was built for); then `init phase certs all` into a temp dir, with the arguments
 * its era accepts, and every certificate's NotAfter is checked against the expected leaf or CA
 * validity. A binary for another platform runs the same checks under a user-mode emulator when
 * one is here (--emulator, binfmt_misc, qemu-<arch>-static on PATH); without one it is reported
 * as not executed (never as passed).
 */
export async function verifyBinary(input: VerifyBinaryInput): Promise<VerifyReport> {
  const host = hostPlatform();
  const platform = input.platform ?? host;
  let emulator: Emulator | undefined;
  if (platform.os !== host.os || platform.arch !== host.arch) {
    const choice = findEmulator(platform, host, { explicit: input.emulator });
    if ('reason' in choice) {
      return {
        executed: false,
        reason: choice.reason,
        execution: 'not executed',
        passed: false,
        certificates: [],
        failures: [],
      };
    }
    emulator = choice.emulator;
  }
  if (!fs.existsSync(input.binary)) {
    throw new KfError(`no binary at ${input.binary}`, 'pass the path of the kubeadm binary to verify');
  }
  // a bare name ("kubeadm-custom") would be looked up on PATH, not in the current directory
  const binary = path.resolve(input.binary);
  const failures: string[] = [];
  const t0 = performance.now();
  const raw = await runBinary(binary, [...VERSION_JSON_ARGS], emulator);
  let info: Record<string, string>;
  try {
    info = (JSON.parse(raw) as { clientVersion: Record<string, string> }).clientVersion;
    if (!info || typeof info.gitVersion !== 'string') throw new Error('no clientVersion.gitVersion');
  } catch (err) {
    throw new KfError(
      `'version -o json' printed no kubeadm version: ${messageOf(err)}`,
      `check that ${input.binary} is a kubeadm binary`,
    );
  }
  const own = { gitVersion: info.gitVersion ?? '', gitCommit: info.gitCommit ?? '' };
  if (input.expected) {
    if (own.gitVersion !== input.expected.gitVersion)
      failures.push(`gitVersion is ${own.gitVersion}, expected ${input.expected.gitVersion}`);
    if (own.gitCommit !== input.expected.gitCommit)
      failures.push(`gitCommit is ${own.gitCommit}, expected ${input.expected.gitCommit}`);
    for (const key of EXTRA_VERSION_FIELDS) {
      const want = input.expected[key];
      if (want === undefined) continue;
      const got = typeof info[key] === 'string' ? info[key] : '';
      if (got !== want)
        failures.push(
          `${key} is ${JSON.stringify(got)}, expected ${JSON.stringify(want)} (what the original kubeadm reports)`,
        );
    }
  } else if (!/^v[1-9]\d*\.\d+\.\d+/.test(own.gitVersion) || !/^[0-9a-f]{40}$/.test(own.gitCommit)) {
    // An -X flag that missed its package leaves v0.0.0-master+…, which kubeadm init refuses.
    failures.push(
      `the binary reports ${own.gitVersion} ${own.gitCommit}: not a release version (wrong -X flags at build time?)`,
    );
  }
  // a binary run under the wrong emulator, or a host binary named as a foreign one
  if (typeof info.platform === 'string' && info.platform !== formatPlatform(platform))
    failures.push(`the binary reports platform ${info.platform}, expected ${formatPlatform(platform)}`);
  const version: VersionCheck = {
    ...own,
    goVersion: info.goVersion ?? '',
    major: info.major ?? '',
    minor: info.minor ?? '',
    platform: info.platform ?? '',
    ok: failures.length === 0,
  };
  const kubernetesVersion = input.expected?.gitVersion ?? own.gitVersion;
  const executedReport = (certificates: CertificateCheck[]): VerifyReport => ({
    executed: true,
    execution: emulator ? 'emulated' : 'native',
    ...(emulator ? { emulator: emulator.description } : {}),
    // milliseconds kept: a native run of a small binary can take well under 0.1 s
    seconds: Math.round(performance.now() - t0) / 1000,
    passed: failures.length === 0,
    version,
    certificates,
    failures,
  });

  const certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kubeadm-forever-verify-'));
  // the config (1.15 only) sits beside the cert dir, not in it: only certificates are listed there
  const configPath = `${certDir}.yaml`;
  let invocation;
  try {
    invocation = certsPhaseInvocation(
      parseKubeVersion(kubernetesVersion, 'the version to verify'),
      kubernetesVersion,
      certDir,
      configPath,
    );
  } catch (err) {
    fs.rmSync(certDir, { recursive: true, force: true });
    // a binary that reported a wrong version already failed: say that, not that it cannot be run
    if (failures.length > 0) return executedReport([]);
    throw err;
  }
  const certificates: CertificateCheck[] = [];
  try {
    const started = Date.now();
    try {
      if (invocation.config !== undefined)
        fs.writeFileSync(configPath, invocation.config, { mode: 0o600, flag: 'wx' });
      await runBinary(binary, invocation.args, emulator);
    } finally {
      if (invocation.config !== undefined) fs.rmSync(configPath, { force: true });
    }
    const files = listCertificates(certDir);
    if (files.length === 0) failures.push('init phase certs all wrote no certificates');
    for (const file of files) {
      const cert = new X509Certificate(fs.readFileSync(path.join(certDir, file)));
      const kind = cert.ca ? 'ca' : 'leaf';
      const hours = kind === 'ca' ? input.validity.ca.hours : input.validity.leaf.hours;
      const notAfter = new Date(cert.validTo);
      const ok = notAfter.getTime() >= started + hours * HOUR_MS - VALIDITY_TOLERANCE_MS;
      const check: CertificateCheck = {
        file,
        kind,
        subject: cert.subject.replace(/\n/g, ', '),
        notAfter: notAfter.toISOString(),
        years: Math.round(((notAfter.getTime() - started) / YEAR_MS) * 100) / 100,
        expectedYears: Math.round(((hours * HOUR_MS) / YEAR_MS) * 100) / 100,
        ok,
      };
      certificates.push(check);
      if (!ok)
        failures.push(
          `${file} (${kind}) expires ${check.notAfter}: ${check.years} years, expected ${check.expectedYears}`,
        );
    }
  } finally {
    fs.rmSync(certDir, { recursive: true, force: true });
  }
  return executedReport(certificates);
}

/** Human lines for a report. */
export function describeVerify(report: VerifyReport): string[] {
  if (!report.executed) return [`verify: not executed (${report.reason})`];
  const how = report.execution === 'emulated' ? `emulated by ${report.emulator}` : 'native';
  const took = report.seconds !== undefined ? `, ${report.seconds.toFixed(1)} s` : '';
  const lines = [`verify: ${report.passed ? 'passed' : 'FAILED'} (executed: ${how}${took})`];
  if (report.version)
    lines.push(
      `  version ${report.version.gitVersion} ${report.version.gitCommit} (${report.version.goVersion}, minor ${report.version.minor})`,
    );
  for (const c of report.certificates) {
    lines.push(
      `  ${c.ok ? 'ok  ' : 'FAIL'} ${c.file.padEnd(32)} ${c.kind.padEnd(4)} ${c.notAfter.slice(0, 10)}  ${c.years.toFixed(2)}y (expected ${c.expectedYears}y)`,
    );
  }
  for (const f of report.failures)
    if (!report.certificates.some((c) => f.startsWith(c.file))) lines.push(`  FAIL ${f}`);
  return lines;
}
