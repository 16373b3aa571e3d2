import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { KfError } from '../../src/core/errors.js';
import {
  binfmtEntry,
  certsPhaseInvocation,
  emulatorCandidates,
  qemuArch,
  VERSION_JSON_ARGS,
} from '../../src/core/verify-invocation.js';
import { parseKubeVersion } from '../../src/core/version.js';

/**
 * What each era's kubeadm accepts, as read in the real trees' cmd/kubeadm sources. These are the
 * facts the arguments must fit; a flag outside a release's set is "unknown flag" there.
 *
 * `init phase certs all` inherits the flags getCertPhaseFlags("all") lists
 * (cmd/kubeadm/app/cmd/phases/init/certs.go), spelled by cmd/kubeadm/app/cmd/options/constant.go.
 */
const CERTS_ALL_FLAGS: Record<string, { source: string; flags: string[] }> = {
  // upstream tag v1.15.5 (commit 20c265fef0741dd71a66480e35bd69f18351daea), full tree:
  // CertificatesDir, CfgPath, CSROnly, CSRDir + APIServerAdvertiseAddress, APIServerCertSANs,
  // NetworkingDNSDomain, NetworkingServiceSubnet. No KubernetesVersion.
  'v1.15.5': {
    source: 'v1.15.5 cmd/kubeadm/app/cmd/phases/init/certs.go',
    flags: [
      'cert-dir',
      'config',
      'csr-only',
      'csr-dir',
      'apiserver-advertise-address',
      'apiserver-cert-extra-sans',
      'service-dns-domain',
      'service-cidr',
    ],
  },
  // kubernetes/kubernetes PR 80115 ("kubeadm/*/phases/init/certs,kubeconfig: add
  // kubernetes-version flag", merged July 2019, first in v1.16.0) added KubernetesVersion.
  // Read in Debian's v1.20.2 source (the test fixture tarball), with ControlPlaneEndpoint too:
  'v1.20.2': {
    source: 'v1.20.2 cmd/kubeadm/app/cmd/phases/init/certs.go (Debian kubernetes 1.20.5+really1.20.2)',
    flags: [
      'cert-dir',
      'config',
      'csr-only',
      'csr-dir',
      'kubernetes-version',
      'apiserver-advertise-address',
      'control-plane-endpoint',
      'apiserver-cert-extra-sans',
      'service-dns-domain',
      'service-cidr',
    ],
  },
  // upstream master as stored (commit 04791b4906602ffda5ccf9bc4c84d3329f1d7080, with
  // PublicKeyAlgorithm and v1beta3 defaults): the CSR flags are gone; checked as the newest era
  'v1.35.0': {
    source: 'master 04791b49 cmd/kubeadm/app/cmd/phases/init/certs.go',
    flags: [
      'cert-dir',
      'config',
      'kubernetes-version',
      'apiserver-advertise-address',
      'control-plane-endpoint',
      'apiserver-cert-extra-sans',
      'service-dns-domain',
      'service-cidr',
    ],
  },
};

/**
 * v1.15.5 apis/kubeadm/validation/validation.go, ValidateMixedArguments: beside --config only
 * these (and skip-*) are allowed, so --cert-dir with --config is refused there.
 */
const V1_15_ALLOWED_WITH_CONFIG = [
  'config',
  'ignore-preflight-errors',
  'dry-run',
  'kubeconfig',
  'node-name',
  'cri-socket',
  'kubeconfig-dir',
  'upload-certs',
  'experimental-upload-certs',
  'print-join-command',
  'rootfs',
  'v',
];

/** v1.15.5 cmd/kubeadm/app/apis/kubeadm: the config API versions it reads (v1beta1, v1beta2). */
const V1_15_CONFIG_API_VERSIONS = ['kubeadm.k8s.io/v1beta1', 'kubeadm.k8s.io/v1beta2'];

/**
 * `version` takes -o/--output with yaml, json or short (cmd/kubeadm/app/cmd/version.go, the same
 * text in v1.15.5, v1.20.2 and master); json prints {"clientVersion": {...}}.
 */
const VERSION_OUTPUTS = ['yaml', 'json', 'short'];

/** The --flags of an argument list (values follow as separate arguments). */
function flagsOf(args: string[]): string[] {
  return args.filter((a) => a.startsWith('--')).map((a) => a.slice(2).split('=')[0]!);
}

const certDir = '/tmp/kubeadm-forever-verify-x';
const configPath = `${certDir}.yaml`;
const invocation = (v: string) => certsPhaseInvocation(parseKubeVersion(v), v, certDir, configPath);

describe('verify: the arguments each kubeadm era accepts', () => {
  for (const [release, fact] of Object.entries(CERTS_ALL_FLAGS)) {
    it(`init phase certs all for ${release} uses only flags it has (${fact.source})`, () => {
      const inv = invocation(release);
      expect(inv.args.slice(0, 4)).toEqual(['init', 'phase', 'certs', 'all']);
      for (const flag of flagsOf(inv.args)) expect(fact.flags).toContain(flag);
    });
  }

  it('1.15: no --kubernetes-version (unknown there); the version and the dir go in a v1beta2 config', () => {
    for (const v of ['v1.15.0', 'v1.15.5', 'v1.15.12', 'v1.15.5-rc.1']) {
      const inv = invocation(v);
      expect(inv.args).toEqual(['init', 'phase', 'certs', 'all', '--config', configPath]);
      expect(flagsOf(inv.args).every((f) => V1_15_ALLOWED_WITH_CONFIG.includes(f))).toBe(true);
      const doc = parseYaml(inv.config!) as Record<string, unknown>;
      expect(V1_15_CONFIG_API_VERSIONS).toContain(doc.apiVersion);
      expect(doc).toEqual({
        apiVersion: 'kubeadm.k8s.io/v1beta2',
        kind: 'ClusterConfiguration',
        kubernetesVersion: v,
        certificatesDir: certDir,
      });
    }
  });

  it('1.16 and later: --cert-dir and --kubernetes-version, no config file (offline, no dl.k8s.io lookup)', () => {
    for (const v of ['v1.16.0', 'v1.20.2', 'v1.24.15', 'v1.31.0', 'v1.35.0']) {
      const inv = invocation(v);
      expect(inv).toEqual({
        args: ['init', 'phase', 'certs', 'all', '--cert-dir', certDir, '--kubernetes-version', v],
      });
    }
  });

  it('a path with quotes, colons or a newline stays one YAML string in the 1.15 config', () => {
    const odd = '/tmp/a "b": c\n- d #e';
    const inv = certsPhaseInvocation(parseKubeVersion('v1.15.5'), 'v1.15.5', odd, '/tmp/x.yaml');
    expect((parseYaml(inv.config!) as { certificatesDir: string }).certificatesDir).toBe(odd);
  });

  it('refuses kubeadm older than 1.15 with the two-line error', () => {
    for (const v of ['v1.14.10', 'v1.13.0', 'v2.0.0']) {
      expect(() => invocation(v)).toThrow(KfError);
    }
    expect(() => invocation('v1.14.10')).toThrow(/verify runs kubeadm 1\.15 or later/);
  });

  it('version -o json in every era', () => {
    expect(VERSION_JSON_ARGS).toEqual(['version', '-o', 'json']);
    expect(VERSION_OUTPUTS).toContain(VERSION_JSON_ARGS[2]);
  });
});

describe('verify: user-mode emulators by platform', () => {
  it("names QEMU's emulator and binfmt entry for Go architectures", () => {
    expect(qemuArch('arm64')).toBe('aarch64');
    expect(qemuArch('amd64')).toBe('x86_64');
    expect(qemuArch('ppc64le')).toBe('ppc64le');
    expect(qemuArch('wasm')).toBeUndefined();
    expect(emulatorCandidates({ os: 'linux', arch: 'arm64' })).toEqual([
      'qemu-aarch64-static',
      'qemu-aarch64',
    ]);
    expect(binfmtEntry({ os: 'linux', arch: 'arm64' })).toBe('qemu-aarch64');
    expect(emulatorCandidates({ os: 'windows', arch: 'amd64' })).toEqual([]);
    expect(binfmtEntry({ os: 'darwin', arch: 'arm64' })).toBeUndefined();
  });
});
