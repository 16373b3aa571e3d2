import { readKubeadmVersion } from '../../adapters/kubeadm-version.js';
import { parseKubeVersion } from '../../core/version.js';
import { KfError } from '../../core/errors.js';
import { execFile, type ExecResult } from './exec.js';

/** The parts of a kubeadm binary's version `renew` needs. */
export interface KubeadmBinary {
  path: string;
  gitVersion: string;
  major: number;
  minor: number;
}

/** Runs `kubeadm version` (argument arrays): the binary must exist, run, and report a release version. */
export async function probeKubeadm(binary: string): Promise<KubeadmBinary> {
  const { info } = await readKubeadmVersion(binary);
  const kube = parseKubeVersion(info.gitVersion);
  return { path: binary, gitVersion: info.gitVersion, major: kube.major, minor: kube.minor };
}

/** `certs renew all` (GA from 1.20; `alpha certs` before). kubeadm ignores --cert-dir when --config is given. */
export function certsRenewArgs(
  k: { major: number; minor: number },
  opts: { pkiDir: string; configFile?: string },
): string[] {
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
