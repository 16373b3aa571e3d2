import path from 'node:path';
import type { CheckReport, CheckRow } from './pki-check.js';

/**
 * `check --output kubeadm-json`: the document `kubeadm certs check-expiration -o json` prints
 * (kubeadm >= 1.30: output.kubeadm.k8s.io/v1alpha3, kind CertificateExpirationInfo), so
 * scripts written for kubeadm's output read this one. kubeadm 1.20.2, the version the tests
 * build, has no `-o` yet: its table gives the names, CA names and dates compared in the tests.
 *
 * Like kubeadm, it lists kubeadm's own certificates and CAs by kubeadm's names, sorted, and
 * marks those not there `missing`; everything else `check` finds is in `check --json` only.
 */

export const KUBEADM_OUTPUT_API_VERSION = 'output.kubeadm.k8s.io/v1alpha3';

export interface KubeadmCertificate {
  name: string;
  /** RFC 3339, seconds, UTC; null when missing (metav1.Time's zero value) */
  expirationDate: string | null;
  /** seconds until expirationDate (kubeadm's ResidualTimeSeconds) */
  residualTime: number;
  externallyManaged: boolean;
  /** omitted for CAs, as kubeadm's `omitempty` does */
  caName?: string;
  missing: boolean;
}

export interface KubeadmExpirationInfo {
  kind: 'CertificateExpirationInfo';
  apiVersion: typeof KUBEADM_OUTPUT_API_VERSION;
  certificates: KubeadmCertificate[];
  certificateAuthorities: KubeadmCertificate[];
}

/** kubeadm's certificate handlers (cmd/kubeadm/app/phases/certs/renewal/manager.go). */
const CAS = [
  { name: 'ca', file: 'ca.crt' },
  { name: 'etcd-ca', file: 'etcd/ca.crt', etcd: true },
  { name: 'front-proxy-ca', file: 'front-proxy-ca.crt' },
] as const;

const CERTS: {
  name: string;
  caName: string;
  file?: string;
  kubeconfig?: string;
  etcd?: boolean;
  onlyIfPresent?: boolean;
}[] = [
  { name: 'admin.conf', caName: 'ca', kubeconfig: 'admin.conf' },
  { name: 'apiserver', caName: 'ca', file: 'apiserver.crt' },
  { name: 'apiserver-etcd-client', caName: 'etcd-ca', file: 'apiserver-etcd-client.crt', etcd: true },
  { name: 'apiserver-kubelet-client', caName: 'ca', file: 'apiserver-kubelet-client.crt' },
  { name: 'controller-manager.conf', caName: 'ca', kubeconfig: 'controller-manager.conf' },
  { name: 'etcd-healthcheck-client', caName: 'etcd-ca', file: 'etcd/healthcheck-client.crt', etcd: true },
  { name: 'etcd-peer', caName: 'etcd-ca', file: 'etcd/peer.crt', etcd: true },
  { name: 'etcd-server', caName: 'etcd-ca', file: 'etcd/server.crt', etcd: true },
  { name: 'front-proxy-client', caName: 'front-proxy-ca', file: 'front-proxy-client.crt' },
  { name: 'scheduler.conf', caName: 'ca', kubeconfig: 'scheduler.conf' },
  // kubeadm >= 1.29 only: listed when the node has it
  { name: 'super-admin.conf', caName: 'ca', kubeconfig: 'super-admin.conf', onlyIfPresent: true },
];

export interface KubeadmLayout {
  pkiDir: string;
  kubeconfigDir: string;
}

export function toKubeadmExpirationInfo(report: CheckReport, layout: KubeadmLayout): KubeadmExpirationInfo {
  const now = new Date(report.checkedAt).getTime();
  const same = (a: string, b: string) => path.resolve(a) === path.resolve(b);
  // the first certificate of a file (a CA bundle's first is the one kubeadm reads)
  const inPki = (rel: string) =>
    report.rows.find((r) => !r.embedded && same(r.file, path.join(layout.pkiDir, rel)));
  const inKubeconfig = (name: string) =>
    report.rows.find(
      (r) => r.embedded?.kind === 'user' && same(r.file, path.join(layout.kubeconfigDir, name)),
    );
  // no etcd CA and no etcd certificate: an external etcd, which kubeadm does not list either
  const localEtcd = [...CAS, ...CERTS].some(
    (c) => 'etcd' in c && c.etcd && c.file !== undefined && inPki(c.file) !== undefined,
  );

  const entry = (
    name: string,
    row: CheckRow | undefined,
    externallyManaged: boolean,
    caName?: string,
  ): KubeadmCertificate => ({
    name,
    expirationDate: row ? row.notAfter.replace(/\.\d{3}Z$/, 'Z') : null,
    residualTime: row ? Math.trunc((new Date(row.notAfter).getTime() - now) / 1000) : 0,
    externallyManaged,
    ...(caName !== undefined ? { caName } : {}),
    missing: row === undefined,
  });

  // kubeadm: a CA is externally managed when its certificate is there without its key
  const external = new Map<string, boolean>();
  const certificateAuthorities = CAS.filter((c) => !('etcd' in c) || localEtcd).map((c) => {
    const row = inPki(c.file);
    external.set(c.name, row !== undefined && row.keyMatches === null);
    return entry(c.name, row, external.get(c.name)!);
  });
  const certificates = CERTS.filter((c) => !c.etcd || localEtcd)
    .map((c) => ({ c, row: c.kubeconfig ? inKubeconfig(c.kubeconfig) : inPki(c.file!) }))
    .filter(({ c, row }) => !c.onlyIfPresent || row !== undefined)
    .map(({ c, row }) => entry(c.name, row, external.get(c.caName) ?? false, c.caName));
  return {
    kind: 'CertificateExpirationInfo',
    apiVersion: KUBEADM_OUTPUT_API_VERSION,
    certificates,
    certificateAuthorities,
  };
}
