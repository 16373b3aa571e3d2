import { spawn, execFile, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { KfError } from '../src/core/errors.js';
import { repoRoot } from '../test/helpers/env.js';

/**
 * What every group of the bench's rows shares: the processes it starts (each in its own process
 * group, so Ctrl-C reaches only the bench, which passes it on), what it made (containers,
 * volumes, temp dirs, servers), removed by `cleanup` on success, failure and interrupt alike, and
 * the machine facts printed under every table.
 */

export { repoRoot };
export const cliPath = path.join(repoRoot, 'dist/cli.js');
/** GNU time: the peak RSS (%M) and CPU time of a run */
export const TIME_BIN = '/usr/bin/time';
/** Start-up rows: the best of this many runs. */
export const STARTUP_RUNS = 5;

export function log(text: string): void {
  process.stderr.write(`bench: ${text}\n`);
}

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** What the run made, removed by cleanup() whatever happens. */
const made = {
  dirs: [] as string[],
  containers: [] as string[],
  volumes: [] as string[],
  /** pids of the tool whose containers (label kubeadm-forever.pid) must go too */
  toolPids: [] as number[],
  children: new Set<ChildProcess>(),
  /** other things to stop (servers), newest first */
  stops: [] as (() => Promise<void>)[],
};

export function trackContainer(name: string): void {
  made.containers.push(name);
}
export function trackVolume(name: string): void {
  made.volumes.push(name);
}
export function trackToolPid(pid: number): void {
  made.toolPids.push(pid);
}
export function onCleanup(stop: () => Promise<void>): void {
  made.stops.unshift(stop);
}

export function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.dirs.push(d);
  return d;
}

/** execFile as a promise; a failure carries the child's stdout and stderr. */
export function run(
  cmd: string,
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv } = {},
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 16 * 1024 * 1024, ...opts }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(err, { stdout, stderr }));
      else resolve({ stdout, stderr });
    });
  });
}

/** Spawns a child in its own process group (Ctrl-C reaches only the bench, which forwards it). */
export function spawnChild(
  cmd: string,
  args: readonly string[],
  opts: SpawnOptions = {},
): { child: ChildProcess; done: Promise<Finished> } {
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  made.children.add(child);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout?.on('data', (d: Buffer) => out.push(d));
  child.stderr?.on('data', (d: Buffer) => err.push(d));
  const done = new Promise<Finished>((resolve) => {
    child.on('close', (code, signal) => {
      made.children.delete(child);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
    child.on('error', (e) => {
      made.children.delete(child);
      resolve({ code: -1, signal: null, stdout: '', stderr: String(e) });
    });
  });
  return { child, done };
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    /* gone */
  }
}

/** Removes everything the run made; safe to call twice. */
export async function cleanup(): Promise<void> {
  // the whole group gets SIGINT: GNU time ignores it, the tool under it removes its container,
  // `docker run` passes it to the container
  for (const child of made.children) signalGroup(child, 'SIGINT');
  const deadline = Date.now() + 10_000;
  while (made.children.size > 0 && Date.now() < deadline) await sleep(100);
  for (const child of made.children) signalGroup(child, 'SIGKILL');
  for (const stop of made.stops.splice(0)) await stop().catch(() => undefined);
  const ids = new Set(made.containers.splice(0));
  for (const pid of made.toolPids.splice(0)) {
    try {
      const { stdout } = await run('docker', ['ps', '-aq', '--filter', `label=kubeadm-forever.pid=${pid}`]);
      for (const id of stdout.split('\n').filter(Boolean)) ids.add(id);
    } catch {
      /* engine gone: nothing to remove */
    }
  }
  for (const id of ids) await run('docker', ['rm', '-f', '-v', id]).catch(() => undefined);
  for (const v of made.volumes.splice(0))
    await run('docker', ['volume', 'rm', '-f', v]).catch(() => undefined);
  for (const d of made.dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

/** The last lines of a child's output, indented, for the log before an error. */
export function tail(text: string, n = 15): string {
  return text
    .trimEnd()
    .split('\n')
    .slice(-n)
    .map((l) => `    ${l}`)
    .join('\n');
}

/** A step that failed: its output's tail to the log, then the two-line error. */
export function stepFailed(what: string, output: string, next: string): KfError {
  if (output.trim()) log(`${what}; its last output:\n${tail(output)}`);
  return new KfError(what, next);
}

export function round(x: number, d?: number): number;
export function round(x: number | null | undefined, d?: number): number | null;
export function round(x: number | null | undefined, d = 2): number | null {
  return x === null || x === undefined ? null : Math.round(x * 10 ** d) / 10 ** d;
}

export const loadAverage = (): number[] => os.loadavg().map((x) => round(x));

/** The best of `n` runs of `once` (seconds). */
export async function bestOf(n: number, once: () => Promise<number>): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < n; i++) best = Math.min(best, await once());
  return best;
}

/** Wall seconds of `fn`. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await fn();
  return (performance.now() - start) / 1000;
}

/** The best wall time of STARTUP_RUNS runs of `node -e 0`: the floor of every start-up row. */
export async function bareNodeStartup(): Promise<number> {
  return bestOf(STARTUP_RUNS, async () => {
    const start = performance.now();
    const r = await spawnChild(process.execPath, ['-e', '0']).done;
    if (r.code !== 0)
      throw new KfError(`node -e 0 failed (exit ${r.code ?? r.signal})`, 'check the Node installation');
    return (performance.now() - start) / 1000;
  });
}

/** The pass/fail cell of a row: '-' without a target. */
export function resultCell(pass: boolean | null): string {
  return pass === null ? '-' : pass ? 'pass' : 'FAIL';
}

/** The checkout must be built: every row runs dist/cli.js. */
export function requireBuilt(): void {
  if (!fs.existsSync(cliPath))
    throw new KfError(`${cliPath} is missing`, "run 'npm run build' first (npm run bench does)");
}
