import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SshFleet, type SshTarget } from '../../src/adapters/openssh-client.js';
import { makeClient, startSshd, type ClientKeys, type Sshd } from '../helpers/sshd.js';

// The OpenSSH adapter against real sshd servers on 127.0.0.21-23 (Debian's openssh-server, run
// in the foreground by the test with its own host keys): one master connection per node,
// strict host keys, bounded timeouts, names checked before ssh runs, copies checked by sha256.

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-ssh-test-'));
const port = 30000 + (process.pid % 20000);
let client: ClientKeys;
let good: Sshd;
let untrusted: Sshd;
let wrongKey: Sshd;
const fleets: SshFleet[] = [];

function fleet(opts: Parameters<typeof SshFleet.open>[0] = {}): SshFleet {
  const f = SshFleet.open({ configFile: client.config, connectTimeoutSeconds: 3, ...opts });
  fleets.push(f);
  return f;
}

const target = (s: Sshd, name = 'node-a'): SshTarget => ({
  name,
  address: s.address,
  port: s.port,
  user: 'root',
});

beforeAll(async () => {
  client = makeClient(path.join(tmp, 'client'));
  [good, untrusted, wrongKey] = await Promise.all([
    startSshd({ dir: path.join(tmp, 'good'), address: '127.0.0.21', port, client }),
    startSshd({ dir: path.join(tmp, 'untrusted'), address: '127.0.0.22', port, client, trust: false }),
    startSshd({ dir: path.join(tmp, 'wrong'), address: '127.0.0.23', port, client, trust: false }),
  ]);
  // known_hosts holds a key for 127.0.0.23 that is not the one it serves (a reinstalled node, or
  // someone in between)
  const other = path.join(tmp, 'other_key');
  spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
  const otherPub = fs.readFileSync(`${other}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
  fs.appendFileSync(client.knownHosts, `[127.0.0.23]:${port} ${otherPub}\n`);
});

afterAll(async () => {
  await Promise.all(fleets.map((f) => f.close()));
  await Promise.all([good, untrusted, wrongKey].map((s) => s?.stop()));
  fs.rmSync(tmp, { recursive: true, force: true });
});

const HOSTILE = [
  '',
  'a b',
  "it's",
  '$(touch /tmp/kf-pwned)',
  '`id`',
  '; rm -rf /',
  'a\nb',
  '\\',
  '$HOME',
  '*',
  '-n',
  '"q"',
];

describe('OpenSSH adapter against a real sshd', () => {
  it('runs every command of a node over one connection, arguments arriving exactly as given', async () => {
    const f = fleet();
    const s = f.session(target(good));
    const before = (good.log().match(/Accepted publickey/g) ?? []).length;
    const r = await s.run(['printf', '%s\\0', ...HOSTILE]);
    expect(r.code).toBe(0);
    expect(r.stdout.toString('utf8').split('\0').slice(0, -1)).toEqual(HOSTILE);
    const many = await Promise.all(Array.from({ length: 6 }, (_, i) => s.run(['echo', String(i)])));
    expect(many.map((m) => m.stdout.toString().trim())).toEqual(['0', '1', '2', '3', '4', '5']);
    expect((good.log().match(/Accepted publickey/g) ?? []).length - before).toBe(1);
    expect(fs.statSync(f.controlDir).mode & 0o777).toBe(0o700);
    const code = await s.run(['sh', '-c', 'echo out; echo err >&2; exit 7']);
    expect([code.code, code.stdout.toString(), code.stderr]).toEqual([7, 'out\n', 'err\n']);
    await expect(s.check(['false'])).rejects.toThrow(
      /node node-a \(root@127\.0\.0\.21:\d+\): false failed with exit code 1/,
    );
    expect(fs.existsSync('/tmp/kf-pwned')).toBe(false);
  });

  it('closes the master connection and removes the socket directory', async () => {
    const f = SshFleet.open({ configFile: client.config, connectTimeoutSeconds: 3 });
    const s = f.session(target(good, 'node-close'));
    await s.run(['true']);
    expect(fs.existsSync(s.controlPath)).toBe(true);
    await f.close();
    expect(fs.existsSync(f.controlDir)).toBe(false);
    // nothing of ours left listening on the socket path
    expect(spawnSync('pgrep', ['-f', s.controlPath]).status).toBe(1);
  });

  it('refuses a host whose key differs from known_hosts, naming the node', async () => {
    const s = fleet().session(target(wrongKey, 'node-wrong'));
    await expect(s.run(['true'])).rejects.toThrow(
      /^node node-wrong \(root@127\.0\.0\.23:\d+\): its host key does not match known_hosts/,
    );
    // accept-new trusts first keys only, never a changed one
    const s2 = fleet({ hostKeys: 'accept-new' }).session(target(wrongKey, 'node-wrong'));
    await expect(s2.run(['true'])).rejects.toThrow(/host key does not match known_hosts/);
  });

  it('refuses an unknown host key by default; accept-new trusts it and records it', async () => {
    const s = fleet().session(target(untrusted, 'node-new'));
    await expect(s.run(['true'])).rejects.toThrow(/node node-new .*: its host key is not in known_hosts/);
    expect(fs.readFileSync(client.knownHosts, 'utf8')).not.toContain(untrusted.hostKey);
    const ok = await fleet({ hostKeys: 'accept-new' }).session(target(untrusted, 'node-new')).run(['true']);
    expect(ok.code).toBe(0);
    expect(fs.readFileSync(client.knownHosts, 'utf8')).toContain(untrusted.hostKey.split(' ')[1]);
  });

  it('an unreachable node fails fast, a silent one within the connect timeout, both named', async () => {
    const refused = fleet().session({ name: 'node-down', address: '127.0.0.24', port, user: 'root' });
    await expect(refused.run(['true'])).rejects.toThrow(
      /^node node-down \(root@127\.0\.0\.24:\d+\) is unreachable over ssh/,
    );
    // accepts TCP, never says a word: only the timeout ends it
    const silent = net.createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(port, '127.0.0.25', r));
    try {
      const t0 = Date.now();
      const s = fleet({ connectTimeoutSeconds: 2 }).session({
        name: 'node-silent',
        address: '127.0.0.25',
        port,
      });
      await expect(s.run(['true'])).rejects.toThrow(
        /node node-silent \(127\.0\.0\.25:\d+\) is unreachable over ssh/,
      );
      expect(Date.now() - t0).toBeLessThan(9000);
    } finally {
      silent.close();
    }
  });

  it('refuses hostile names, addresses and users before any ssh runs', () => {
    const marker = path.join(tmp, 'ssh-ran');
    const fakeSsh = path.join(tmp, 'fake-ssh');
    fs.writeFileSync(fakeSsh, `#!/bin/sh\ntouch ${marker}\n`, { mode: 0o755 });
    const f = fleet({ sshProgram: fakeSsh });
    for (const t of [
      { name: 'a b', address: '127.0.0.21' },
      { name: '$(id)', address: '127.0.0.21' },
      { name: 'n;x', address: '127.0.0.21' },
      { name: 'n1', address: '-oProxyCommand=touch /tmp/x' },
      { name: 'n1', address: '127.0.0.21\nHost *' },
      { name: 'n1', address: '127.0.0.21', user: 'root -oX' },
      { name: 'n1', address: '127.0.0.21', port: 0 },
    ] as SshTarget[]) {
      expect(() => f.session(t), JSON.stringify(t)).toThrow(/is not|not a|is neither/);
    }
    expect(fs.existsSync(marker)).toBe(false);
  });

  it('copies a file, checked by sha256 on arrival; a mismatch leaves nothing', async () => {
    const s = fleet().session(target(good, 'node-copy'));
    const local = path.join(tmp, 'payload.bin');
    fs.writeFileSync(local, Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251)));
    const remoteDir = path.join(tmp, 'remote', "dir with 'quote'");
    const sha = await s.copyFile(local, remoteDir, 'tool', 0o755);
    const check = await s.check(['sha256sum', path.join(remoteDir, 'tool')]);
    expect(check.stdout.toString().split(' ')[0]).toBe(sha);
    expect(fs.statSync(path.join(remoteDir, 'tool')).mode & 0o777).toBe(0o755);
    await expect(s.copyFile(local, remoteDir, 'other', 0o644, '0'.repeat(64))).rejects.toThrow(
      /node-copy .*other arrived with sha256 [0-9a-f]{64}, expected 0{64}/,
    );
    expect(fs.readdirSync(remoteDir)).toEqual(['tool']);
  });
});
