import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RolloutResult } from '../../src/fleet/rollout.js';
import { makeClient, type ClientKeys } from '../helpers/sshd.js';
import { cli, makeClusterPki, startFilesNode, toolStandIn, type FilesNode } from '../helpers/files-nodes.js';
import { runPromtool } from '../helpers/promtool.js';

// rollout --dry-run and --report over real ssh against "files-only" nodes: two control planes
// and two workers, each an sshd on its own 127.0.0.N inside its own mount namespace with its
// own /etc/kubernetes and /var/lib/kubelet (test/helpers/files-nodes.ts). --files-only leaves
// out what needs a running cluster; these nodes have none.

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-rollout-ro-'));
const port = 30000 + ((process.pid + 7) % 20000);
let client: ClientKeys;
let nodes: FilesNode[] = [];
let tool: string;
const remoteDir = path.join(tmp, 'remote-tool');

const layout = [
  { name: 'cp1', role: 'control-plane', address: '127.0.0.31' },
  { name: 'cp2', role: 'control-plane', address: '127.0.0.32' },
  { name: 'w1', role: 'worker', address: '127.0.0.33' },
  { name: 'w2', role: 'worker', address: '127.0.0.34' },
] as const;

function inventory(file: string, extra = ''): string {
  const cps = layout.filter((n) => n.role === 'control-plane');
  const ws = layout.filter((n) => n.role === 'worker');
  const line = (n: (typeof layout)[number]) => `${n.name} ansible_host=${n.address} ansible_port=${port}`;
  fs.writeFileSync(
    file,
    `[kube_control_plane]\n${cps.map(line).join('\n')}\n\n[kube_node]\n${ws.map(line).join('\n')}\n${extra}\n[all:vars]\nansible_user=root\n`,
  );
  return file;
}

const common = () => ['--ssh-config', client.config, '--files-only', '--connect-timeout', '5'];

/** Every file under the node's /etc/kubernetes and /var/lib/kubelet with its sha256. */
function fileDigests(n: FilesNode): string {
  const r = n.inNode([
    'sh',
    '-c',
    'find /etc/kubernetes /var/lib/kubelet -exec ls -ld {} + | sort; find /etc/kubernetes /var/lib/kubelet -type f -exec sha256sum {} + | sort',
  ]);
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}

beforeAll(async () => {
  client = makeClient(path.join(tmp, 'client'));
  const pki = makeClusterPki(path.join(tmp, 'cluster-pki'));
  tool = toolStandIn(tmp);
  // every node that started is kept (and stopped after), even when another failed to
  const started = await Promise.allSettled(
    layout.map((n) => startFilesNode({ ...n, dir: path.join(tmp, n.name), port, client, pki })),
  );
  nodes = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) throw failed.reason;
}, 240_000);

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.sshd.stop()));
  fs.rmSync(tmp, { recursive: true, force: true });
});

// each CLI run starts Node on every node: minutes on a loaded 2-core machine
describe('rollout, read-only modes, over ssh against files-only nodes', { timeout: 300_000 }, () => {
  it('--dry-run: the whole plan and every node read, nothing changed anywhere', () => {
    const before = nodes.map(fileDigests);
    const inv = inventory(path.join(tmp, 'hosts.ini'));
    const r = cli([
      'rollout',
      '--dry-run',
      '--inventory',
      inv,
      '--tool',
      tool,
      '--remote-dir',
      remoteDir,
      '--json',
      ...common(),
    ]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout) as RolloutResult;
    expect(doc.mode).toBe('dry-run');
    expect(doc.ok).toBe(true);
    expect(doc.plan.seed).toBe('cp1');
    expect(doc.plan.steps.map((s) => s.id)).toEqual([
      'preflight',
      'copy-tool:cp1',
      'copy-tool:cp2',
      'copy-tool:w1',
      'copy-tool:w2',
      'ca-extend:cp1',
      'ca-install:cp2',
      'ca-install:w1',
      'ca-install:w2',
      'kubelet-cert:cp1',
      'kubelet-cert:cp2',
      'kubelet-cert:w1',
      'kubelet-cert:w2',
    ]);
    expect(doc.nodes.map((n) => [n.name, n.reachable, n.facts?.caCopies.length])).toEqual([
      ['cp1', true, 3],
      ['cp2', true, 3],
      ['w1', true, 1],
      ['w2', true, 1],
    ]);
    for (const n of doc.nodes) expect(Math.abs(n.facts!.clockSkewSeconds)).toBeLessThanOrEqual(30);
    expect(nodes.map(fileDigests)).toEqual(before);
    expect(fs.existsSync(remoteDir)).toBe(false);

    const human = cli(['rollout', '--dry-run', '--inventory', inv, '--tool', tool, ...common()]);
    expect(human.status).toBe(0);
    expect(human.stdout).toContain('ca-extend: ca extend on cp1 with its own CA keys');
    expect(human.stdout).toMatch(
      /w2 \(worker\): kubelet none, clock [+-]\d+ s, \d+ KiB free; pki\/ca\.crt until /,
    );
    expect(human.stdout).toContain('nothing was changed');
  });

  it('--report: every node checked by its own copy of the tool; not at the goal until rolled out', () => {
    const inv = inventory(path.join(tmp, 'hosts.ini'));
    const args = [
      'rollout',
      '--report',
      '--inventory',
      inv,
      '--tool',
      tool,
      '--remote-dir',
      remoteDir,
      ...common(),
    ];
    const r = cli([...args, '--json']);
    expect(r.status, r.stderr).toBe(1);
    const doc = JSON.parse(r.stdout) as RolloutResult;
    expect(doc.report!.map((n) => [n.name, n.reachable, n.atGoal])).toEqual([
      ['cp1', true, false],
      ['cp2', true, false],
      ['w1', true, false],
      ['w2', true, false],
    ]);
    // the CA copies each node holds: 3 files + kubeconfigs' CA data on control planes
    const cas = (name: string) =>
      doc.report!.find((n) => n.name === name)!.certificates.filter((c) => c.kind === 'ca');
    expect(
      cas('w1')
        .map((c) => c.source)
        .sort(),
    ).toEqual(['/etc/kubernetes/kubelet.conf: cluster kubernetes', '/etc/kubernetes/pki/ca.crt']);
    expect(cas('cp1').length).toBeGreaterThanOrEqual(3);
    expect(r.stderr).toMatch(/^error: node cp1: not at the goal/);
    expect(r.stderr.split('\n')[1]).toMatch(/^next: /);
    // the tool arrived once, content-addressed, checked by sha256
    expect(fs.readdirSync(remoteDir)).toHaveLength(1);

    const table = cli(args);
    expect(table.status).toBe(1);
    expect(table.stdout).toMatch(/^NODE +ROLE +STATE +CA COPIES +CERTS +EARLIEST NOTAFTER/);
    expect(table.stdout).toMatch(/\nw2 +worker +NOT at goal +2 +1 +20\d\d-/);

    const prom = cli([...args, '--output', 'prometheus']);
    expect(prom.status).toBe(1);
    expect(prom.stdout).toContain('kubeadm_forever_fleet_node_at_goal{node="cp1",role="control-plane"} 0');
    const check = runPromtool(['check', 'metrics'], prom.stdout);
    expect(check.status, check.out).toBe(0);
  });

  it('refuses a worker with another CA and names an unreachable node, before anything changes', () => {
    const before = nodes.map(fileDigests);
    // w2 given a CA of its own: the preflight compares keys, not file names
    const foreign = makeClusterPki(path.join(tmp, 'foreign-pki'));
    const w2 = nodes.find((n) => n.name === 'w2')!;
    const pem = fs.readFileSync(path.join(foreign, 'ca.crt'), 'utf8');
    // kept with its times (cp -p), so the node's listing is the same once it is back
    const saved = path.join(tmp, 'w2-ca.crt');
    expect(w2.inNode(['cp', '-p', '/etc/kubernetes/pki/ca.crt', saved]).status).toBe(0);
    const put = (text: string) =>
      spawnSync(
        'nsenter',
        ['-t', String(w2.sshd.process.pid), '-m', '--', 'sh', '-c', 'cat > /etc/kubernetes/pki/ca.crt'],
        {
          input: text,
        },
      );
    put(pem);
    try {
      const inv = inventory(
        path.join(tmp, 'hosts-bad.ini'),
        `w9 ansible_host=127.0.0.39 ansible_port=${port}\n`,
      );
      const r = cli(['rollout', '--dry-run', '--inventory', inv, '--tool', tool, '--json', ...common()]);
      expect(r.status).toBe(1);
      const doc = JSON.parse(r.stdout) as RolloutResult;
      expect(doc.ok).toBe(false);
      expect(doc.problems).toEqual([
        expect.stringMatching(/^node w9 \(root@127\.0\.0\.39:\d+\) is unreachable over ssh/),
        'node w2: pki/ca.crt is another CA than on cp1 (CN=kubernetes)',
      ]);
      expect(r.stderr).toMatch(
        /^error: node w9 \(root@127\.0\.0\.39:\d+\) is unreachable over ssh.*\nnext: /,
      );
    } finally {
      expect(w2.inNode(['cp', '-p', saved, '/etc/kubernetes/pki/ca.crt']).status).toBe(0);
    }
    expect(nodes.map(fileDigests)).toEqual(before);
  });

  it('refuses hostile inventories and a missing --tool with the two-line error', () => {
    const bad = path.join(tmp, 'hostile.ini');
    fs.writeFileSync(bad, `[kube_node]\n'w1;touch /tmp/kf-pwned' ansible_host=127.0.0.33\n`);
    const r = cli(['rollout', '--dry-run', '--inventory', bad, ...common()]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /^error: inventory .*hostile\.ini, host "w1;touch \/tmp\/kf-pwned": node name .* is not a DNS-1123 subdomain.*\nnext: /,
    );
    const inv = inventory(path.join(tmp, 'hosts.ini'));
    // no --tool and none in the cache: the two-line error names where it looked
    const noTool = cli([
      'rollout',
      '--report',
      '--inventory',
      inv,
      '--cache-dir',
      path.join(tmp, 'empty-cache'),
      ...common(),
    ]);
    expect(noTool.status).toBe(2);
    expect(noTool.stderr).toMatch(
      /^error: no --tool given and no single-file executable of kubeadm-forever at .*empty-cache\/tool\/linux-(amd64|arm64)\/kubeadm-forever\nnext: pass --tool PATH/,
    );
    expect(fs.existsSync('/tmp/kf-pwned')).toBe(false);
  });
});
