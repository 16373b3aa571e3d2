import type { CacheManifest } from '../../core/cache-manifest.js';
import { platformDir, platformFromText } from '../../core/platform.js';
import { BUNDLE_ROOT, entryRel, SUMS_NAME } from './layout.js';

/**
 * README.txt for the inside of the air gap: what is in the bundle and the steps after it,
 * written only from the manifests (no clock) so the same entries give the same bundle.
 */
export function bundleReadme(
  manifests: CacheManifest[],
  toolVersion: string,
  tools: { platform: string; rel: string; sha256: string }[] = [],
): string {
  const lines: string[] = [];
  const first = manifests[0];
  const firstRel = first
    ? entryRel(first.key, platformDir(platformFromText(first.platform)!), 'kubeadm')
    : 'binaries/KEY/linux-amd64/kubeadm';
  lines.push(
    'kubeadm-forever bundle',
    '======================',
    `Made by kubeadm-forever ${toolVersion}. It holds custom kubeadm binaries that issue long-lived`,
    'certificates, each with the exact version strings of the kubeadm it replaces:',
    '',
  );
  for (const m of manifests) {
    const rel = entryRel(m.key, platformDir(platformFromText(m.platform)!), 'kubeadm');
    lines.push(
      `  ${m.gitVersion} (${m.gitCommit || 'commit unknown'}) ${m.platform}`,
      `    certificates ${m.validity.text}, CAs ${m.caValidity.text}; built with ${m.goVersion || 'Go ?'} in ${m.image}`,
      `    ${rel}`,
      `    sha256 ${m.sha256}`,
    );
  }
  if (tools.length > 0) {
    lines.push('', 'And the tool itself, one executable per platform (no Node needed):', '');
    for (const t of tools) lines.push(`  ${t.platform}`, `    ${t.rel}`, `    sha256 ${t.sha256}`);
    lines.push(
      '',
      '0. Without the tool on this machine: run the one for its platform from the unpacked bundle',
      `   tar -xzf BUNDLE.tar.gz && ${BUNDLE_ROOT}/${tools[0]!.rel} --version`,
      '   bundle import installs it (kubeadm-forever cache path tool --platform OS/ARCH prints where).',
    );
  }
  lines.push(
    '',
    '1. Verify the bundle before anything else',
    '   With the tool:     kubeadm-forever bundle verify BUNDLE.tar.gz',
    `   Without it:        tar -xzf BUNDLE.tar.gz && cd ${BUNDLE_ROOT} && sha256sum -c ${SUMS_NAME}`,
    '   Compare the sha256 above with the one recorded where the bundle was built.',
    '',
    '   For a review: next to each binary, manifest.json records how it was built: the Kubernetes',
    '   version and commit, the image and image id, the Go version, the tool version, the inputs',
    '   of the build (validities, ldflags, environment), and in "patches" the exact unified diff',
    '   applied to the upstream source. "provenance" names the source (git commit and tree id, the',
    '   tarball sha256 or a directory fingerprint), the buildDate and where it came from (commit',
    '   time, newest file, SOURCE_DATE_EPOCH; never the clock), the exact "go build" arguments and',
    '   environment, and whether that Go can promise identical bytes ("reproducible", "notes").',
    '   To check it, on a machine with Docker, the same image and the source:',
    '     a. read the diff in "patches": it must change only the validity constants;',
    '     b. sha256sum the binary: it must equal "sha256" in manifest.json;',
    '     c. kubeadm-forever audit BINARY --manifest manifest.json [--source-tarball FILE |',
    '        --source-dir DIR | --repo URL]   rebuilds from the recorded inputs without any cache',
    '        and exits 0 only when the bytes are identical; otherwise it names the input,',
    '        environment item (image id, Go version) or "bytes" that differs.',
    '',
    '2. Put the binaries into the local cache (checked again on the way in)',
    '   kubeadm-forever bundle import BUNDLE.tar.gz',
    '   kubeadm-forever cache ls',
    '   BIN=$(kubeadm-forever cache path KEY --platform linux/amd64)',
    `   By hand instead:   install -m 0755 ${BUNDLE_ROOT}/${firstRel} /usr/local/bin/kubeadm-forever-kubeadm`,
    '   Keep the stock kubeadm where it is: the custom one is needed only to renew certificates.',
    '',
    '3. Check the binary on this machine',
    '   kubeadm-forever verify "$BIN"',
    '   (runs "version -o json" and "init phase certs all" in a temp dir, reports every NotAfter)',
    '',
    '4. On every control-plane node, in this order: the CAs, then the certificates, then a check',
    '   kubeadm-forever ca extend --pki-dir /etc/kubernetes/pki',
    '   (the CAs keep their own dates otherwise: this re-signs them with their own keys, backs up',
    '   the old files and updates the kubeconfigs; renewed certificates must not outlive them)',
    '   kubeadm-forever renew --kubeadm "$BIN" --dry-run     then without --dry-run',
    '   (backs up /etc/kubernetes, runs "certs renew all", restarts the control plane, checks)',
    '   kubeadm-forever check --min-years 150',
    '   Kubelet client certificates: kubeadm-forever kubelet-cert --node NODE.',
    '   By hand, after the CAs:  cp -a /etc/kubernetes /root/etc-kubernetes-backup',
    '             "$BIN" certs renew all        (1.19 and earlier: "$BIN" alpha certs renew all)',
    '             restart the control-plane static pods, then "$BIN" certs check-expiration',
    '',
    'Kubernetes 1.31 and later',
    '   ClusterConfiguration v1beta4 has certificateValidityPeriod and caCertificateValidityPeriod,',
    '   and "certs renew" takes them from the kubeadm-config ConfigMap, where stock kubeadm wrote',
    '   8760h0m0s: there the patched binary alone changes nothing. kubeadm-forever renew sets those',
    '   fields (with a backup); by hand, edit them in the ConfigMap or pass --config. "kubeadm',
    '   upgrade" renews certificates too: use --certificate-renewal=false or fix the ConfigMap first.',
    '',
  );
  return lines.join('\n');
}
