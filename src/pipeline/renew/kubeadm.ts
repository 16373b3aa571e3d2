import fs from 'node:fs';
import { KfError } from '../../errors.js';
import { execFile, firstLine, type ExecResult } from './exec.js';

/** The parts of a kubeadm binary's version `renew` needs. */
export interface KubeadmBinary {
  path: string;
  gitVersion: string;
  major: number;
  minor: number;
}

const gitVersionPattern = /^v(\d+)\.(\d+)\.(\d+)(?:[-+][0-9A-Za-z.+-]*)?$/;

/** Parses "v1.20.2" (with optional pre-release/build suffix); undefined when it is not one. */
export function parseGitVersion(text: string): { major: number; minor: number } | undefined {
  const m = gitVersionPattern.exec(text.trim());
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]) };
}

/** The gitVersion from `kubeadm version -o json` output. */
export function gitVersionFromJson(stdout: string): string | undefined {
  try {
    const doc = JSON.parse(stdout) as { clientVersion?: { gitVersion?: unknown } };
    const v = doc.clientVersion?.gitVersion;
    return typeof v === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Runs `kubeadm version -o json`: the binary must exist, run, and report a release version. */
export async function probeKubeadm(binary: string): Promise<KubeadmBinary> {
  if (!fs.existsSync(binary)) {
    throw new KfError(`kubeadm binary ${binary} does not exist`, 'pass --kubeadm with the custom kubeadm built by `kubeadm-forever build`');
  }
  const r = await execFile(binary, ['version', '-o', 'json'], { timeoutMs: 30_000 });
  if (r.code !== 0) {
    throw new KfError(`kubeadm binary ${binary} does not run: ${firstLine(r)}`, 'check that it is executable and built for this platform (`kubeadm-forever verify`)');
  }
  const gitVersion = gitVersionFromJson(r.stdout);
  const parsed = gitVersion === undefined ? undefined : parseGitVersion(gitVersion);
  if (!gitVersion || !parsed) {
    throw new KfError(
      `${binary} did not report a kubeadm version (\`version -o json\` gave ${JSON.stringify(r.stdout.trim().slice(0, 80))})`,
      'pass --kubeadm with a kubeadm binary',
    );
  }
  return { path: binary, gitVersion, ...parsed };
}

/** `certs renew all` (GA from 1.20; `alpha certs` before). kubeadm ignores --cert-dir when --config is given. */
export function certsRenewArgs(k: { major: number; minor: number }, opts: { pkiDir: string; configFile?: string }): string[] {
  const base = k.major === 1 && k.minor < 20 ? ['alpha', 'certs', 'renew', 'all'] : ['certs', 'renew', 'all'];
  return opts.configFile ? [...base, '--config', opts.configFile] : [...base, '--cert-dir', opts.pkiDir];
}

export async function runCertsRenew(
  k: KubeadmBinary,
  args: string[],
  onLine: (line: string) => void,
): Promise<ExecResult> {
  const r = await execFile(k.path, args, { timeoutMs: 5 * 60_000, onLine: (l) => onLine(l) });
  if (r.code !== 0) {
    throw new KfError(
      `\`kubeadm ${args.join(' ')}\` failed: ${lastLine(r)}`,
      'the backup written before it restores the previous state: `kubeadm-forever renew --rollback BACKUP`',
    );
  }
  return r;
}

/** kubeadm prints its reason last ("error execution phase ..."). */
function lastLine(r: ExecResult): string {
  if (r.startError) return r.startError.message;
  const text = r.stderr.trim() || r.stdout.trim();
  return text.split('\n').pop()?.trim() || `exit code ${String(r.code)}`;
}
