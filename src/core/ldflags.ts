import type { BuildMode, KubeVersion, VersionInfo } from './types.js';

/**
 * `-X` flags that make a custom build report exactly the original version. A `-X` for a package
 * that is not linked into the binary is ignored by the Go linker, so every candidate is set:
 * kubeadm refuses to work with a wrong version (e.g. `v0.0.0-master+...`).
 */

/**
 * Packages that carry version variables, in their import-path spelling for module mode. Which of
 * them a given release links: <=~1.16 k8s.io/kubernetes/pkg/version and client-go's, ~1.17 on
 * component-base's and client-go's (facts/kubeadm-source.md).
 */
export const VERSION_PACKAGES = [
  'k8s.io/component-base/version',
  'k8s.io/client-go/pkg/version',
  'k8s.io/kubernetes/pkg/version',
] as const;

/**
 * The package paths as the linker sees them. In GOPATH mode vendored packages are named
 * `k8s.io/kubernetes/vendor/<path>` and the plain paths are silently ignored, so there both
 * spellings are set; in module mode vendoring keeps the plain path.
 */
export function versionPackagePaths(mode: BuildMode): string[] {
  const paths: string[] = [];
  for (const pkg of VERSION_PACKAGES) {
    const vendored = !pkg.startsWith('k8s.io/kubernetes/');
    if (mode === 'gopath' && vendored) paths.push(`k8s.io/kubernetes/vendor/${pkg}`);
    paths.push(pkg);
  }
  return paths;
}

/** The variable values of hack/lib/version.sh for this version (gitMajor/gitMinor as reported). */
export function versionVariables(version: VersionInfo, kube: KubeVersion): Array<[string, string]> {
  const vars: Array<[string, string]> = [
    ['gitVersion', version.gitVersion],
    ['gitCommit', version.gitCommit],
    // The patched tree is modified, but the binary must report what the original reported.
    ['gitTreeState', version.gitTreeState || 'clean'],
    ['gitMajor', version.major || String(kube.major)],
    ['gitMinor', version.minor || String(kube.minor)],
  ];
  if (version.buildDate) vars.push(['buildDate', version.buildDate]);
  return vars.filter(([, v]) => v !== '');
}

/** Every `-X pkg.var=value` for the build mode, in a stable order. */
export function versionXFlags(version: VersionInfo, kube: KubeVersion, mode: BuildMode): string[] {
  const vars = versionVariables(version, kube);
  return versionPackagePaths(mode).flatMap((pkg) =>
    vars.map(([name, value]) => `-X ${pkg}.${name}=${value}`),
  );
}

/**
 * The complete -ldflags value: `-s -w` (strip, as the official build does without DBG=1),
 * `-buildid=` (an empty build id: the default one hashes the action graph, which carries
 * host-dependent details) and every version `-X`. Values are validated upstream (no spaces or
 * quotes can occur).
 */
export function buildLdflags(
  version: VersionInfo,
  kube: KubeVersion,
  mode: BuildMode,
  opts: { strip?: boolean } = {},
): string {
  const strip = opts.strip ?? true;
  return [...(strip ? ['-s', '-w'] : []), '-buildid=', ...versionXFlags(version, kube, mode)].join(' ');
}
