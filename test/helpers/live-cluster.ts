import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cliPath, fixturesDir, repoRoot, type CliResult } from './env.js';

/**
 * A real kubeadm 1.20.2 control plane for tests: `kubeadm init` (stock kubeadm of the fixed
 * tree, addons skipped), a kubelet running the static pods through a private Docker engine, all
 * inside private mount and network namespaces (test/helpers/live-node-namespace.sh). The
 * binaries come from scripts/test-cluster.sh (run by `scripts/test-env.sh up`).
 *
 * Why a private dockerd: dockerd resolves a container's bind mounts in its own mount namespace,
 * so the machine's engine would give the static pods the host's /etc/kubernetes. This one runs
 * inside the node's namespaces with its own data/exec roots and socket (/run/docker.sock there).
 */
export const clusterDir = path.join(fixturesDir, 'cluster-v1.20.2');
export const clusterTree = path.join(clusterDir, 'src/kubernetes-1.20.2');
export const clusterBin = (name: string): string => path.join(clusterDir, 'bin', name);
export const nodeName = 'kf-live-node';
export const nodeAddress = '192.0.2.10';

const namespaceScript = path.join(repoRoot, 'test/helpers/live-node-namespace.sh');
const probeScript = path.join(repoRoot, 'test/helpers/https-probe.mjs');
const componentBinaries = ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler'];

export interface ProbeResult {
  status: number;
  body: string;
}

function mustSucceed(what: string, r: CliResult): CliResult {
  if (r.status !== 0)
    throw new Error(
      `${what} failed (exit ${String(r.status)}):\n${r.stderr.slice(-4000)}\n${r.stdout.slice(-2000)}`,
    );
  return r;
}

async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => T | undefined | false,
  log?: () => string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline)
      throw new Error(`${what}: not within ${timeoutMs / 1000}s${log ? `\n${log()}` : ''}`);
    await sleep(2000);
  }
}

function tail(file: string, lines = 40): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return `(no ${file})`;
  }
}

/** Inode of a process's mount namespace, to find everything left inside ours. */
function mountNs(pid: number | 'self'): string | undefined {
  try {
    return fs.readlinkSync(`/proc/${pid}/ns/mnt`);
  } catch {
    return undefined;
  }
}

export class LiveCluster {
  readonly root: string;
  /** bound to /etc/kubernetes inside the namespaces */
  readonly kubernetesDir: string;
  /** bound to /var/lib/kubelet inside the namespaces */
  readonly kubeletDir: string;
  readonly kubeletPkiDir: string;
  readonly backupDir: string;
  private holder?: ChildProcess;
  private dockerd?: ChildProcess;
  private kubelet?: ChildProcess;
  private kubeletStarts = 0;

  constructor() {
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-live-'));
    this.kubernetesDir = path.join(this.root, 'etc-kubernetes');
    this.kubeletDir = path.join(this.root, 'var-lib-kubelet');
    this.kubeletPkiDir = path.join(this.kubeletDir, 'pki');
    this.backupDir = path.join(this.root, 'backups');
  }

  private get holderPid(): number {
    if (!this.holder?.pid) throw new Error('the node namespaces are not up');
    return this.holder.pid;
  }

  private enter(command: string, args: string[]): [string, string[]] {
    return ['nsenter', ['-t', String(this.holderPid), '-m', '-n', '--', command, ...args]];
  }

  /** `command args` inside the node's namespaces (argument arrays only). */
  run(
    command: string,
    args: string[],
    opts: { timeoutMs?: number; input?: string | Buffer } = {},
  ): CliResult {
    const [cmd, full] = this.enter(command, args);
    const r = spawnSync(cmd, full, {
      encoding: 'utf8',
      input: opts.input,
      timeout: opts.timeoutMs ?? 5 * 60_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr + (r.error ? `\n${r.error.message}` : '') };
  }

  must(command: string, args: string[], opts: { timeoutMs?: number; input?: string | Buffer } = {}): string {
    return mustSucceed(`${command} ${args.join(' ')}`, this.run(command, args, opts)).stdout;
  }

  /** The built CLI inside the node. */
  cli(args: string[], opts: { timeoutMs?: number } = {}): CliResult {
    return this.run(process.execPath, [cliPath, ...args], { timeoutMs: opts.timeoutMs ?? 10 * 60_000 });
  }

  /** The tree's kubectl 1.20.2 with admin.conf. */
  kubectl(args: string[], opts: { timeoutMs?: number; extra?: string[] } = {}): CliResult {
    return this.run(
      clusterBin('kubectl'),
      [
        '--kubeconfig',
        '/etc/kubernetes/admin.conf',
        '--request-timeout',
        '20s',
        ...(opts.extra ?? []),
        ...args,
      ],
      opts,
    );
  }

  /**
   * An HTTPS GET to the API server from inside the node with a client certificate (PEM with
   * certificate and key), trusting `ca`: what a kubelet presenting that certificate gets.
   */
  async probe(urlPath: string, clientPem: string, ca = '/etc/kubernetes/pki/ca.crt'): Promise<ProbeResult> {
    // The API server can be away for a while after a restart of the static pods (the kubelet
    // restarts it when its liveness probe fails while etcd settles): wait for it to listen again,
    // and say that it happened and why, instead of failing on the first refused connection.
    const args = [probeScript, `https://127.0.0.1:6443${urlPath}`, ca, clientPem];
    const deadline = Date.now() + 240_000;
    let away = 0;
    for (;;) {
      const r = this.run(process.execPath, args, { timeoutMs: 30_000 });
      if (r.status === 0) {
        if (away > 0)
          console.log(
            `[live-cluster] the API server refused connections ${away} time(s) before answering ${urlPath}; its containers:\n${this.apiserverHistory()}`,
          );
        return JSON.parse(r.stdout) as ProbeResult;
      }
      if (!/ECONNREFUSED|ECONNRESET|socket hang up|timeout/.test(r.stderr) || Date.now() > deadline) {
        throw new Error(
          `probe ${urlPath} failed (exit ${String(r.status)}): ${r.stderr.slice(-2000)}\n${this.apiserverHistory()}\n${this.containerLogs('kube-apiserver')}\n${this.containerLogs('etcd')}\n${this.logOf('kubelet', 40)}`,
        );
      }
      away++;
      await sleep(2000);
    }
  }

  /** Every kube-apiserver container the node's engine has had, with its state: restarts show here. */
  apiserverHistory(): string {
    return this.run('docker', [
      'ps',
      '-a',
      '--filter',
      'name=k8s_kube-apiserver_',
      '--format',
      '{{.ID}} {{.CreatedAt}} {{.Status}}',
    ]).stdout.trim();
  }

  private daemon(name: string, command: string, args: string[]): ChildProcess {
    const log = fs.openSync(path.join(this.root, `${name}.log`), 'a');
    const [cmd, full] = this.enter(command, args);
    const child = spawn(cmd, full, { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    child.on('error', () => undefined);
    return child;
  }

  logOf(name: string, lines = 40): string {
    return `--- ${name}.log\n${tail(path.join(this.root, `${name}.log`), lines)}`;
  }

  private async startNamespaces(): Promise<void> {
    this.holder = spawn('unshare', ['-m', '-n', '--', 'sh', namespaceScript, this.root], {
      stdio: ['ignore', 'ignore', fs.openSync(path.join(this.root, 'namespace.log'), 'a')],
    });
    this.holder.on('error', () => undefined);
    await until(
      'the node namespaces',
      30_000,
      () => fs.existsSync(path.join(this.root, 'namespace-ready')),
      () => this.logOf('namespace'),
    );
  }

  private async startDockerd(): Promise<void> {
    const args = [
      `--data-root=${path.join(this.root, 'docker')}`,
      `--exec-root=${path.join(this.root, 'docker-exec')}`,
      `--pidfile=${path.join(this.root, 'docker.pid')}`,
      '-H',
      'unix:///run/docker.sock',
      '--bridge=none',
      '--iptables=false',
      '--ip-masq=false',
      '--userland-proxy=false',
    ];
    this.dockerd = this.daemon('dockerd', 'dockerd', args);
    await until(
      'the private dockerd',
      60_000,
      () => this.run('docker', ['info'], { timeoutMs: 10_000 }).status === 0,
      () => this.logOf('dockerd'),
    );
  }

  /** `docker import` of a root fs holding these files (binaries plus the libraries ldd lists). */
  private importImage(tag: string, files: { from: string; to: string }[], changes: string[]): void {
    const rootfs = fs.mkdtempSync(path.join(this.root, 'image-'));
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
    mustSucceed('tar of an image root fs', {
      ...spawnSync('tar', ['-C', rootfs, '-cf', tarball, '.'], { encoding: 'utf8' }),
    } as CliResult);
    this.must('docker', ['import', ...changes.flatMap((c) => ['-c', c]), tarball, tag]);
    fs.rmSync(rootfs, { recursive: true, force: true });
    fs.rmSync(tarball, { force: true });
  }

  /** The images kubeadm's manifests name, made locally (no registry here). */
  private importImages(): string[] {
    const images = this.must(clusterBin('kubeadm'), [
      'config',
      'images',
      'list',
      '--kubernetes-version',
      'v1.20.2',
    ])
      .split('\n')
      .filter(Boolean);
    const path_ = 'ENV PATH=/usr/local/bin:/usr/bin:/bin';
    for (const image of images) {
      const name = /\/([a-z-]+):/.exec(image)?.[1];
      if (name && componentBinaries.includes(name))
        this.importImage(image, [{ from: clusterBin(name), to: `/usr/local/bin/${name}` }], [path_]);
      else if (name === 'etcd')
        this.importImage(image, [{ from: '/usr/bin/etcd', to: '/usr/local/bin/etcd' }], [path_]);
      else {
        // pause: its entrypoint sleeps (busybox is static). coredns and kube-proxy (addons,
        // skipped, never run) get the same image only so that preflight finds every image and
        // does not try to pull (no registry here)
        this.importImage(
          image,
          [{ from: '/bin/busybox', to: '/bin/busybox' }],
          ['ENTRYPOINT ["/bin/busybox", "sleep", "2147483647"]'],
        );
      }
    }
    return images;
  }

  private writeKubeadmConfig(): string {
    const file = path.join(this.root, 'kubeadm-config.yaml');
    fs.writeFileSync(
      file,
      [
        'apiVersion: kubeadm.k8s.io/v1beta2',
        'kind: InitConfiguration',
        'nodeRegistration:',
        `  name: ${nodeName}`,
        '  criSocket: /var/run/dockershim.sock',
        '---',
        'apiVersion: kubeadm.k8s.io/v1beta2',
        'kind: ClusterConfiguration',
        'kubernetesVersion: v1.20.2',
        'apiServer:',
        '  timeoutForControlPlane: 10m0s', // 4m by default; the shared 2-core machine can be slower
        '---',
        // this machine has no systemd, cgroup v1 and no swap rules: cgroupfs, no QoS cgroups
        'apiVersion: kubelet.config.k8s.io/v1beta1',
        'kind: KubeletConfiguration',
        'cgroupDriver: cgroupfs',
        'failSwapOn: false',
        'cgroupsPerQOS: false',
        'enforceNodeAllocatable: []',
        '',
      ].join('\n'),
    );
    return file;
  }

  /**
   * The kubelet as kubeadm's systemd drop-in starts it: bootstrap-kubeconfig, kubeconfig,
   * config.yaml and kubeadm-flags.env's flags, except `--network-plugin=cni` (no CNI here; the
   * static pods use the host network, and the default no-op plugin keeps the node Ready).
   */
  async startKubelet(): Promise<void> {
    if (this.kubelet && this.kubelet.exitCode === null) throw new Error('the kubelet is running already');
    const env = fs.readFileSync(path.join(this.kubeletDir, 'kubeadm-flags.env'), 'utf8');
    const flags = (/KUBELET_KUBEADM_ARGS="([^"]*)"/.exec(env)?.[1] ?? '')
      .split(/\s+/)
      .filter((f) => f && f !== '--network-plugin=cni');
    const args = [
      '--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf',
      '--kubeconfig=/etc/kubernetes/kubelet.conf',
      '--config=/var/lib/kubelet/config.yaml',
      '--docker-endpoint=unix:///run/docker.sock',
      // config.yaml's `enforceNodeAllocatable: []` comes back defaulted to [pods], which
      // cgroupsPerQOS: false refuses; an empty flag value means none
      '--enforce-node-allocatable=',
      ...flags,
    ];
    this.kubeletStarts++;
    fs.appendFileSync(
      path.join(this.root, 'kubelet.log'),
      `\n=== kubelet start ${this.kubeletStarts}: ${args.join(' ')}\n`,
    );
    this.kubelet = this.daemon('kubelet', clusterBin('kubelet'), args);
    await until(
      'the kubelet healthz',
      60_000,
      () => this.run('curl', ['-sf', 'http://127.0.0.1:10248/healthz'], { timeoutMs: 10_000 }).status === 0,
      () => this.logOf('kubelet'),
    );
  }

  async stopKubelet(): Promise<void> {
    const k = this.kubelet;
    if (!k || k.exitCode !== null || k.signalCode !== null) return;
    const exited = new Promise((resolve) => k.once('exit', resolve));
    k.kill('SIGTERM');
    await Promise.race([exited, sleep(30_000)]);
    if (k.exitCode === null && k.signalCode === null) k.kill('SIGKILL');
  }

  async restartKubelet(): Promise<void> {
    await this.stopKubelet();
    await this.startKubelet();
  }

  /** The API server answers /readyz through admin.conf. */
  async waitApiserver(timeoutMs = 240_000, extra: string[] = []): Promise<void> {
    await until(
      'kube-apiserver /readyz',
      timeoutMs,
      () => this.kubectl(['get', '--raw', '/readyz'], { timeoutMs: 30_000, extra }).stdout.trim() === 'ok',
      () => `${this.logOf('kubelet', 20)}\n${this.containerLogs('kube-apiserver')}`,
    );
  }

  /**
   * The node's Ready condition and the kubelet's last heartbeat: its Lease's renewTime (every
   * 10 s; the node status itself is re-posted only every 5 min when nothing changes).
   */
  nodeReady(): { status: string; heartbeat: string; reason: string } | undefined {
    const r = this.kubectl(['get', 'node', nodeName, '-o', 'json']);
    const lease = this.kubectl([
      'get',
      'lease',
      '-n',
      'kube-node-lease',
      nodeName,
      '-o',
      'jsonpath={.spec.renewTime}',
    ]);
    if (r.status !== 0 || lease.status !== 0) return undefined;
    const node = JSON.parse(r.stdout) as {
      status: { conditions: { type: string; status: string; reason: string }[] };
    };
    const c = node.status.conditions.find((x) => x.type === 'Ready');
    return c ? { status: c.status, heartbeat: lease.stdout.trim(), reason: c.reason } : undefined;
  }

  async waitNodeReady(
    after?: string,
    timeoutMs = 180_000,
  ): Promise<{ status: string; heartbeat: string; reason: string }> {
    return until(
      `node ${nodeName} Ready${after ? ` with a heartbeat after ${after}` : ''}`,
      timeoutMs,
      () => {
        const c = this.nodeReady();
        return c && c.status === 'True' && (!after || new Date(c.heartbeat) > new Date(after))
          ? c
          : undefined;
      },
      () => `${JSON.stringify(this.nodeReady())}\n${this.logOf('kubelet', 30)}`,
    );
  }

  /** etcd and the three control-plane components all running as containers. */
  async waitStaticPods(timeoutMs = 180_000): Promise<string[]> {
    return until(
      'the four static pods running',
      timeoutMs,
      () => (this.runningComponents().length === 4 ? this.runningComponents() : undefined),
      () => this.runningComponents().join(', '),
    );
  }

  /**
   * The kubelet's client certificate + key as one PEM: its rotation store
   * (pki/kubelet-client-current.pem) when there is one, else what kubelet.conf embeds.
   */
  kubeletClientPem(): { pem: string; from: string } {
    const current = this.kubeletCurrentFile();
    if (current) return { pem: fs.readFileSync(current, 'utf8'), from: current };
    const conf = fs.readFileSync(path.join(this.kubernetesDir, 'kubelet.conf'), 'utf8');
    const data = (k: string) =>
      Buffer.from(new RegExp(`${k}: (\\S+)`).exec(conf)?.[1] ?? '', 'base64').toString('utf8');
    return {
      pem: data('client-certificate-data') + data('client-key-data'),
      from: 'kubelet.conf (embedded)',
    };
  }

  /** A path inside the node as the host sees it (the node's two bound dirs). */
  hostPath(inNode: string): string {
    for (const [from, to] of [
      ['/var/lib/kubelet', this.kubeletDir],
      ['/etc/kubernetes', this.kubernetesDir],
    ] as const) {
      if (inNode === from || inNode.startsWith(`${from}/`)) return to + inNode.slice(from.length);
    }
    return inNode;
  }

  /** Host path of the file kubelet-client-current.pem links to (its target is a path inside the node). */
  kubeletCurrentFile(): string | undefined {
    const link = path.join(this.kubeletPkiDir, 'kubelet-client-current.pem');
    const st = fs.lstatSync(link, { throwIfNoEntry: false });
    if (!st) return undefined;
    if (!st.isSymbolicLink()) return link;
    const target = fs.readlinkSync(link);
    return this.hostPath(path.isAbsolute(target) ? target : path.join('/var/lib/kubelet/pki', target));
  }

  private runningComponents(): string[] {
    const names = this.run('docker', ['ps', '--format', '{{.Names}}']).stdout.split('\n');
    return ['etcd', ...componentBinaries].filter((c) => names.some((n) => n.startsWith(`k8s_${c}_`)));
  }

  /** What a user does by hand: static pod manifests out until the kubelet stopped the pods, then back. */
  async restartStaticPods(): Promise<void> {
    const manifests = path.join(this.kubernetesDir, 'manifests');
    const parked = path.join(this.root, 'parked-manifests');
    fs.mkdirSync(parked);
    const names = fs.readdirSync(manifests);
    for (const n of names) fs.renameSync(path.join(manifests, n), path.join(parked, n));
    try {
      await until(
        'the kubelet stopping the static pods',
        180_000,
        () => this.runningComponents().length === 0,
        () => this.runningComponents().join(', '),
      );
    } finally {
      for (const n of names) fs.renameSync(path.join(parked, n), path.join(manifests, n));
      fs.rmdirSync(parked);
    }
  }

  containerLogs(component: string): string {
    const ids = this.run('docker', ['ps', '-aq', '--filter', `name=k8s_${component}_`])
      .stdout.split('\n')
      .filter(Boolean);
    return ids
      .slice(0, 2)
      .map(
        (id) =>
          `--- docker logs ${component} ${id}\n${this.run('docker', ['logs', '--tail', '20', id]).stderr}`,
      )
      .join('\n');
  }

  /** Namespaces, engine, images, `kubeadm init` with the kubelet running the static pods. */
  async start(): Promise<void> {
    for (const b of [...componentBinaries, 'kubelet', 'kubeadm', 'kubectl']) {
      if (!fs.existsSync(clusterBin(b)))
        throw new Error(
          `${clusterBin(b)} missing: run 'sudo bash scripts/test-env.sh up' (it runs scripts/test-cluster.sh)`,
        );
    }
    if (!fs.existsSync('/usr/bin/etcd'))
      throw new Error("Debian's etcd missing at /usr/bin/etcd: run 'sudo bash scripts/test-env.sh up'");
    await this.startNamespaces();
    await this.startDockerd();
    this.importImages();
    const config = this.writeKubeadmConfig();
    const kubeadm = clusterBin('kubeadm');
    // kubelet-start (config.yaml, flags), certs and kubeconfigs first, so the kubelet can start
    // before `init` waits for it (there is no systemd to start it)
    for (const phase of [['kubelet-start'], ['certs', 'all'], ['kubeconfig', 'all']])
      this.must(kubeadm, ['init', 'phase', ...phase, '--config', config]);
    await this.startKubelet();
    this.must(
      kubeadm,
      [
        'init',
        '--config',
        config,
        '--ignore-preflight-errors=all',
        '--skip-phases=addon/coredns,addon/kube-proxy',
      ],
      { timeoutMs: 10 * 60_000 },
    );
    await this.waitApiserver();
  }

  /** Stops everything started, by pid, then removes the node's files. Never throws. */
  async stop(): Promise<void> {
    const ns = this.holder?.pid ? mountNs(this.holder.pid) : undefined;
    await this.stopKubelet().catch(() => undefined);
    if (this.dockerd?.pid && this.dockerd.exitCode === null) {
      const ids = this.run('docker', ['ps', '-aq'], { timeoutMs: 30_000 }).stdout.split('\n').filter(Boolean);
      if (ids.length > 0) this.run('docker', ['rm', '-f', ...ids], { timeoutMs: 120_000 });
      const d = this.dockerd;
      const exited = new Promise((resolve) => d.once('exit', resolve));
      d.kill('SIGTERM');
      await Promise.race([exited, sleep(30_000)]);
      if (d.exitCode === null && d.signalCode === null) d.kill('SIGKILL');
    }
    // whatever is left in the node's mount namespace (containerd, shims) was started by us
    if (ns) {
      for (const e of fs.readdirSync('/proc')) {
        const pid = Number(e);
        if (!Number.isInteger(pid) || pid === this.holder?.pid) continue;
        if (mountNs(pid) === ns) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
      }
    }
    if (this.holder?.pid && this.holder.exitCode === null) {
      const h = this.holder;
      const exited = new Promise((resolve) => h.once('exit', resolve));
      h.kill('SIGKILL');
      await Promise.race([exited, sleep(10_000)]);
    }
    // the namespace is gone with its last process, and its mounts with it
    for (let i = 0; i < 5; i++) {
      try {
        fs.rmSync(this.root, { recursive: true, force: true });
        return;
      } catch {
        await sleep(2000);
      }
    }
  }
}
