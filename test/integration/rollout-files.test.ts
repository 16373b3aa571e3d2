import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RolloutResult } from '../../src/fleet/rollout.js';
import type { JournalDoc } from '../../src/fleet/journal.js';
import { makeClient, type ClientKeys } from '../helpers/sshd.js';
import { cli, makeClusterPki, startFilesNodes, toolStandIn, type FilesNode } from '../helpers/files-nodes.js';

// The changing rollout (--files-only) over real ssh against files-only nodes: two control planes
// and two workers, each an sshd on its own 127.0.0.N in its own mount namespace
// (test/helpers/files-nodes.ts), their CAs made short (1 year). The run must leave every CA copy
// and kubelet client certificate long-lived, the CA keys unchanged, and no private key off its
// node; a failed step stops it naming the node, and --resume finishes it.

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-rollout-files-'));
const port = 30000 + ((process.pid + 11) % 20000);
let client: ClientKeys;
let nodes: FilesNode[] = [];
let tool: string;
const remoteDir = path.join(tmp, 'remote-tool');
const adminTmp = path.join(tmp, 'admin-tmp');
const journal = path.join(tmp, 'state', 'journal.json');

const layout = [
  { name: 'cp1', role: 'control-plane', address: '127.0.0.41' },
  { name: 'cp2', role: 'control-plane', address: '127.0.0.42' },
  { name: 'w1', role: 'worker', address: '127.0.0.43' },
  { name: 'w2', role: 'worker', address: '127.0.0.44' },
] as const;

function inventory(file: string): string {
  const line = (n: (typeof layout)[number]) => `${n.name} ansible_host=${n.address} ansible_port=${port}`;
  const cps = layout.filter((n) => n.role === 'control-plane').map(line);
  const ws = layout.filter((n) => n.role === 'worker').map(line);
  fs.writeFileSync(
    file,
    `[kube_control_plane]\n${cps.join('\n')}\n\n[kube_node]\n${ws.join('\n')}\n\n[all:vars]\nansible_user=root\n`,
  );
  return file;
}

const node = (name: string) => nodes.find((n) => n.name === name)!;

function sh(n: FilesNode, script: string): string {
  const r = n.inNode(['sh', '-c', script]);
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}

/** openssl's view of one certificate on the node: NotAfter (epoch s) and its public key. */
function certOf(n: FilesNode, readPem: string): { end: number; pub: string } {
  const end = sh(n, `${readPem} | openssl x509 -noout -enddate`)
    .trim()
    .replace(/^notAfter=/, '');
  const pub = sh(n, `${readPem} | openssl x509 -noout -pubkey`);
  return { end: Date.parse(end) / 1000, pub };
}

/** Every CA copy the node holds, as openssl reads it from the node's own files. */
function caCopies(n: FilesNode): Record<string, { end: number; pub: string }> {
  const files =
    n.role === 'control-plane' ? ['pki/ca.crt', 'pki/etcd/ca.crt', 'pki/front-proxy-ca.crt'] : ['pki/ca.crt'];
  const out: Record<string, { end: number; pub: string }> = {};
  for (const f of files) out[f] = certOf(n, `cat /etc/kubernetes/${f}`);
  out['kubelet.conf'] = certOf(
    n,
    "sed -n 's/.*certificate-authority-data: //p' /etc/kubernetes/kubelet.conf | base64 -d",
  );
  return out;
}

/** sha256 of every file under the kubelet's pki directory. */
function kubeletFiles(n: FilesNode): Map<string, string> {
  const lines = sh(n, 'cd /var/lib/kubelet/pki && find . -type f -exec sha256sum {} + | sort')
    .trim()
    .split('\n');
  return new Map(lines.map((l) => [l.slice(66), l.slice(0, 64)]));
}

const years = (epochS: number) => (epochS * 1000 - Date.now()) / (365.25 * 24 * 3600 * 1000);

function rollout(extra: string[], journalFile = journal) {
  fs.mkdirSync(adminTmp, { recursive: true, mode: 0o700 });
  return cli(
    [
      'rollout',
      '--inventory',
      inventory(path.join(tmp, 'hosts.ini')),
      '--tool',
      tool,
      '--remote-dir',
      remoteDir,
      '--journal',
      journalFile,
      '--ssh-config',
      client.config,
      '--files-only',
      '--connect-timeout',
      '5',
      ...extra,
    ],
    { env: { TMPDIR: adminTmp } },
  );
}

beforeAll(async () => {
  client = makeClient(path.join(tmp, 'client'));
  const pki = makeClusterPki(path.join(tmp, 'cluster-pki'), '1y');
  tool = toolStandIn(tmp);
  nodes = await startFilesNodes(
    layout.map((n) => ({ ...n, dir: path.join(tmp, n.name) })),
    { port, client, pki },
  );
}, 240_000);

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.sshd.stop()));
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('rollout --files-only, the changing run over ssh', { timeout: 900_000 }, () => {
  it('without --files-only and without --kubeadm the changing run refuses before any node is reached', () => {
    const r = cli([
      'rollout',
      '--inventory',
      inventory(path.join(tmp, 'hosts.ini')),
      '--tool',
      tool,
      '--journal',
      journal,
      '--ssh-config',
      client.config,
    ]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /^error: rollout renews the control planes with the custom kubeadm, and none was given\nnext: pass --kubeadm PATH/,
    );
    expect(fs.existsSync(journal)).toBe(false);
  });

  it('a failed step stops the run naming node and state; --resume finishes it and every copy is long-lived', () => {
    const before = Object.fromEntries(nodes.map((n) => [n.name, caCopies(n)]));
    for (const copies of Object.values(before))
      for (const c of Object.values(copies)) expect(years(c.end)).toBeLessThan(2);
    const kubeletBefore = Object.fromEntries(nodes.map((n) => [n.name, kubeletFiles(n)]));

    // w1's kubelet directory gets a directory where its new key would go: its step must fail
    const pending = '/var/lib/kubelet/pki/kubelet-client-pending.key';
    sh(node('w1'), `mkdir ${pending}`);
    const t0 = Date.now();
    const failed = rollout([]);
    const failedMs = Date.now() - t0;
    expect(failed.status, failed.stderr).toBe(1);
    // progress lines, then the two-line error
    const all = failed.stderr.trimEnd().split('\n');
    const lines = all.slice(all.findIndex((l) => l.startsWith('error: ')));
    expect(lines, failed.stderr).toHaveLength(2);
    expect(lines[0], failed.stdout).toMatch(
      /^error: node w1, step kubelet-cert:w1 failed: node w1 \(.*\): .*kubelet-cert/,
    );
    expect(lines[1]).toMatch(/^next: .*--resume \(journal .*journal\.json/);
    expect(failed.stdout).toMatch(/^rollout \(journal .*\):\nNODE +ROLE +STATE +STEPS +AT\n/);
    expect(failed.stdout).toMatch(/\ncp1 +control-plane +done +3\/3\n/);
    expect(failed.stdout).toMatch(/\ncp2 +control-plane +done +3\/3\n/);
    expect(failed.stdout).toMatch(/\nw1 +worker +failed +2\/3 +kubelet-cert:w1\n/);
    expect(failed.stdout).toMatch(/\nw2 +worker +in progress +2\/3 +kubelet-cert:w2/);
    const doc = JSON.parse(fs.readFileSync(journal, 'utf8')) as JournalDoc;
    expect(doc.steps['ca-extend:cp1']!.state).toBe('done');
    expect(doc.steps['kubelet-cert:w1']!.state).toBe('failed');
    expect(doc.steps['kubelet-cert:w2']).toBeUndefined();
    expect((fs.statSync(journal).mode & 0o777).toString(8)).toBe('600');

    // a second run without --resume is refused: the journal says a rollout is under way
    const again = rollout([]);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/^error: a rollout journal exists at .*\nnext: pass --resume/);

    sh(node('w1'), `rmdir ${pending}`);
    const extendedAt = doc.steps['ca-extend:cp1']!.at;
    const t1 = Date.now();
    const resumed = rollout(['--resume']);
    const resumedMs = Date.now() - t1;
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/\nw1 +worker +done +3\/3\n/);
    expect(resumed.stdout).toMatch(/\nw2 +worker +done +3\/3\n/);
    expect(resumed.stdout).toMatch(/NODE +ROLE +STATE +CA COPIES +CERTS +EARLIEST NOTAFTER/);
    expect(resumed.stdout).toMatch(/every node is at the goal\n$/);
    const after = JSON.parse(fs.readFileSync(journal, 'utf8')) as JournalDoc;
    // finished steps were not run again
    expect(after.steps['ca-extend:cp1']!.at).toBe(extendedAt);
    expect(Object.values(after.steps).every((e) => e.state === 'done')).toBe(true);

    // independently, by openssl inside each node's own files
    for (const n of nodes) {
      const now = caCopies(n);
      for (const [file, c] of Object.entries(now)) {
        expect(years(c.end), `${n.name} ${file}`).toBeGreaterThan(100);
        expect(c.pub, `${n.name} ${file}: the CA key is unchanged`).toBe(before[n.name]![file]!.pub);
      }
      const leaf = certOf(n, 'cat /var/lib/kubelet/pki/kubelet-client-current.pem');
      expect(years(leaf.end), `${n.name} kubelet client certificate`).toBeGreaterThan(100);
      // the new certificate is of a key that is on the node, beside it
      const keyPub = sh(n, 'openssl pkey -pubout -in /var/lib/kubelet/pki/kubelet-client-current.pem');
      expect(keyPub).toBe(leaf.pub);
      // every file the kubelet had before is still there, unchanged
      const files = kubeletFiles(n);
      for (const [f, sha] of kubeletBefore[n.name]!) expect(files.get(f), `${n.name} ${f}`).toBe(sha);
    }
    // no private key reached this host: the private temp dirs are gone, the journal holds none
    expect(fs.readdirSync(adminTmp)).toEqual([]);
    expect(fs.readFileSync(journal, 'utf8')).not.toMatch(/PRIVATE KEY/);
    // the workers never held a CA key
    for (const w of ['w1', 'w2'])
      expect(sh(node(w), 'find /etc/kubernetes /var/lib/kubelet -name "*ca*.key" | wc -l').trim()).toBe('0');

    // --resume of a finished rollout runs nothing and reports green
    const idle = rollout(['--resume', '--json']);
    expect(idle.status, idle.stderr).toBe(0);
    const res = JSON.parse(idle.stdout) as RolloutResult;
    expect(res.ok).toBe(true);
    expect(res.progress!.map((p) => p.state)).toEqual(['done', 'done', 'done', 'done']);
    expect(res.report!.every((r) => r.atGoal)).toBe(true);

    // every step is harmless to run again: a new journal runs them all; the CAs are not moved
    const cas = Object.fromEntries(nodes.map((n) => [n.name, caCopies(n)]));
    const t2 = Date.now();
    const rerun = rollout([], path.join(tmp, 'state', 'second.json'));
    const rerunMs = Date.now() - t2;
    expect(rerun.status, rerun.stderr).toBe(0);
    expect(rerun.stdout).toMatch(/every node is at the goal\n$/);
    expect(Object.fromEntries(nodes.map((n) => [n.name, caCopies(n)]))).toEqual(cas);
    expect(fs.readdirSync(adminTmp)).toEqual([]);
    console.log(`rollout-files: run again from a new journal ${rerunMs} ms`);
    console.log(`rollout-files: failed run ${failedMs} ms, resumed run ${resumedMs} ms`);
  });
});
