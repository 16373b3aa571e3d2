import path from 'node:path';

/** Where kubeadm and the kubelet keep a node's certificates: the defaults of the node commands. */
export const DEFAULT_KUBERNETES_DIR = '/etc/kubernetes';
export const DEFAULT_PKI_DIR = path.posix.join(DEFAULT_KUBERNETES_DIR, 'pki');
export const DEFAULT_KUBELET_PKI_DIR = '/var/lib/kubelet/pki';
