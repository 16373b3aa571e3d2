import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HOUR_MS } from '../../src/core/validity.js';
import { createCa } from '../../src/node/pki/certs.js';
import { generateKey, privateKeyPem } from '../../src/node/pki/keys.js';
import { cliPath, repoRoot, type CliResult } from './env.js';
import { clusterBin, clusterDir } from './live-cluster.js';

/**
 * A real multi-node kubeadm 1.20.2 cluster on this one machine, for tests of tools that reach
 * nodes only through OpenSSH from an admin host.
 *
 * - Every node has its own network, mount and UTS namespaces (hostname = node name), set up by
 *   multi-node-namespace.sh: throwaway overlays on /etc, /usr, /var, /root; its own
 *   /etc/kubernetes and /var/lib/kubelet (host dirs under the cluster root); its own dockerd
 *   (data/exec roots and socket of its own, as in the one-node harness live-cluster.ts); its own
 *   sshd (Debian's openssh-server, `sshd -D -f`, a host key per node, root login with the test
 *   client key only); the kubelet as a service behind a `systemctl` shim
 *   (multi-node-systemctl.sh, multi-node-kubelet.sh), so kubeadm starts and restarts it itself
 *   and a tool can do `systemctl restart kubelet` over ssh.
 * - Their veths sit on a bridge in a network namespace of its own; addresses are TEST-NET-1
 *   (192.0.2.0/24) only, nothing routes out. An admin namespace on the same bridge is where the
 *   tool under test runs (`adminRun`), with an ssh_config, known_hosts (strict host-key
 *   checking), the client key, an Ansible INI inventory and an admin kubeconfig.
 * - Stacked etcd: `kubeadm init` on the first control plane with a controlPlaneEndpoint (a name,
 *   kf-api.test, that every node's /etc/hosts maps to the first control plane) and
 *   --upload-certs, then `kubeadm join --control-plane` one at a time (etcd grows by one member
 *   each), then the workers' `kubeadm join` all at once. Stock kubeadm 1.20.2 from
 *   scripts/test-cluster.sh; no CNI (the kubelet's no-op network plugin keeps nodes Ready; the
 *   only pods are the host-network static pods); the coredns and kube-proxy addons are skipped.
 * - Named `kf-mn-*` (network namespaces, the cluster root in the temp dir): a run killed before
 *   its stop() is cleaned up by the next start (processes in those namespaces killed by pid,
 *   namespaces deleted, the old root removed). One cluster per machine at a time.
 */

export interface MultiNodeOptions {
  controlPlanes?: number;
  workers?: number;
  /**
   * Names of the network namespaces and the root start with this (default kf-mn-; kf-m<letter>-):
   * two clusters with different prefixes run side by side, each in namespaces of its own.
   */
  prefix?: string;
  /**
   * CAs (ca, etcd/ca, front-proxy-ca) that end at this moment, handed to `kubeadm init`: the
   * joining control planes get them through --upload-certs, the workers ca.crt through join. The
   * moment must leave the bring-up time (145 s alone, 233-249 s with a second cluster beside it,
   * measured on the shared 2-core VM): a join after it fails.
   */
  caNotAfter?: Date;
  /**
   * false: only the nodes' namespaces, dockerd and sshd, the admin namespace and its files (no
   * images, no kubeadm): the ssh layer alone, in seconds, without the cluster binaries.
   */
  kubernetes?: boolean;
  log?: (line: string) => void;
}

export interface ClusterNode {
  name: string;
  role: 'control-plane' | 'worker';
  address: string;
  /** host paths of the node's /etc/kubernetes and /var/lib/kubelet */
  kubernetesDir: string;
  kubeletDir: string;
}

export interface RunOptions {
  timeoutMs?: number;
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface BringUpFigures {
  /** per node: namespaces + dockerd + sshd + images, then kubeadm init/join, in seconds */
  nodes: { name: string; prepareS: number; kubeadmS: number }[];
  totalS: number;
  /** sum of the resident memory of every process in the nodes' namespaces, sampled every 2 s */
  peakRssBytes: number;
  /** the machine's MemTotal - MemAvailable at its highest during bring-up */
  peakMachineUsedBytes: number;
}

export interface MultiNodeCluster {
  root: string;
  nodes: ClusterNode[];
  /** the control-plane endpoint's name and port (every node's /etc/hosts names it) */
  endpoint: string;
  admin: {
    netns: string;
    address: string;
    sshConfig: string;
    knownHosts: string;
    identity: string;
    inventory: string;
    /** admin.conf with the first control plane's address as server (the admin has no /etc/hosts entry) */
    kubeconfig: string;
  };
  figures: BringUpFigures;
  /** argv in the admin namespace (`ip netns exec`); the files above are readable there. */
  adminRun(argv: string[], opts?: RunOptions): Promise<CliResult>;
  /** argv in a node's namespaces (nsenter into its holder), as root. */
  nodeRun(name: string, argv: string[], opts?: RunOptions): Promise<CliResult>;
  /** kubectl 1.20.2 with the admin kubeconfig, from the admin namespace. */
  kubectl(args: string[], opts?: RunOptions): Promise<CliResult>;
  /** Stops everything started, by pid, and removes namespaces, bridge and files. Never throws. */
  stop(): Promise<void>;
}

/** The default name prefix of a cluster's namespaces and root; another prefix runs a second cluster beside it. */
export const DEFAULT_PREFIX = 'kf-mn-';
const GATEWAY = '192.0.2.1';
const ADMIN_ADDRESS = '192.0.2.2';
const ENDPOINT_NAME = 'kf-api.test';
const helpers = path.join(repoRoot, 'test/helpers');
const componentBinaries = ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler'];

const netnsOf = (prefix: string, node: string) => `${prefix}${node.replace(/^kf-/, '')}`;

/** Runs argv, async (the bring-up samples memory and runs workers side by side meanwhile). */
export function run(argv: string[], opts: RunOptions = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const [cmd, ...args] = argv;
    const child = spawn(cmd!, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\n(killed after ${(opts.timeoutMs ?? 300_000) / 1000}s)`;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 300_000);
    child.on('error', (e) => {
      stderr += `\n${e.message}`;
    });
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

function failed(what: string, r: CliResult): Error {
  return new Error(
    `${what} failed (exit ${String(r.status)}):\n${r.stderr.slice(-4000)}\n${r.stdout.slice(-2000)}`,
  );
}

async function must(argv: string[], opts: RunOptions = {}): Promise<string> {
  const r = await run(argv, opts);
  if (r.status !== 0) throw failed(argv.join(' '), r);
  return r.stdout;
}

/** Synchronous, for stop() and the stale clean-up: never throws. */
function quiet(argv: string[]): CliResult {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  log?: () => string | Promise<string>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline)
      throw new Error(`${what}: not within ${timeoutMs / 1000}s${log ? `\n${await log()}` : ''}`);
    await sleep(1000);
  }
}

function tail(file: string, lines = 40): string {
  try {
    return `--- ${file}\n${fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n')}`;
  } catch {
    return `(no ${file})`;
  }
}

function nsInode(file: string): string | undefined {
  try {
    return fs.readlinkSync(file);
  } catch {
    return undefined;
  }
}

/** Pids whose namespace link of this kind (net, mnt) is one of `links` (e.g. "net:[4026532]"). */
function pidsIn(kind: 'net' | 'mnt', links: Set<string>): number[] {
  const out: number[] = [];
  if (links.size === 0) return out;
  for (const e of fs.readdirSync('/proc')) {
    const pid = Number(e);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    const l = nsInode(`/proc/${pid}/ns/${kind}`);
    if (l && links.has(l)) out.push(pid);
  }
  return out;
}

function killAll(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/** The link text /proc/PID/ns/net has for a named network namespace (from its bind mount's inode). */
function netnsLink(name: string): string | undefined {
  try {
    return `net:[${fs.statSync(`/run/netns/${name}`).ino}]`;
  } catch {
    return undefined;
  }
}

function listNetns(prefix: string): string[] {
  return quiet(['ip', 'netns', 'list'])
    .stdout.split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(prefix));
}

/** What a killed earlier run left: processes in our namespaces, the namespaces, its root. */
export async function cleanStale(
  log: (s: string) => void = () => undefined,
  prefix = DEFAULT_PREFIX,
): Promise<void> {
  const names = listNetns(prefix);
  const links = new Set(names.map(netnsLink).filter((l): l is string => l !== undefined));
  for (let i = 0; i < 10; i++) {
    const pids = pidsIn('net', links);
    if (pids.length === 0) break;
    log(`stale: killing ${pids.length} process(es) left in ${names.join(', ')}`);
    killAll(pids);
    await sleep(1000);
  }
  for (const n of names) quiet(['ip', 'netns', 'delete', n]);
  for (const e of fs.readdirSync(os.tmpdir())) {
    if (!e.startsWith(prefix)) continue;
    log(`stale: removing ${path.join(os.tmpdir(), e)}`);
    fs.rmSync(path.join(os.tmpdir(), e), { recursive: true, force: true });
  }
}

/** A root fs holding these files (binaries plus the libraries ldd lists) as a tarball for `docker import`. */
function imageTarball(dir: string, name: string, files: { from: string; to: string }[]): string {
  const rootfs = path.join(dir, name);
  const copy = (from: string, to: string) => {
    fs.mkdirSync(path.dirname(path.join(rootfs, to)), { recursive: true });
    fs.copyFileSync(from, path.join(rootfs, to));
    fs.chmodSync(path.join(rootfs, to), 0o755);
  };
  for (const f of files) {
    copy(f.from, f.to);
    const ldd = spawnSync('ldd', [f.from], { encoding: 'utf8' });
    for (const lib of ldd.stdout.match(/\/[^\s:]+/g) ?? [])
      if (fs.existsSync(lib)) copy(fs.realpathSync(lib), lib);
  }
  for (const d of ['tmp', 'etc', 'var/run'])
    fs.mkdirSync(path.join(rootfs, d), { recursive: true, mode: 0o1777 });
  fs.writeFileSync(path.join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  const tarball = `${rootfs}.tar`;
  const r = spawnSync('tar', ['-C', rootfs, '-cf', tarball, '.'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tar of ${rootfs}: ${r.stderr}`);
  fs.rmSync(rootfs, { recursive: true, force: true });
  return tarball;
}

interface Image {
  tag: string;
  tarball: string;
  changes: string[];
  /** workers need only the pause image (no control-plane static pods there) */
  everyNode: boolean;
}

/** The images kubeadm's manifests name, made locally once (no registry here), imported per node. */
async function makeImages(dir: string): Promise<Image[]> {
  fs.mkdirSync(dir, { recursive: true });
  const list = (
    await must([clusterBin('kubeadm'), 'config', 'images', 'list', '--kubernetes-version', 'v1.20.2'])
  )
    .split('\n')
    .filter(Boolean);
  const pathEnv = 'ENV PATH=/usr/local/bin:/usr/bin:/bin';
  let sleeper: string | undefined;
  return list.map((tag) => {
    const name = /\/([a-z-]+):/.exec(tag)?.[1] ?? 'image';
    if (componentBinaries.includes(name))
      return {
        tag,
        tarball: imageTarball(dir, name, [{ from: clusterBin(name), to: `/usr/local/bin/${name}` }]),
        changes: [pathEnv],
        everyNode: false,
      };
    if (name === 'etcd')
      return {
        tag,
        tarball: imageTarball(dir, name, [{ from: '/usr/bin/etcd', to: '/usr/local/bin/etcd' }]),
        changes: [pathEnv],
        everyNode: false,
      };
    // pause: its entrypoint sleeps (busybox is static). coredns and kube-proxy (addons, skipped)
    // get it too, only so that preflight finds every image
    sleeper ??= imageTarball(dir, 'sleeper', [{ from: '/bin/busybox', to: '/bin/busybox' }]);
    return {
      tag,
      tarball: sleeper,
      changes: ['ENTRYPOINT ["/bin/busybox", "sleep", "2147483647"]'],
      everyNode: name === 'pause',
    };
  });
}

/**
 * A self-signed CA that ends at `notAfter`, made by the tool's own code (what `ca init` writes:
 * kubeadm's manual-procedure CA, PKCS#1 key); `ca init --validity` counts whole hours from now,
 * a drill needs the exact moment.
 */
async function writeCa(dir: string, base: string, cn: string, notAfter: Date): Promise<void> {
  const now = new Date(Math.floor(Date.now() / 1000) * 1000);
  const key = await generateKey('rsa-2048');
  const ca = await createCa(cn, key, (notAfter.getTime() - now.getTime()) / HOUR_MS, now);
  fs.mkdirSync(path.dirname(path.join(dir, base)), { recursive: true });
  fs.writeFileSync(path.join(dir, `${base}.crt`), ca.pem);
  fs.writeFileSync(path.join(dir, `${base}.key`), privateKeyPem(key.privateKey), { mode: 0o600 });
}

class Node implements ClusterNode {
  readonly netns: string;
  readonly dir: string;
  readonly kubernetesDir: string;
  readonly kubeletDir: string;
  holder?: ChildProcess;
  dockerd?: ChildProcess;
  sshd?: ChildProcess;
  mntLink?: string;

  constructor(
    readonly name: string,
    readonly role: 'control-plane' | 'worker',
    readonly address: string,
    readonly index: number,
    root: string,
    prefix: string,
  ) {
    this.netns = netnsOf(prefix, name);
    this.dir = path.join(root, 'nodes', name);
    this.kubernetesDir = path.join(this.dir, 'etc-kubernetes');
    this.kubeletDir = path.join(this.dir, 'var-lib-kubelet');
    fs.mkdirSync(this.dir, { recursive: true });
  }

  get veth(): string {
    return `kfmn${this.index}`;
  }

  enter(argv: string[]): string[] {
    if (!this.holder?.pid) throw new Error(`node ${this.name}: its namespaces are not up`);
    return ['nsenter', '-t', String(this.holder.pid), '-m', '-n', '-u', '--', ...argv];
  }

  run(argv: string[], opts: RunOptions = {}): Promise<CliResult> {
    return run(this.enter(argv), opts);
  }

  async must(argv: string[], opts: RunOptions = {}): Promise<string> {
    const r = await this.run(argv, opts);
    if (r.status !== 0) throw failed(`${this.name}: ${argv.join(' ')}`, r);
    return r.stdout;
  }

  daemon(name: string, argv: string[]): ChildProcess {
    const log = fs.openSync(path.join(this.dir, `${name}.log`), 'a');
    const [cmd, ...args] = this.enter(argv);
    const child = spawn(cmd!, args, { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    child.on('error', () => undefined);
    return child;
  }

  logOf(name: string, lines = 40): string {
    return tail(path.join(this.dir, `${name}.log`), lines);
  }

  kubeletLog(lines = 40): string {
    return tail(path.join(this.dir, 'overlay/var/upper/log/kubelet.log'), lines);
  }
}

/** The cluster; see the file header. Throws with the reason when the fixtures are missing. */
export async function startMultiNodeCluster(opts: MultiNodeOptions = {}): Promise<MultiNodeCluster> {
  const log = opts.log ?? (() => undefined);
  const controlPlanes = opts.controlPlanes ?? 3;
  const workers = opts.workers ?? 2;
  if (process.getuid?.() !== 0)
    throw new Error('the multi-node cluster needs root: namespaces, dockerd, kubelet, sshd');
  const kubernetes = opts.kubernetes ?? true;
  for (const b of kubernetes ? [...componentBinaries, 'kubelet', 'kubeadm', 'kubectl'] : [])
    if (!fs.existsSync(clusterBin(b)))
      throw new Error(
        `${clusterBin(b)} missing: run 'sudo bash scripts/test-env.sh up' (it runs scripts/test-cluster.sh)`,
      );
  for (const [file, pkg] of [
    ['/usr/bin/etcd', 'etcd-server'],
    ['/usr/sbin/sshd', 'openssh-server'],
    ['/usr/bin/ssh', 'openssh-client'],
  ] as const)
    if (!fs.existsSync(file))
      throw new Error(`${file} missing (${pkg}): run 'sudo bash scripts/test-env.sh up'`);
  if (controlPlanes < 1 || controlPlanes > 9 || workers < 0 || workers > 9)
    throw new Error('1-9 control planes and 0-9 workers');

  const prefix = opts.prefix ?? DEFAULT_PREFIX;
  if (!/^kf-m[a-z]-$/.test(prefix)) throw new Error(`prefix ${prefix}: expected kf-m<letter>-`);
  const BRIDGE_NS = `${prefix}br`;
  const ADMIN_NS = `${prefix}admin`;
  await cleanStale(log, prefix);
  const t0 = Date.now();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const nodes: Node[] = [];
  for (let i = 0; i < controlPlanes; i++)
    nodes.push(new Node(`kf-cp-${i + 1}`, 'control-plane', `192.0.2.${11 + i}`, i + 1, root, prefix));
  for (let i = 0; i < workers; i++)
    nodes.push(new Node(`kf-worker-${i + 1}`, 'worker', `192.0.2.${21 + i}`, 11 + i, root, prefix));
  const first = nodes[0]!;
  const adminDir = path.join(root, 'admin');
  fs.mkdirSync(adminDir, { recursive: true, mode: 0o700 });
  const admin = {
    netns: ADMIN_NS,
    address: ADMIN_ADDRESS,
    sshConfig: path.join(adminDir, 'ssh_config'),
    knownHosts: path.join(adminDir, 'known_hosts'),
    identity: path.join(adminDir, 'id_ed25519'),
    inventory: path.join(adminDir, 'inventory.ini'),
    kubeconfig: path.join(adminDir, 'admin.conf'),
  };
  const figures: BringUpFigures = { nodes: [], totalS: 0, peakRssBytes: 0, peakMachineUsedBytes: 0 };

  // memory: every process in the nodes' network namespaces (their static pods' containers have
  // mount namespaces of their own, but the node's network), and the machine
  const sample = () => {
    const links = new Set(nodes.map((n) => netnsLink(n.netns)).filter((l): l is string => l !== undefined));
    let rss = 0;
    for (const pid of pidsIn('net', links)) {
      try {
        const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
        if (m) rss += Number(m[1]) * 1024;
      } catch {
        /* gone */
      }
    }
    figures.peakRssBytes = Math.max(figures.peakRssBytes, rss);
    const mem = fs.readFileSync('/proc/meminfo', 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(mem)?.[1] ?? 0) * 1024;
    figures.peakMachineUsedBytes = Math.max(
      figures.peakMachineUsedBytes,
      kb('MemTotal') - kb('MemAvailable'),
    );
  };
  const sampler = setInterval(sample, 2000);
  sampler.unref();

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    clearInterval(sampler);
    await Promise.all(nodes.map((n) => stopNode(n)));
    // whatever is still in our network namespaces (a tool's leftovers in the admin one too)
    const names = [BRIDGE_NS, ADMIN_NS, ...nodes.map((n) => n.netns)];
    const links = new Set(names.map(netnsLink).filter((l): l is string => l !== undefined));
    for (let i = 0; i < 10; i++) {
      const pids = pidsIn('net', links);
      if (pids.length === 0) break;
      killAll(pids);
      await sleep(1000);
    }
    for (const n of names) quiet(['ip', 'netns', 'delete', n]);
    for (let i = 0; i < 5; i++) {
      try {
        fs.rmSync(root, { recursive: true, force: true });
        return;
      } catch {
        await sleep(2000);
      }
    }
  };

  try {
    log(`root ${root}`);
    // network: a bridge in its own namespace, the admin and every node on it
    await must(['ip', 'netns', 'add', BRIDGE_NS]);
    await must(['ip', '-n', BRIDGE_NS, 'link', 'set', 'lo', 'up']);
    await must(['ip', '-n', BRIDGE_NS, 'link', 'add', 'br0', 'type', 'bridge']);
    await must(['ip', '-n', BRIDGE_NS, 'addr', 'add', `${GATEWAY}/24`, 'dev', 'br0']);
    await must(['ip', '-n', BRIDGE_NS, 'link', 'set', 'br0', 'up']);
    const wire = async (netns: string, veth: string, address: string) => {
      await must(['ip', 'netns', 'add', netns]);
      await must([
        'ip',
        '-n',
        BRIDGE_NS,
        'link',
        'add',
        veth,
        'type',
        'veth',
        'peer',
        'name',
        'eth0',
        'netns',
        netns,
      ]);
      await must(['ip', '-n', BRIDGE_NS, 'link', 'set', veth, 'master', 'br0', 'up']);
      await must(['ip', '-n', netns, 'link', 'set', 'lo', 'up']);
      await must(['ip', '-n', netns, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
      await must(['ip', '-n', netns, 'link', 'set', 'eth0', 'up']);
      // a default route: kubeadm takes its advertise address from the default route's interface
      await must(['ip', '-n', netns, 'route', 'add', 'default', 'via', GATEWAY, 'dev', 'eth0']);
    };
    await wire(ADMIN_NS, 'kfmn0', ADMIN_ADDRESS);
    for (const n of nodes) await wire(n.netns, n.veth, n.address);

    // ssh: a client key for the admin, a host key per node, known_hosts and ssh_config
    await must(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'kf-mn admin', '-f', admin.identity]);
    const knownHosts: string[] = [];
    const sshConfig: string[] = [];
    for (const n of nodes) {
      const key = path.join(n.dir, 'ssh_host_ed25519_key');
      await must(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', n.name, '-f', key]);
      const pub = fs.readFileSync(`${key}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
      knownHosts.push(`${n.name},${n.address} ${pub}`);
      sshConfig.push(`Host ${n.name}`, `  HostName ${n.address}`, '');
      fs.writeFileSync(
        path.join(n.dir, 'sshd_config'),
        [
          `ListenAddress ${n.address}:22`,
          `HostKey ${key}`,
          'PidFile none',
          `AuthorizedKeysFile ${admin.identity}.pub`,
          'PermitRootLogin prohibit-password',
          'PubkeyAuthentication yes',
          'PasswordAuthentication no',
          'KbdInteractiveAuthentication no',
          'UsePAM no',
          // the key files live under the temp dir (world-writable /tmp on the path)
          'StrictModes no',
          'Subsystem sftp internal-sftp',
          'LogLevel VERBOSE',
          '',
        ].join('\n'),
      );
    }
    fs.writeFileSync(admin.knownHosts, `${knownHosts.join('\n')}\n`);
    fs.writeFileSync(
      admin.sshConfig,
      [
        ...sshConfig,
        'Host *',
        '  User root',
        `  IdentityFile ${admin.identity}`,
        '  IdentitiesOnly yes',
        `  UserKnownHostsFile ${admin.knownHosts}`,
        '  GlobalKnownHostsFile /dev/null',
        '  StrictHostKeyChecking yes',
        '  BatchMode yes',
        '  ConnectTimeout 10',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    const line = (n: Node) => `${n.name} ansible_host=${n.address}`;
    fs.writeFileSync(
      admin.inventory,
      [
        '[kube_control_plane]',
        ...nodes.filter((n) => n.role === 'control-plane').map(line),
        '',
        '[kube_node]',
        ...nodes.filter((n) => n.role === 'worker').map(line),
        '',
        '[k8s_cluster:children]',
        'kube_control_plane',
        'kube_node',
        '',
        '[all:vars]',
        'ansible_user=root',
        `ansible_ssh_private_key_file=${admin.identity}`,
        `ansible_ssh_common_args='-F ${admin.sshConfig}'`,
        '',
      ].join('\n'),
    );
    const hosts = path.join(root, 'hosts');
    fs.writeFileSync(
      hosts,
      [
        '127.0.0.1 localhost',
        '::1 localhost ip6-localhost ip6-loopback',
        `${first.address} ${ENDPOINT_NAME}`,
        ...nodes.map((n) => `${n.address} ${n.name}`),
        '',
      ].join('\n'),
    );
    const images = kubernetes ? await makeImages(path.join(root, 'images')) : [];

    // every node's namespaces, dockerd, sshd and images, side by side
    await Promise.all(
      nodes.map(async (n) => {
        const t = Date.now();
        await prepareNode(n, hosts, images);
        figures.nodes.push({ name: n.name, prepareS: (Date.now() - t) / 1000, kubeadmS: 0 });
        log(`${n.name}: namespaces, dockerd, sshd, images in ${Math.round((Date.now() - t) / 1000)}s`);
      }),
    );
    figures.nodes.sort(
      (a, b) => nodes.findIndex((n) => n.name === a.name) - nodes.findIndex((n) => n.name === b.name),
    );
    const figure = (n: Node) => figures.nodes.find((f) => f.name === n.name)!;

    const kubectl = (args: string[], o: RunOptions = {}) =>
      run(
        [
          'ip',
          'netns',
          'exec',
          ADMIN_NS,
          clusterBin('kubectl'),
          '--kubeconfig',
          admin.kubeconfig,
          '--request-timeout',
          '20s',
          ...args,
        ],
        { timeoutMs: 60_000, ...o },
      );
    const handle: MultiNodeCluster = {
      root,
      nodes: nodes.map((n) => ({
        name: n.name,
        role: n.role,
        address: n.address,
        kubernetesDir: n.kubernetesDir,
        kubeletDir: n.kubeletDir,
      })),
      endpoint: `${ENDPOINT_NAME}:6443`,
      admin,
      figures,
      adminRun: (argv, o = {}) => run(['ip', 'netns', 'exec', ADMIN_NS, ...argv], o),
      nodeRun: (name, argv, o = {}) => {
        const n = nodes.find((x) => x.name === name);
        if (!n) return Promise.reject(new Error(`no node ${name}`));
        return n.run(argv, o);
      },
      kubectl,
      stop,
    };
    if (!kubernetes) {
      sample();
      figures.totalS = (Date.now() - t0) / 1000;
      return handle;
    }

    // the first control plane
    const token = (await must([clusterBin('kubeadm'), 'token', 'generate'])).trim();
    const certificateKey = (await must([clusterBin('kubeadm'), 'certs', 'certificate-key'])).trim();
    if (opts.caNotAfter) {
      const pki = path.join(first.kubernetesDir, 'pki');
      await writeCa(pki, 'ca', 'kubernetes', opts.caNotAfter);
      await writeCa(pki, 'etcd/ca', 'etcd-ca', opts.caNotAfter);
      await writeCa(pki, 'front-proxy-ca', 'front-proxy-ca', opts.caNotAfter);
      log(`CAs ending ${opts.caNotAfter.toISOString()} written for kubeadm init`);
    }
    let t = Date.now();
    const initConfig = path.join(first.dir, 'kubeadm-init.yaml');
    fs.writeFileSync(
      initConfig,
      [
        'apiVersion: kubeadm.k8s.io/v1beta2',
        'kind: InitConfiguration',
        'bootstrapTokens:',
        `- token: ${token}`,
        '  ttl: 24h0m0s',
        `certificateKey: ${certificateKey}`,
        'localAPIEndpoint:',
        `  advertiseAddress: ${first.address}`,
        '  bindPort: 6443',
        'nodeRegistration:',
        `  name: ${first.name}`,
        '  criSocket: /var/run/dockershim.sock',
        '---',
        'apiVersion: kubeadm.k8s.io/v1beta2',
        'kind: ClusterConfiguration',
        'kubernetesVersion: v1.20.2',
        `controlPlaneEndpoint: ${ENDPOINT_NAME}:6443`,
        'apiServer:',
        '  timeoutForControlPlane: 10m0s', // 4m by default; the shared 2-core machine can be slower
        '---',
        // no systemd cgroups, cgroup v1, no swap rules, as in the one-node harness; uploaded by
        // init, so every joining node's kubelet gets the same
        'apiVersion: kubelet.config.k8s.io/v1beta1',
        'kind: KubeletConfiguration',
        'cgroupDriver: cgroupfs',
        'failSwapOn: false',
        'cgroupsPerQOS: false',
        'enforceNodeAllocatable: []',
        // a kubelet that starts before its node's disk capacity is known refuses a static pod
        // asking for ephemeral storage (etcd asks for 100Mi): the joining control planes' etcd
        // was refused this way ("no set of running pods found to reclaim resources")
        'featureGates:',
        '  LocalStorageCapacityIsolation: false',
        '',
      ].join('\n'),
    );
    await kubeadm(first, [
      'init',
      '--config',
      initConfig,
      '--upload-certs',
      '--ignore-preflight-errors=all',
      '--skip-phases=addon/coredns,addon/kube-proxy',
    ]);
    figure(first).kubeadmS = (Date.now() - t) / 1000;
    log(`${first.name}: kubeadm init in ${Math.round(figure(first).kubeadmS)}s`);

    // the admin's kubeconfig: admin.conf with the first control plane's address
    const adminConf = fs
      .readFileSync(path.join(first.kubernetesDir, 'admin.conf'), 'utf8')
      .replace(`server: https://${ENDPOINT_NAME}:6443`, `server: https://${first.address}:6443`);
    fs.writeFileSync(admin.kubeconfig, adminConf, { mode: 0o600 });

    const caHash = `sha256:${createHash('sha256')
      .update(
        new X509Certificate(fs.readFileSync(path.join(first.kubernetesDir, 'pki/ca.crt'))).publicKey.export({
          type: 'spki',
          format: 'der',
        }),
      )
      .digest('hex')}`;
    const join = async (n: Node) => {
      const file = path.join(n.dir, 'kubeadm-join.yaml');
      fs.writeFileSync(
        file,
        [
          'apiVersion: kubeadm.k8s.io/v1beta2',
          'kind: JoinConfiguration',
          'discovery:',
          '  bootstrapToken:',
          `    apiServerEndpoint: ${ENDPOINT_NAME}:6443`,
          `    token: ${token}`,
          `    caCertHashes: [${caHash}]`,
          '  timeout: 10m0s',
          'nodeRegistration:',
          `  name: ${n.name}`,
          '  criSocket: /var/run/dockershim.sock',
          ...(n.role === 'control-plane'
            ? [
                'controlPlane:',
                '  localAPIEndpoint:',
                `    advertiseAddress: ${n.address}`,
                '    bindPort: 6443',
                `  certificateKey: ${certificateKey}`,
              ]
            : []),
          '',
        ].join('\n'),
      );
      const tj = Date.now();
      await kubeadm(n, ['join', '--config', file, '--ignore-preflight-errors=all']);
      figure(n).kubeadmS = (Date.now() - tj) / 1000;
      log(
        `${n.name}: kubeadm join${n.role === 'control-plane' ? ' --control-plane' : ''} in ${Math.round(figure(n).kubeadmS)}s`,
      );
    };
    // control planes one at a time (each adds an etcd member), then the workers together
    for (const n of nodes.slice(1).filter((x) => x.role === 'control-plane')) await join(n);
    await Promise.all(nodes.filter((x) => x.role === 'worker').map(join));

    t = Date.now();
    await until(
      'every node Ready',
      300_000,
      async () => {
        const r = await kubectl(['get', 'nodes', '-o', 'json']);
        if (r.status !== 0) return false;
        const items = (
          JSON.parse(r.stdout) as {
            items: {
              metadata: { name: string };
              status: { conditions: { type: string; status: string }[] };
            }[];
          }
        ).items;
        return (
          nodes.every((n) =>
            items.some(
              (i) =>
                i.metadata.name === n.name &&
                i.status.conditions.some((c) => c.type === 'Ready' && c.status === 'True'),
            ),
          ) && true
        );
      },
      async () =>
        `${(await kubectl(['get', 'nodes', '-o', 'wide'])).stdout}\n${nodes.map((n) => n.kubeletLog(10)).join('\n')}`,
    );
    sample();
    figures.totalS = (Date.now() - t0) / 1000;
    log(
      `every node Ready ${Math.round((Date.now() - t) / 1000)}s after the last join; total ${Math.round(figures.totalS)}s`,
    );

    return handle;
  } catch (e) {
    await stop();
    throw e;
  }
}

/** `kubeadm ARGS` in the node, failing with the node's kubelet log and containers. */
async function kubeadm(n: Node, args: string[]): Promise<void> {
  const r = await n.run(['/usr/local/bin/kubeadm', ...args, '--v=1'], { timeoutMs: 15 * 60_000 });
  fs.writeFileSync(path.join(n.dir, `kubeadm-${args[0]}.log`), `${r.stdout}\n${r.stderr}`);
  if (r.status !== 0) {
    const ps = await n.run(['docker', 'ps', '-a', '--format', '{{.Names}} {{.Status}}']);
    throw new Error(
      `${failed(`${n.name}: kubeadm ${args.join(' ')}`, r).message}\n--- containers\n${ps.stdout}\n${n.kubeletLog(30)}`,
    );
  }
}

async function prepareNode(n: Node, hosts: string, images: Image[]): Promise<void> {
  n.holder = spawn(
    'nsenter',
    [
      `--net=/run/netns/${n.netns}`,
      '--',
      'unshare',
      '-m',
      '-u',
      '--propagation',
      'private',
      '--',
      'sh',
      path.join(helpers, 'multi-node-namespace.sh'),
      n.dir,
      n.name,
      hosts,
      path.join(clusterDir, 'bin'),
    ],
    { stdio: ['ignore', 'ignore', fs.openSync(path.join(n.dir, 'namespace.log'), 'a')] },
  );
  n.holder.on('error', () => undefined);
  await until(
    `${n.name}: its namespaces`,
    30_000,
    () => fs.existsSync(path.join(n.dir, 'namespace-ready')),
    () => n.logOf('namespace'),
  );
  n.mntLink = nsInode(`/proc/${n.holder.pid}/ns/mnt`);
  n.sshd = n.daemon('sshd', ['/usr/sbin/sshd', '-D', '-e', '-f', path.join(n.dir, 'sshd_config')]);
  n.dockerd = n.daemon('dockerd', [
    'dockerd',
    `--data-root=${path.join(n.dir, 'docker')}`,
    `--exec-root=${path.join(n.dir, 'docker-exec')}`,
    `--pidfile=${path.join(n.dir, 'docker.pid')}`,
    '-H',
    'unix:///run/docker.sock',
    '--bridge=none',
    '--iptables=false',
    '--ip-masq=false',
    '--userland-proxy=false',
  ]);
  await until(
    `${n.name}: its dockerd`,
    120_000,
    async () => (await n.run(['docker', 'info'], { timeoutMs: 10_000 })).status === 0,
    () => n.logOf('dockerd'),
  );
  for (const img of images)
    if (n.role === 'control-plane' || img.everyNode)
      await n.must(['docker', 'import', ...img.changes.flatMap((c) => ['-c', c]), img.tarball, img.tag]);
}

/** Kubelet (through the shim), containers, dockerd, sshd, then everything left in the node's mount namespace. */
async function stopNode(n: Node): Promise<void> {
  if (!n.holder?.pid || n.holder.exitCode !== null) return;
  await n.run(['systemctl', 'stop', 'kubelet'], { timeoutMs: 60_000 }).catch(() => undefined);
  const d = n.dockerd;
  if (d?.pid && d.exitCode === null) {
    const ids = (await n.run(['docker', 'ps', '-aq'], { timeoutMs: 30_000 })).stdout
      .split('\n')
      .filter(Boolean);
    if (ids.length > 0) await n.run(['docker', 'rm', '-f', ...ids], { timeoutMs: 120_000 });
    const exited = new Promise((resolve) => d.once('exit', resolve));
    d.kill('SIGTERM');
    await Promise.race([exited, sleep(30_000)]);
    if (d.exitCode === null && d.signalCode === null) d.kill('SIGKILL');
  }
  if (n.sshd?.pid && n.sshd.exitCode === null) n.sshd.kill('SIGTERM');
  // the rest in its mount namespace (containerd, shims, a tool's leftovers) was started by us
  if (n.mntLink) {
    const links = new Set([n.mntLink]);
    for (let i = 0; i < 10; i++) {
      const pids = pidsIn('mnt', links).filter((p) => p !== n.holder?.pid);
      if (pids.length === 0) break;
      killAll(pids);
      await sleep(500);
    }
  }
  const h = n.holder;
  const exited = new Promise((resolve) => h.once('exit', resolve));
  h.kill('SIGKILL');
  await Promise.race([exited, sleep(10_000)]);
}

/**
 * argv of `rollout` run from the admin namespace on this cluster: its inventory and ssh_config,
 * the tool and custom kubeadm to carry, then `extra` (the caller's flags: --journal, --json…).
 */
export function rolloutArgv(
  cluster: MultiNodeCluster,
  carry: { tool: string; kubeadm: string },
  extra: readonly string[],
): string[] {
  return [
    process.execPath,
    cliPath,
    'rollout',
    '--inventory',
    cluster.admin.inventory,
    '--ssh-config',
    cluster.admin.sshConfig,
    '--tool',
    carry.tool,
    '--kubeadm',
    carry.kubeadm,
    ...extra,
  ];
}
