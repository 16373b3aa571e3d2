import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KfError, UsageError } from '../core/errors.js';
import { sha256File } from './fs.js';
import {
  showName,
  validateHostAddress,
  validateNodeName,
  validatePort,
  validateUserName,
} from '../core/dns-name.js';
import { shellCommand } from '../core/shell-quote.js';

/**
 * Nodes reached with the system's OpenSSH client, so ~/.ssh/config, known_hosts, the agent and
 * ProxyJump all apply as for the operator's own ssh. One master connection per node
 * (ControlMaster, its socket in a private 0700 directory) carries every command; strict host-key
 * checking and BatchMode (never a prompt) unless accept-new is chosen explicitly. ssh gets an
 * argument array; the remote command is built by core/shell-quote alone.
 */

export interface SshTarget {
  /** the node name, for messages */
  name: string;
  address: string;
  user?: string;
  port?: number;
}

export type HostKeyPolicy = 'strict' | 'accept-new';

export interface SshOptions {
  /** strict: StrictHostKeyChecking=yes (default); accept-new: trust a host never seen, refuse a changed key */
  hostKeys?: HostKeyPolicy;
  /** TCP connect and banner exchange, seconds (ConnectTimeout) */
  connectTimeoutSeconds?: number;
  /** an ssh_config file instead of ~/.ssh/config (ssh -F) */
  configFile?: string;
  /** the ssh program; default ssh from PATH */
  sshProgram?: string;
  env?: NodeJS.ProcessEnv;
}

export interface RunOptions {
  /** written to the remote command's stdin: bytes, or a local file streamed (memory stays bounded) */
  input?: Buffer | string | { file: string };
  /** the whole command, connection included; default 10 minutes */
  timeoutMs?: number;
  /** stdout beyond this is an error; default 64 MiB */
  maxOutputBytes?: number;
}

export interface RunResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

const DEFAULT_TIMEOUT_MS = 10 * 60_000;
const DEFAULT_MAX_OUTPUT = 64 * 1024 * 1024;

/** How a target is named in messages: node name and where it is reached. */
export function describeTarget(t: SshTarget): string {
  const where = `${t.user ? `${t.user}@` : ''}${t.address}${t.port ? `:${t.port}` : ''}`;
  return where === t.name ? `node ${t.name}` : `node ${t.name} (${where})`;
}

/** Every part of a target checked before any ssh runs: a name is data, never an option or shell. */
export function validateTarget(t: SshTarget): SshTarget {
  const where = `node ${showName(t.name)}`;
  validateNodeName(t.name, where);
  validateHostAddress(t.address, where);
  if (t.user !== undefined) validateUserName(t.user, where);
  if (t.port !== undefined) validatePort(t.port, where);
  return t;
}

/** An ssh failure (exit 255) in words, naming the node: host key, unreachable, refused login. */
export function sshFailure(t: SshTarget, stderr: string): KfError {
  const who = describeTarget(t);
  const first = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('@') && !/^Warning: Permanently added/.test(l));
  const detail = first.at(-1) ?? 'no message';
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for .* has changed/i.test(stderr)) {
    return new KfError(
      `${who}: its host key does not match known_hosts (${detail})`,
      `if ${t.address} was reinstalled, check its new key out of band and replace the old entry (ssh-keygen -R ${t.address}); nothing was changed on it`,
    );
  }
  if (/No .* host key is known|Host key verification failed/i.test(stderr)) {
    return new KfError(
      `${who}: its host key is not in known_hosts (${detail})`,
      `add the node's host key to known_hosts (checked out of band), or pass --accept-new-host-keys to trust a first key; nothing was changed on it`,
    );
  }
  if (/Permission denied|Too many authentication failures/i.test(stderr)) {
    return new KfError(
      `${who}: ssh login refused (${detail})`,
      'check the user (ansible_user) and that your key is loaded (ssh-add -l) or set in ~/.ssh/config',
    );
  }
  if (
    /timed out|Connection refused|No route to host|Network is unreachable|Could not resolve|Connection closed|Connection reset|kex_exchange_identification/i.test(
      stderr,
    )
  ) {
    return new KfError(
      `${who} is unreachable over ssh (${detail})`,
      `check that ${t.address} is up and sshd listens on port ${t.port ?? 22}; nothing was changed on it`,
    );
  }
  return new KfError(`${who}: ssh failed (${detail})`, `run ssh ${t.address} by hand to see why`);
}

/** A private directory for the control sockets, removed on close. */
export class SshFleet {
  readonly controlDir: string;
  private readonly sessions = new Map<string, SshSession>();
  private closed = false;

  private constructor(
    readonly options: SshOptions,
    controlDir: string,
  ) {
    this.controlDir = controlDir;
  }

  static open(options: SshOptions = {}): SshFleet {
    if (
      options.configFile !== undefined &&
      !fs.statSync(options.configFile, { throwIfNoEntry: false })?.isFile()
    ) {
      throw new UsageError(
        `ssh config ${showName(options.configFile)} is not a file`,
        'pass an ssh_config file',
      );
    }
    // short: a control socket's path must fit in sun_path (108 bytes)
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-ssh-'));
    fs.chmodSync(dir, 0o700);
    return new SshFleet(options, dir);
  }

  /** The session of a node; its master connection opens on first use. */
  session(target: SshTarget): SshSession {
    if (this.closed) throw new Error('ssh fleet already closed');
    validateTarget(target);
    let s = this.sessions.get(target.name);
    if (!s) {
      s = new SshSession(target, this.options, path.join(this.controlDir, `c${this.sessions.size}`));
      this.sessions.set(target.name, s);
    }
    return s;
  }

  /** Every master connection closed, the socket directory removed. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.sessions.values()].map((s) => s.close()));
    fs.rmSync(this.controlDir, { recursive: true, force: true });
  }
}

export class SshSession {
  private master: ChildProcess | undefined;
  private ready: Promise<void> | undefined;

  constructor(
    readonly target: SshTarget,
    private readonly options: SshOptions,
    readonly controlPath: string,
  ) {}

  /** ssh's options and destination, the same for the master and each command. */
  private baseArgs(): string[] {
    const o = this.options;
    const t = this.target;
    const args: string[] = [];
    if (o.configFile !== undefined) args.push('-F', o.configFile);
    args.push(
      '-o',
      'BatchMode=yes',
      '-o',
      `StrictHostKeyChecking=${o.hostKeys === 'accept-new' ? 'accept-new' : 'yes'}`,
      '-o',
      `ConnectTimeout=${o.connectTimeoutSeconds ?? 10}`,
      '-o',
      'ServerAliveInterval=15',
      '-o',
      'ServerAliveCountMax=4',
      '-o',
      `ControlPath=${this.controlPath}`,
    );
    if (t.user !== undefined) args.push('-l', t.user);
    if (t.port !== undefined) args.push('-p', String(t.port));
    return args;
  }

  /** The master connection: up once its control socket exists, refused with ssh's reason. */
  connect(): Promise<void> {
    this.ready ??= new Promise<void>((resolve, reject) => {
      const args = [
        ...this.baseArgs(),
        '-o',
        'ControlMaster=yes',
        '-o',
        'ControlPersist=no',
        '-N',
        '--',
        this.target.address,
      ];
      const child = spawn(this.options.sshProgram ?? 'ssh', args, {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: this.options.env ?? process.env,
      });
      this.master = child;
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => {
        if (stderr.length < 64 * 1024) stderr += d.toString('utf8');
      });
      let settled = false;
      const limit = ((this.options.connectTimeoutSeconds ?? 10) + 5) * 1000;
      const started = Date.now();
      const poll = setInterval(() => {
        if (settled) return;
        if (fs.existsSync(this.controlPath)) {
          settled = true;
          clearInterval(poll);
          resolve();
        } else if (Date.now() - started > limit) {
          settled = true;
          clearInterval(poll);
          child.kill('SIGTERM');
          reject(
            sshFailure(this.target, `${stderr}\nconnection timed out after ${Math.round(limit / 1000)} s`),
          );
        }
      }, 25);
      child.on('error', (err) => {
        if (settled) return;
        settled = true;
        clearInterval(poll);
        reject(
          new KfError(
            `cannot run ssh for ${describeTarget(this.target)}: ${err.message}`,
            'install the OpenSSH client (Debian: openssh-client)',
          ),
        );
      });
      child.on('exit', () => {
        this.master = undefined;
        if (settled) return;
        settled = true;
        clearInterval(poll);
        reject(sshFailure(this.target, stderr));
      });
    });
    return this.ready;
  }

  /**
   * Runs argv on the node over the master connection; resolves with its exit code and output.
   * An ssh failure (exit 255 with ssh's own message) is thrown, naming the node.
   */
  async run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const command = shellCommand(argv);
    await this.connect();
    const args = [...this.baseArgs(), '-o', 'ControlMaster=no', '--', this.target.address, command];
    return new Promise<RunResult>((resolve, reject) => {
      const child = spawn(this.options.sshProgram ?? 'ssh', args, {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: this.options.env ?? process.env,
      });
      const out: Buffer[] = [];
      let outBytes = 0;
      let stderr = '';
      let failed: KfError | undefined;
      const max = opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
      const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
      const timer = setTimeout(() => {
        failed = new KfError(
          `${describeTarget(this.target)}: ${argv[0]} did not finish within ${Math.round(timeoutMs / 1000)} s`,
          'check the node (load, a hung mount) and run again',
        );
        child.kill('SIGKILL');
      }, timeoutMs);
      child.stdout.on('data', (d: Buffer) => {
        outBytes += d.length;
        if (outBytes > max) {
          failed ??= new KfError(
            `${describeTarget(this.target)}: ${argv[0]} wrote more than ${max} bytes`,
            'this is not what the command should print: check the node',
          );
          child.kill('SIGKILL');
        } else out.push(d);
      });
      child.stderr.on('data', (d: Buffer) => {
        if (stderr.length < 256 * 1024) stderr += d.toString('utf8');
      });
      child.stdin.on('error', () => undefined); // a command that exits without reading its input
      const input = opts.input ?? '';
      if (typeof input === 'string' || Buffer.isBuffer(input)) child.stdin.end(input);
      else {
        const source = fs.createReadStream(input.file);
        source.on('error', (err) => {
          failed ??= new KfError(
            `cannot read ${input.file}: ${err.message}`,
            'check that the file is there and readable',
          );
          child.kill('SIGKILL');
        });
        source.pipe(child.stdin);
      }
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(
          new KfError(
            `cannot run ssh: ${err.message}`,
            'install the OpenSSH client (Debian: openssh-client)',
          ),
        );
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        if (failed) return reject(failed);
        if (code === 255) return reject(sshFailure(this.target, stderr));
        if (code === null) {
          return reject(new KfError(`${describeTarget(this.target)}: ssh ended by ${signal}`, 'run again'));
        }
        resolve({ code, stdout: Buffer.concat(out), stderr });
      });
    });
  }

  /** run, with a non-zero exit an error naming the node, the command and its last stderr line. */
  async check(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const r = await this.run(argv, opts);
    if (r.code !== 0) {
      const last = r.stderr.trim().split('\n').at(-1) ?? '';
      throw new KfError(
        `${describeTarget(this.target)}: ${argv.slice(0, 3).join(' ')} failed with exit code ${r.code}${last ? `: ${last}` : ''}`,
        'see the message above; fix it on the node and run again (with --resume)',
      );
    }
    return r;
  }

  /**
   * A local file copied to remoteDir/name with the given mode: written beside its target, its
   * sha256 taken on the node and compared with the one expected (the local file's unless given),
   * then renamed into place; a mismatch leaves nothing behind. Returns the sha256.
   */
  async copyFile(
    local: string,
    remoteDir: string,
    name: string,
    mode: number,
    expectSha256?: string,
  ): Promise<string> {
    const expected = expectSha256 ?? (await sha256File(local));
    if (!/^[0-9a-f]{64}$/.test(expected))
      throw new UsageError(`invalid sha256 ${showName(expected)}`, 'pass 64 hex digits');
    if (!/^[A-Za-z0-9._-]+$/.test(name) || name.startsWith('.') || !path.posix.isAbsolute(remoteDir)) {
      throw new UsageError(
        `invalid remote file ${showName(`${remoteDir}/${name}`)}`,
        'this is a bug: report it',
      );
    }
    const r = await this.run(
      ['sh', '-c', COPY_SCRIPT, 'kf-copy', remoteDir, name, mode.toString(8), expected],
      { input: { file: local } },
    );
    if (r.code === 3) {
      throw new KfError(
        `${describeTarget(this.target)}: ${path.posix.join(remoteDir, name)} arrived with sha256 ${r.stdout.toString().trim()}, expected ${expected}`,
        'the copy was damaged on the way or the file is not the expected one; nothing was installed',
      );
    }
    if (r.code !== 0) {
      throw new KfError(
        `${describeTarget(this.target)}: copying ${name} to ${remoteDir} failed (exit ${r.code}): ${r.stderr.trim().split('\n').at(-1) ?? ''}`,
        `check space and permissions of ${remoteDir} on the node`,
      );
    }
    return expected;
  }

  /** The master connection closed (ssh -O exit, then its process ended by pid). */
  async close(): Promise<void> {
    const master = this.master;
    if (!master) return;
    await new Promise<void>((resolve) => {
      const c = spawn(
        this.options.sshProgram ?? 'ssh',
        [...this.baseArgs(), '-O', 'exit', '--', this.target.address],
        {
          stdio: 'ignore',
          env: this.options.env ?? process.env,
        },
      );
      const t = setTimeout(() => c.kill('SIGKILL'), 5000);
      c.on('close', () => {
        clearTimeout(t);
        resolve();
      });
      c.on('error', () => resolve());
    });
    if (this.master && this.master.exitCode === null) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          this.master?.kill('SIGKILL');
          resolve();
        }, 3000);
        this.master!.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        this.master!.kill('SIGTERM');
      });
    }
  }
}

/**
 * Runs on the node as `sh -c SCRIPT kf-copy DIR NAME MODE SHA256` (everything after the
 * script is data, in $1..$4): stdin to a temp file beside the target, its sha256 compared,
 * then renamed into place. Exit 3 (and the digest on stdout) when it differs.
 */
const COPY_SCRIPT = [
  'set -e',
  'umask 077',
  'mkdir -p -- "$1"',
  't="$1/.$2.kf-tmp.$$"',
  'trap \'rm -f -- "$t"\' EXIT',
  'cat > "$t"',
  's=$(sha256sum < "$t")',
  's=${s%% *}',
  'if [ "$s" != "$4" ]; then echo "$s"; exit 3; fi',
  'chmod "$3" "$t"',
  'mv -f -- "$t" "$1/$2"',
  'trap - EXIT',
].join('\n');
