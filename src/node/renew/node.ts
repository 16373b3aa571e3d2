import path from 'node:path';

/** Where one control-plane node keeps what `renew` touches. */
export interface NodeLayout {
  /** e.g. /etc/kubernetes: pki/, *.conf, manifests/ */
  kubernetesDir: string;
  pkiDir: string;
  manifestsDir: string;
  /** e.g. /var/lib/kubelet/pki (kubelet client and serving certificates) */
  kubeletPkiDir: string;
}

export function nodeLayout(kubernetesDir: string, kubeletPkiDir: string): NodeLayout {
  const k = path.resolve(kubernetesDir);
  return {
    kubernetesDir: k,
    pkiDir: path.join(k, 'pki'),
    manifestsDir: path.join(k, 'manifests'),
    kubeletPkiDir: path.resolve(kubeletPkiDir),
  };
}

/** The static pods of a kubeadm control plane, in the order kubeadm writes them. */
export const controlPlaneComponents = [
  'etcd',
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
] as const;
export type ControlPlaneComponent = (typeof controlPlaneComponents)[number];

/** The kubeconfigs whose client certificates `certs renew all` renews. */
export const renewedKubeconfigs = ['admin.conf', 'controller-manager.conf', 'scheduler.conf'] as const;

/**
 * Files `certs renew all` needs (CAs with keys) or renews, relative to the PKI dir. The etcd
 * set applies only to a stacked (local) etcd, i.e. when manifests/etcd.yaml exists.
 */
export function requiredPkiFiles(localEtcd: boolean): string[] {
  const pair = (name: string) => [`${name}.crt`, `${name}.key`];
  const files = [
    ...pair('ca'),
    ...pair('front-proxy-ca'),
    ...pair('apiserver'),
    ...pair('apiserver-kubelet-client'),
    ...pair('front-proxy-client'),
    'sa.key',
    'sa.pub',
  ];
  if (localEtcd) {
    files.push(
      ...pair('etcd/ca'),
      ...pair('etcd/server'),
      ...pair('etcd/peer'),
      ...pair('etcd/healthcheck-client'),
      ...pair('apiserver-etcd-client'),
    );
  }
  return files;
}

/** The CA certificates that sign what `certs renew all` renews, relative to the PKI dir. */
export function caCertificates(localEtcd: boolean): string[] {
  return localEtcd ? ['ca.crt', 'front-proxy-ca.crt', 'etcd/ca.crt'] : ['ca.crt', 'front-proxy-ca.crt'];
}
