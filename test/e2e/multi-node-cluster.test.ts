import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipDockerTests } from '../helpers/env.js';
import { startMultiNodeCluster, type MultiNodeCluster } from '../helpers/multi-node-cluster.js';

/**
 * The multi-node test cluster itself (test/helpers/multi-node-cluster.ts): three stacked-etcd
 * control planes and two workers of kubeadm 1.20.2, each node in its own namespaces with its
 * own dockerd, kubelet and sshd, reached from an admin namespace over OpenSSH only.
 *
 * Run alone (as root, after `sudo bash scripts/test-env.sh up` built the cluster binaries):
 *   KF_TEST_FIXTURES=/path/to/test/.fixtures npx vitest run test/e2e/multi-node-cluster.test.ts
 * Cost, measured on the shared 2-core VM: every node Ready 117-171 s after start (nodes prepared side
 * by side in 20 s; kubeadm init 54 s; control-plane joins 35 s and 27 s, one at a time; worker
 * joins 16-17 s side by side, in the slower run), 2.8-4.5 min for the whole file with the stop;
 * 3 GiB resident at the peak for the five nodes. It prints these figures on every run. It fails, with the reason, when the binaries or sshd are
 * missing; KF_SKIP_DOCKER_TESTS=1 is the only way to skip it.
 */
const step = (s: string) => console.log(`[multi-node] ${s}`);

interface NodeJson {
  metadata: { name: string; labels: Record<string, string> };
  status: { conditions: { type: string; status: string }[] };
}

describe.skipIf(skipDockerTests)('a multi-node kubeadm 1.20.2 cluster reached over ssh', () => {
  let cluster: MultiNodeCluster;
  /** each node's mount and network namespace links, to find leftovers after stop() */
  const nsLinks = new Set<string>();

  const ssh = (node: string, command: string, extra: string[] = []) =>
    cluster.adminRun(['ssh', '-F', cluster.admin.sshConfig, ...extra, node, command], { timeoutMs: 60_000 });

  beforeAll(async () => {
    cluster = await startMultiNodeCluster({ controlPlanes: 3, workers: 2, log: step });
    for (const n of cluster.nodes) {
      const r = await cluster.nodeRun(n.name, ['readlink', '/proc/self/ns/mnt', '/proc/self/ns/net']);
      for (const l of r.stdout.split('\n').filter(Boolean)) nsLinks.add(l);
    }
    const f = cluster.figures;
    for (const n of f.nodes)
      step(
        `${n.name}: prepared (namespaces, dockerd, sshd, images) in ${n.prepareS.toFixed(0)}s, kubeadm in ${n.kubeadmS.toFixed(0)}s`,
      );
    step(
      `total ${f.totalS.toFixed(0)}s to every node Ready; peak resident memory of the nodes' processes ${(f.peakRssBytes / 2 ** 30).toFixed(2)} GiB, machine in use at most ${(f.peakMachineUsedBytes / 2 ** 30).toFixed(2)} GiB`,
    );
  }, 30 * 60_000);

  afterAll(async () => {
    await cluster?.stop();
  }, 10 * 60_000);

  it(
    'has every node Ready, three control planes with their etcd members',
    async () => {
      const r = await cluster.kubectl(['get', 'nodes', '-o', 'json']);
      expect(r.status, r.stderr).toBe(0);
      const items = (JSON.parse(r.stdout) as { items: NodeJson[] }).items;
      expect(items.map((i) => i.metadata.name).sort()).toEqual(cluster.nodes.map((n) => n.name).sort());
      for (const i of items) {
        expect(i.status.conditions.find((c) => c.type === 'Ready')?.status, i.metadata.name).toBe('True');
        const role = cluster.nodes.find((n) => n.name === i.metadata.name)!.role;
        expect('node-role.kubernetes.io/master' in i.metadata.labels, i.metadata.name).toBe(
          role === 'control-plane',
        );
      }
      // a stacked etcd member and an API server on each control plane (their mirror pods)
      const pods = await cluster.kubectl(['get', 'pods', '-n', 'kube-system', '-o', 'name']);
      for (const n of cluster.nodes.filter((x) => x.role === 'control-plane'))
        for (const c of ['etcd', 'kube-apiserver'])
          expect(pods.stdout, pods.stderr).toContain(`pod/${c}-${n.name}\n`);
      // the members from etcd itself, asked on the last control plane with its own client cert
      const last = cluster.nodes.filter((x) => x.role === 'control-plane').at(-1)!;
      // (etcd's gRPC gateway: Debian's etcd-server has no etcdctl)
      const members = await cluster.nodeRun(last.name, [
        'curl',
        '-sf',
        '--cacert',
        '/etc/kubernetes/pki/etcd/ca.crt',
        '--cert',
        '/etc/kubernetes/pki/etcd/healthcheck-client.crt',
        '--key',
        '/etc/kubernetes/pki/etcd/healthcheck-client.key',
        '-X',
        'POST',
        '-d',
        '{}',
        'https://127.0.0.1:2379/v3/cluster/member/list',
      ]);
      expect(members.status, members.stderr).toBe(0);
      const list = (JSON.parse(members.stdout) as { members: { name: string }[] }).members;
      expect(list.map((m) => m.name).sort()).toEqual(['kf-cp-1', 'kf-cp-2', 'kf-cp-3']);
    },
    5 * 60_000,
  );

  it(
    'reaches every node over ssh from the admin namespace, with strict host keys and the key only',
    async () => {
      for (const n of cluster.nodes) {
        const r = await ssh(n.name, 'hostname');
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout.trim()).toBe(n.name);
        // the address alone works too (known_hosts names both)
        const byAddress = await cluster.adminRun([
          'ssh',
          '-F',
          cluster.admin.sshConfig,
          n.address,
          'hostname',
        ]);
        expect(byAddress.stdout.trim(), byAddress.stderr).toBe(n.name);
      }
      // strict: a known_hosts whose key for the first node is another node's is refused
      const [a, b] = cluster.nodes;
      const lines = fs.readFileSync(cluster.admin.knownHosts, 'utf8').split('\n');
      const keyOf = (name: string) =>
        lines
          .find((l) => l.startsWith(`${name},`))!
          .split(' ')
          .slice(1)
          .join(' ');
      const wrong = path.join(cluster.root, 'known_hosts.wrong');
      fs.writeFileSync(wrong, `${a!.name},${a!.address} ${keyOf(b!.name)}\n`);
      const refused = await ssh(a!.name, 'hostname', ['-o', `UserKnownHostsFile=${wrong}`]);
      expect(refused.status).toBe(255);
      expect(refused.stderr).toMatch(/HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
      // and an unknown host is refused, not added
      const empty = path.join(cluster.root, 'known_hosts.empty');
      fs.writeFileSync(empty, '');
      const unknown = await ssh(a!.name, 'hostname', ['-o', `UserKnownHostsFile=${empty}`]);
      expect(unknown.status).toBe(255);
      expect(fs.readFileSync(empty, 'utf8')).toBe('');
      // root login with another key is refused (no password, no keyboard-interactive)
      const otherKey = path.join(cluster.root, 'other_key');
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', otherKey]);
      const other = await cluster.adminRun([
        'ssh',
        '-F',
        '/dev/null',
        '-o',
        'BatchMode=yes',
        '-o',
        'IdentitiesOnly=yes',
        '-o',
        `UserKnownHostsFile=${cluster.admin.knownHosts}`,
        '-o',
        'StrictHostKeyChecking=yes',
        '-i',
        otherKey,
        `root@${a!.address}`,
        'hostname',
      ]);
      expect(other.status).toBe(255);
      expect(other.stderr).toMatch(/Permission denied \(publickey\)/);
    },
    5 * 60_000,
  );

  it(
    'gives each node its own ca.crt and kubelet.conf (its own kubelet client certificate)',
    async () => {
      const caFingerprints = new Set<string>();
      for (const n of cluster.nodes) {
        // each node's own file, as the node sees it over ssh and as the host sees its dir
        const r = await ssh(n.name, 'cat /etc/kubernetes/pki/ca.crt');
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout).toBe(fs.readFileSync(path.join(n.kubernetesDir, 'pki/ca.crt'), 'utf8'));
        caFingerprints.add(new X509Certificate(r.stdout).fingerprint256);
        // the CA key only on control planes (copied by --upload-certs/--certificate-key)
        expect(fs.existsSync(path.join(n.kubernetesDir, 'pki/ca.key')), n.name).toBe(
          n.role === 'control-plane',
        );
        const conf = fs.readFileSync(path.join(n.kubernetesDir, 'kubelet.conf'), 'utf8');
        expect(conf).toContain(`server: https://${cluster.endpoint}`);
        const file = /client-certificate: (\S+)/.exec(conf)?.[1];
        const pem = file
          ? (await ssh(n.name, `cat ${file}`)).stdout
          : Buffer.from(/client-certificate-data: (\S+)/.exec(conf)![1]!, 'base64').toString('utf8');
        const cert = new X509Certificate(
          pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)![0],
        );
        expect(cert.subject, n.name).toContain(`CN=system:node:${n.name}`);
        expect(cert.checkIssued(new X509Certificate(r.stdout)), n.name).toBe(true);
      }
      expect(caFingerprints.size).toBe(1);
    },
    5 * 60_000,
  );

  it('writes an Ansible INI inventory with both groups', () => {
    const ini = fs.readFileSync(cluster.admin.inventory, 'utf8');
    const group = (g: string) =>
      (new RegExp(`^\\[${g}\\]\\n((?:.+\\n)*)`, 'm').exec(ini)?.[1] ?? '')
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(' ')[0]);
    expect(group('kube_control_plane')).toEqual(['kf-cp-1', 'kf-cp-2', 'kf-cp-3']);
    expect(group('kube_node')).toEqual(['kf-worker-1', 'kf-worker-2']);
  });

  it(
    'stops everything it started and leaves nothing behind',
    async () => {
      const root = cluster.root;
      await cluster.stop();
      expect(fs.existsSync(root)).toBe(false);
      const netns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
      expect(netns).not.toMatch(/^kf-mn-/m);
      const left: string[] = [];
      for (const e of fs.readdirSync('/proc')) {
        if (!/^\d+$/.test(e)) continue;
        for (const kind of ['mnt', 'net']) {
          try {
            if (nsLinks.has(fs.readlinkSync(`/proc/${e}/ns/${kind}`))) left.push(e);
          } catch {
            /* gone */
          }
        }
      }
      expect(left).toEqual([]);
      expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(root);
      expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain('/run/netns/kf-mn-');
    },
    10 * 60_000,
  );
});
