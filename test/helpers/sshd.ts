import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/**
 * Real OpenSSH servers for the fleet tests: Debian's sshd (openssh-server, installed by
 * scripts/test-env.sh with its own service kept stopped), started here in the foreground with
 * its own config, host key and authorized key, listening on 127.0.0.N and a high port, and
 * stopped by its pid. A client config beside it gives ssh the test key and a known_hosts that
 * holds exactly the keys these servers were given.
 */

export const SSHD = '/usr/sbin/sshd';

export interface ClientKeys {
  dir: string;
  key: string;
  publicKey: string;
  knownHosts: string;
  config: string;
}

/** A client key, an empty known_hosts and an ssh_config pointing at both. */
export function makeClient(dir: string): ClientKeys {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const key = path.join(dir, 'client_key');
  keygen(key);
  const knownHosts = path.join(dir, 'known_hosts');
  fs.writeFileSync(knownHosts, '', { mode: 0o600 });
  const config = path.join(dir, 'ssh_config');
  fs.writeFileSync(
    config,
    [
      'Host *',
      `  IdentityFile ${key}`,
      '  IdentitiesOnly yes',
      '  IdentityAgent none',
      `  UserKnownHostsFile ${knownHosts}`,
      '  GlobalKnownHostsFile /dev/null',
      '  User root',
      '  LogLevel ERROR',
      '',
    ].join('\n'),
  );
  return { dir, key, publicKey: fs.readFileSync(`${key}.pub`, 'utf8').trim(), knownHosts, config };
}

function keygen(file: string): void {
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'kf-test', '-f', file], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
}

export interface SshdOptions {
  dir: string;
  address: string;
  port: number;
  client: ClientKeys;
  /** the command line sshd is started by (e.g. unshare … sshd): gets sshd's own argv appended */
  wrapper?: string[];
  /** add this server's host key to the client's known_hosts (default true) */
  trust?: boolean;
}

export interface Sshd {
  address: string;
  port: number;
  hostKey: string;
  process: ChildProcess;
  log(): string;
  stop(): Promise<void>;
}

/** Waits until something accepts TCP connections on address:port. */
export async function waitForPort(address: string, port: number, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: address, port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`nothing listens on ${address}:${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** An sshd in the foreground (-D), its log on stderr (-e), stopped by its pid. */
export async function startSshd(o: SshdOptions): Promise<Sshd> {
  if (!fs.existsSync(SSHD)) throw new Error(`${SSHD} missing: run 'sudo bash scripts/test-env.sh up' first`);
  fs.mkdirSync(o.dir, { recursive: true, mode: 0o700 });
  // sshd's privilege separation directory, which the (never started) service would create
  fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const hostKey = path.join(o.dir, 'host_key');
  if (!fs.existsSync(hostKey)) keygen(hostKey);
  const authorized = path.join(o.dir, 'authorized_keys');
  fs.writeFileSync(authorized, `${o.client.publicKey}\n`, { mode: 0o600 });
  const cfg = path.join(o.dir, 'sshd_config');
  fs.writeFileSync(
    cfg,
    [
      `ListenAddress ${o.address}:${o.port}`,
      `HostKey ${hostKey}`,
      `PidFile none`,
      `AuthorizedKeysFile ${authorized}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'PermitRootLogin prohibit-password',
      'StrictModes no',
      'MaxSessions 50',
      'MaxStartups 50',
      // VERBOSE logs each accepted login: the tests count them to see one connection per node
      'LogLevel VERBOSE',
      '',
    ].join('\n'),
  );
  const pub = fs.readFileSync(`${hostKey}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
  if (o.trust !== false) fs.appendFileSync(o.client.knownHosts, `[${o.address}]:${o.port} ${pub}\n`);
  const argv = [...(o.wrapper ?? []), SSHD, '-D', '-e', '-f', cfg];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  try {
    // generous: on a loaded 2-core machine the namespace set-up alone can take seconds
    await Promise.race([
      waitForPort(o.address, o.port, 60_000),
      new Promise((_, reject) => child.once('exit', (c) => reject(new Error(`sshd exited (${c})`)))),
    ]);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`sshd on ${o.address}:${o.port} did not start: ${log}`, { cause: err });
  }
  return {
    address: o.address,
    port: o.port,
    hostKey: pub,
    process: child,
    log: () => log,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
