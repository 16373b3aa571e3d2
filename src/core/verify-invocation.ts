import { KfError } from './errors.js';
import type { KubeVersion, Platform } from './types.js';
import { kubeAtLeast, kubeMinorText } from './version.js';

/**
 * How `verify` runs a kubeadm of each era: which arguments its `version` and `init phase certs
 * all` accept, decided from the version alone. Facts of kubeadm's own sources
 * (cmd/kubeadm/app/cmd/version.go, cmd/phases/init/certs.go, cmd/options/constant.go,
 * apis/kubeadm/validation/validation.go); the unit test names the release each one was read in.
 */

/** `version -o json` prints `{"clientVersion":{…}}` in every supported era (1.15 to the newest). */
export const VERSION_JSON_ARGS: readonly string[] = ['version', '-o', 'json'];

/** The oldest kubeadm `verify` knows how to run (and the oldest the patch supports). */
export const OLDEST_VERIFIABLE = { major: 1, minor: 15 } as const;

/** The first minor whose `init phase certs all` takes `--kubernetes-version` (1.16.0). */
export const CERTS_KUBERNETES_VERSION_FLAG_SINCE = { major: 1, minor: 16 } as const;

export interface CertsPhaseInvocation {
  /** the kubeadm arguments */
  args: string[];
  /**
   * a kubeadm configuration to write at the `configPath` given, before running; absent when the
   * era takes everything as flags
   */
  config?: string;
}

/**
 * `init phase certs all` writing into `certDir` for `kubernetesVersion`, offline.
 * - 1.16 and later: `--cert-dir DIR --kubernetes-version V`.
 * - 1.15: the phase has no `--kubernetes-version` flag; without a version kubeadm asks
 *   dl.k8s.io for stable-1 first. The version then goes in a ClusterConfiguration (v1beta2, new
 *   in 1.15) and the directory too: 1.15 refuses `--cert-dir` beside `--config` (mixed arguments).
 */
export function certsPhaseInvocation(
  kube: KubeVersion,
  kubernetesVersion: string,
  certDir: string,
  configPath: string,
): CertsPhaseInvocation {
  if (kube.major !== 1 || !kubeAtLeast(kube, OLDEST_VERIFIABLE.major, OLDEST_VERIFIABLE.minor)) {
    throw new KfError(
      `cannot verify kubeadm ${kubeMinorText(kube)}: verify runs kubeadm 1.15 or later`,
      'verify a kubeadm 1.15 or later (kubeadm-forever builds no older one)',
    );
  }
  const base = ['init', 'phase', 'certs', 'all'];
  if (
    kubeAtLeast(kube, CERTS_KUBERNETES_VERSION_FLAG_SINCE.major, CERTS_KUBERNETES_VERSION_FLAG_SINCE.minor)
  ) {
    return { args: [...base, '--cert-dir', certDir, '--kubernetes-version', kubernetesVersion] };
  }
  // JSON strings are YAML double-quoted scalars: any path or version is quoted safely
  const config = [
    'apiVersion: kubeadm.k8s.io/v1beta2',
    'kind: ClusterConfiguration',
    `kubernetesVersion: ${JSON.stringify(kubernetesVersion)}`,
    `certificatesDir: ${JSON.stringify(certDir)}`,
    '',
  ].join('\n');
  return { args: [...base, '--config', configPath], config };
}

/**
 * QEMU's name for a Go architecture (`qemu-<name>-static`, binfmt_misc's `qemu-<name>`);
 * undefined for one QEMU has no user-mode emulator of.
 */
export function qemuArch(goArch: string): string | undefined {
  return QEMU_ARCH[goArch];
}

const QEMU_ARCH: Record<string, string> = {
  amd64: 'x86_64',
  arm64: 'aarch64',
  arm: 'arm',
  '386': 'i386',
  ppc64le: 'ppc64le',
  ppc64: 'ppc64',
  s390x: 's390x',
  riscv64: 'riscv64',
  mips64le: 'mips64el',
  mips64: 'mips64',
  loong64: 'loongarch64',
};

/** The executables that may run a binary of `platform` on a Linux host, in the order tried on PATH. */
export function emulatorCandidates(platform: Platform): string[] {
  const q = platform.os === 'linux' ? qemuArch(platform.arch) : undefined;
  return q ? [`qemu-${q}-static`, `qemu-${q}`] : [];
}

/** The binfmt_misc entry name Debian's qemu-user-static registers for `platform`. */
export function binfmtEntry(platform: Platform): string | undefined {
  const q = platform.os === 'linux' ? qemuArch(platform.arch) : undefined;
  return q ? `qemu-${q}` : undefined;
}
