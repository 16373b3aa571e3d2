/**
 * Every command's name, usage and one-line description, without its module: the top-level
 * help, an unknown command and its suggestion need only these, and loading every command module
 * for them (dockerode, x509, ora…) costs most of a second. The modules take theirs from here.
 */
export const commandSummaries = {
  plan: {
    command: 'plan',
    describe: 'show everything build would do, without Docker (with --source-dir, also the patch as a diff)',
  },
  patch: {
    command: 'patch <dir>',
    describe:
      'patch a Kubernetes source tree in place for long-lived certificates (--check: print the diff, write nothing)',
  },
  build: {
    command: 'build',
    describe: 'build a kubeadm with long-lived certificates for the exact version (Docker)',
  },
  verify: {
    command: 'verify <binary>',
    describe:
      'run a kubeadm: version and `init phase certs all`, every certificate against the expected validity',
  },
  cache: {
    command: 'cache <action>',
    describe: 'the binary cache: ls, path KEY, rm KEY, prune [--keep N]; volumes [--remove] on the engine',
  },
  bundle: {
    command: 'bundle <action>',
    describe: 'carry binaries into an air gap: export, verify FILE, import FILE',
  },
  ca: {
    command: 'ca',
    describe: 'long-lived cluster CAs: create new ones, or extend the existing ones with their own keys',
  },
  'kubelet-cert': {
    command: 'kubelet-cert',
    describe:
      'issue a kubelet client certificate (system:node:NAME) and point kubelet-client-current.pem at it',
  },
  check: {
    command: 'check',
    describe:
      'expiry, key match and chain of every certificate in a PKI dir, the kubelet dir and the kubeconfigs',
  },
  renew: {
    command: 'renew',
    describe:
      'on a control-plane node: back up, `kubeadm certs renew all` with the custom kubeadm, restart, check',
  },
  rollout: {
    command: 'rollout',
    describe:
      'from an admin host over ssh: every node to long-lived certificates and CA copies (--dry-run: the plan; --report: every node now)',
  },
  audit: {
    command: 'audit <binary>',
    describe: 'rebuild a kubeadm from the inputs its manifest records (no cache) and compare sha256',
  },
  image: {
    command: 'image',
    describe:
      "make a Go builder image from a local Go toolchain (a GOROOT or Debian's golang-1.NN .debs), no registry",
  },
  version: {
    command: 'version',
    describe: 'the tool version, Node, dockerode and (when reachable) the Docker engine and its API version',
  },
} as const satisfies Record<string, { command: string; describe: string }>;

export type CommandName = keyof typeof commandSummaries;
