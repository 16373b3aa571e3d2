import { describe, expect, it } from 'vitest';
import { apiserverManifestFacts } from '../../src/core/apiserver-manifest.js';

// kubeadm 1.20.2's kube-apiserver.yaml, shortened to what matters here
const manifest = `apiVersion: v1
kind: Pod
metadata:
  annotations:
    kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint: 192.0.2.11:6443
  name: kube-apiserver
  namespace: kube-system
spec:
  containers:
  - command:
    - kube-apiserver
    - --advertise-address=192.0.2.11
    - --allow-privileged=true
    - --secure-port=6443
    image: k8s.gcr.io/kube-apiserver:v1.20.2
    name: kube-apiserver
`;

describe('the kube-apiserver manifest facts', () => {
  it('reads the image tag and the advertised address', () => {
    expect(apiserverManifestFacts(manifest)).toEqual({ version: 'v1.20.2', advertiseAddress: '192.0.2.11' });
  });

  it('reads a digest-pinned image, an IPv6 address and a quoted flag', () => {
    const t = manifest
      .replace('k8s.gcr.io/kube-apiserver:v1.20.2', 'registry.local:5000/kube-apiserver:v1.28.3@sha256:abc')
      .replace('- --advertise-address=192.0.2.11', '- "--advertise-address=2001:db8::11"');
    expect(apiserverManifestFacts(t)).toEqual({ version: 'v1.28.3', advertiseAddress: '2001:db8::11' });
  });

  it('leaves out what it cannot read', () => {
    expect(apiserverManifestFacts('not: [yaml')).toEqual({});
    expect(apiserverManifestFacts('spec: {}')).toEqual({});
    expect(
      apiserverManifestFacts(manifest.replace(':v1.20.2', '').replace(/.*advertise-address=.*\n/, '')),
    ).toEqual({});
  });
});
