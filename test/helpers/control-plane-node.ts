import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cliPath, repoRoot, type CliResult } from './env.js';

const namespaceScript = path.join(repoRoot, 'test/helpers/in-node-namespace.sh');
const manifestFixtures = path.join(repoRoot, 'test/fixtures/renew/manifests-v1.20.2');

/** A kubeadm control-plane node in temp dirs, used through a private mount namespace. */
export interface TestNode {
  root: string;
  /** bound to /etc/kubernetes inside runInNode */
  kubernetesDir: string;
  kubeletPkiDir: string;
  backupDir: string;
  cleanup(): void;
}

let scratchCount = 0;

/**
 * Runs `command args` in a fresh private mount namespace where node.kubernetesDir is
 * /etc/kubernetes (test/helpers/in-node-namespace.sh). Argument arrays only.
 */
export function runInNode(
  node: TestNode,
  command: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeout?: number } = {},
): CliResult {
  const scratch = path.join(node.root, `scratch-${++scratchCount}`);
  fs.mkdirSync(scratch);
  try {
    const r = spawnSync(
      'unshare',
      ['-m', '--', 'sh', namespaceScript, node.kubernetesDir, scratch, command, ...args],
      {
        encoding: 'utf8',
        env: { ...process.env, ...opts.env },
        timeout: opts.timeout ?? 5 * 60_000,
        maxBuffer: 64 * 1024 * 1024,
      },
    );
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/** The built CLI inside the node's namespace. */
export function runCliInNode(
  node: TestNode,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv } = {},
): CliResult {
  return runInNode(node, process.execPath, [cliPath, ...args], opts);
}

function mustSucceed(what: string, r: CliResult): void {
  if (r.status !== 0) throw new Error(`${what} failed (exit ${String(r.status)}):\n${r.stderr}\n${r.stdout}`);
}

/**
 * A stacked-etcd control-plane node made by `kubeadm` (1.20.2): certificates and kubeconfigs
 * written by kubeadm itself (offline phases). The static pod manifests are kubeadm 1.20.2's
 * output kept as fixtures: a kubeadm 1.20.2 built with Go 1.19 (the only Go here) crashes in
 * `init phase control-plane` (vendored reflect2 1.0.1 predates Go 1.18's map iterator).
 * The kubelet pki dir holds a client certificate and the kubelet-client-current.pem link.
 */
export function makeControlPlaneNode(kubeadm: string): TestNode {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-test-node-'));
  const node: TestNode = {
    root,
    kubernetesDir: path.join(root, 'etc-kubernetes'),
    kubeletPkiDir: path.join(root, 'kubelet-pki'),
    backupDir: path.join(root, 'backups'),
    cleanup: () => fs.rmSync(root, { recursive: true, force: true }),
  };
  try {
    fs.mkdirSync(node.kubernetesDir);
    const v = ['--kubernetes-version', 'v1.20.2'];
    mustSucceed(
      'kubeadm init phase certs all',
      runInNode(node, kubeadm, ['init', 'phase', 'certs', 'all', '--cert-dir', '/etc/kubernetes/pki', ...v]),
    );
    mustSucceed(
      'kubeadm init phase kubeconfig all',
      runInNode(node, kubeadm, ['init', 'phase', 'kubeconfig', 'all', ...v]),
    );
    fs.cpSync(manifestFixtures, path.join(node.kubernetesDir, 'manifests'), { recursive: true });
    fs.mkdirSync(node.kubeletPkiDir, { mode: 0o755 });
    const pki = path.join(node.kubernetesDir, 'pki');
    const pem = Buffer.concat(
      ['apiserver-kubelet-client.crt', 'apiserver-kubelet-client.key'].map((f) =>
        fs.readFileSync(path.join(pki, f)),
      ),
    );
    fs.writeFileSync(path.join(node.kubeletPkiDir, 'kubelet-client-2026-01-01-00-00-00.pem'), pem, {
      mode: 0o600,
    });
    fs.symlinkSync(
      path.join(node.kubeletPkiDir, 'kubelet-client-2026-01-01-00-00-00.pem'),
      path.join(node.kubeletPkiDir, 'kubelet-client-current.pem'),
    );
    return node;
  } catch (err) {
    node.cleanup();
    throw err;
  }
}

/** Every regular file under dir with its bytes, for byte-identical comparisons. */
export function readTree(dir: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) files.set(path.relative(dir, p), fs.readFileSync(p));
      else if (e.isSymbolicLink()) files.set(`${path.relative(dir, p)} ->`, Buffer.from(fs.readlinkSync(p)));
    }
  };
  walk(dir);
  return files;
}
