import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cliPath, repoRoot } from './env.js';
import { startSshd, type ClientKeys, type Sshd } from './sshd.js';

/**
 * "Files-only" nodes for the rollout tests: each an sshd (test/helpers/sshd.ts) started inside
 * its own mount namespace (files-node.sh) where /etc/kubernetes and /var/lib/kubelet are its own
 * tmpfs, laid out as kubeadm lays them out, with CAs made by the tool's own `ca init` and a
 * kubelet client certificate made by its `kubelet-cert`. No kubelet, API server or etcd runs.
 */

export interface FilesNode {
  name: string;
  role: 'control-plane' | 'worker';
  sshd: Sshd;
  /** runs argv inside the node's mount namespace (to read its files independently) */
  inNode(argv: string[]): { status: number | null; stdout: string; stderr: string };
}

const script = path.join(repoRoot, 'test/helpers/files-node.sh');

export function cli(args: string[], opts: { env?: NodeJS.ProcessEnv } = {}) {
  return spawnSync(process.execPath, [cliPath, ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...opts.env },
    timeout: 240_000,
  });
}

function mustCli(args: string[]): void {
  const r = cli(args);
  if (r.status !== 0) throw new Error(`kubeadm-forever ${args.join(' ')} failed: ${r.stderr}`);
}

/** A cluster's CAs (ca, etcd/ca, front-proxy-ca), made by `ca init`, valid `validity`. */
export function makeClusterPki(dir: string, validity = '1y'): string {
  mustCli(['ca', 'init', '--out', dir, '--validity', validity]);
  return dir;
}

function kubeconfig(caPem: string, server: string, user: string, certFile?: string): string {
  const lines = [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: kubernetes',
    '  cluster:',
    `    certificate-authority-data: ${Buffer.from(caPem).toString('base64')}`,
    `    server: ${server}`,
    'contexts:',
    '- name: default',
    '  context: {cluster: kubernetes, user: ' + user + '}',
    'current-context: default',
    'users:',
    `- name: ${user}`,
    '  user:',
  ];
  if (certFile) lines.push(`    client-certificate: ${certFile}`, `    client-key: ${certFile}`);
  else lines.push('    token: none');
  return `${lines.join('\n')}\n`;
}

/** The seed of a node's /etc/kubernetes: control planes get every CA with its key, workers ca.crt. */
export function makeNodeSeed(dir: string, role: 'control-plane' | 'worker', pki: string): string {
  const k = path.join(dir, 'kubernetes');
  fs.mkdirSync(path.join(k, 'pki'), { recursive: true });
  const files =
    role === 'control-plane'
      ? ['ca.crt', 'ca.key', 'etcd/ca.crt', 'etcd/ca.key', 'front-proxy-ca.crt', 'front-proxy-ca.key']
      : ['ca.crt'];
  for (const f of files) {
    fs.mkdirSync(path.dirname(path.join(k, 'pki', f)), { recursive: true });
    fs.copyFileSync(path.join(pki, f), path.join(k, 'pki', f));
    fs.chmodSync(path.join(k, 'pki', f), f.endsWith('.key') ? 0o600 : 0o644);
  }
  const ca = fs.readFileSync(path.join(pki, 'ca.crt'), 'utf8');
  fs.writeFileSync(
    path.join(k, 'kubelet.conf'),
    kubeconfig(
      ca,
      'https://127.0.0.1:6443',
      'default-auth',
      '/var/lib/kubelet/pki/kubelet-client-current.pem',
    ),
    { mode: 0o600 },
  );
  if (role === 'control-plane') {
    for (const f of ['admin.conf', 'controller-manager.conf', 'scheduler.conf'])
      fs.writeFileSync(path.join(k, f), kubeconfig(ca, 'https://127.0.0.1:6443', f.replace('.conf', '')), {
        mode: 0o600,
      });
  }
  fs.mkdirSync(path.join(dir, 'kubelet', 'pki'), { recursive: true });
  return dir;
}

export async function startFilesNode(o: {
  name: string;
  role: 'control-plane' | 'worker';
  dir: string;
  address: string;
  port: number;
  client: ClientKeys;
  /** the CAs (with keys, on the test's side) this node's files come from */
  pki: string;
}): Promise<FilesNode> {
  const seed = makeNodeSeed(path.join(o.dir, 'seed'), o.role, o.pki);
  const sshd = await startSshd({
    dir: path.join(o.dir, 'sshd'),
    address: o.address,
    port: o.port,
    client: o.client,
    wrapper: [
      'unshare',
      '-m',
      '--propagation',
      'private',
      '--',
      'sh',
      script,
      path.join(o.dir, 'scratch'),
      seed,
    ],
  });
  const pid = sshd.process.pid!;
  const inNode = (argv: string[]) => {
    const r = spawnSync('nsenter', ['-t', String(pid), '-m', '--', ...argv], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  // the node's kubelet client certificate, issued in its namespace (the CA key stays outside)
  const r = inNode([
    process.execPath,
    cliPath,
    'kubelet-cert',
    '--node',
    o.name,
    '--pki-dir',
    o.pki,
    '--out',
    '/var/lib/kubelet/pki',
    '--validity',
    '300d',
  ]);
  if (r.status !== 0) throw new Error(`kubelet-cert in ${o.name} failed: ${r.stderr}`);
  return { name: o.name, role: o.role, sshd, inNode };
}

/**
 * TEST STAND-IN for the single-file executable (`--tool`): a script that runs this checkout's
 * dist/cli.js with this Node. The nodes share this host's file system outside their tmpfs
 * mounts, so the copy on each node finds both.
 */
export function toolStandIn(dir: string): string {
  const file = path.join(dir, 'kubeadm-forever-test-stand-in');
  fs.writeFileSync(
    file,
    `#!/bin/sh\n# test stand-in for the single-file executable\nexec '${process.execPath}' '${cliPath}' "$@"\n`,
    {
      mode: 0o755,
    },
  );
  return file;
}

/**
 * Several nodes started at once, all with the same port, client key and CAs. If one fails to
 * start, the others are stopped and its error thrown.
 */
export async function startFilesNodes(
  layout: readonly { name: string; role: 'control-plane' | 'worker'; address: string; dir: string }[],
  o: { port: number; client: ClientKeys; pki: string },
): Promise<FilesNode[]> {
  const started = await Promise.allSettled(layout.map((n) => startFilesNode({ ...n, ...o })));
  const nodes = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.all(nodes.map((n) => n.sshd.stop()));
    throw failed.reason;
  }
  return nodes;
}
