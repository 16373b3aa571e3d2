import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import { isProcessAlive } from '../../adapters/process.js';

/**
 * A cross-process lock: a file created with O_EXCL holding {pid, host, token}. It is held
 * while a process builds or changes one cache key, so two builds of the same key never run at
 * once and the second one finds the first one's result.
 *
 * A lock is stale when its holder is gone: on this host, its pid no longer exists; anywhere,
 * its file was not refreshed for `staleMs` (the holder touches it every `staleMs / 4`). No
 * dependency is needed for this (proper-lockfile would add mkdir-based locks with the same
 * mtime rule but not the pid check, which frees a crashed build's lock at once).
 */
export interface LockOptions {
  /** give up waiting after this long (ms) */
  timeoutMs?: number;
  /** a lock file not refreshed for this long is stale (ms) */
  staleMs?: number;
  /** poll interval while waiting (ms) */
  pollMs?: number;
  /** called once when the lock is held by someone else and we start waiting */
  onWait?: (holder: LockHolder) => void;
}

export interface LockHolder {
  pid: number;
  host: string;
  token: string;
  created: string;
}

export class LockTimeoutError extends Error {
  constructor(
    readonly lockFile: string,
    readonly holder: LockHolder | null,
  ) {
    super(
      `timed out waiting for lock ${lockFile}` +
        (holder ? ` held by pid ${holder.pid} on ${holder.host}` : ''),
    );
  }
}

export interface Lock {
  readonly file: string;
  release(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function readHolder(file: string): Promise<{ holder: LockHolder | null; mtimeMs: number } | null> {
  try {
    const [text, st] = await Promise.all([fs.readFile(file, 'utf8'), fs.stat(file)]);
    let holder: LockHolder | null = null;
    try {
      const doc = JSON.parse(text) as LockHolder;
      if (typeof doc.pid === 'number' && typeof doc.host === 'string' && typeof doc.token === 'string')
        holder = doc;
    } catch {
      /* half-written or foreign: judged by mtime only */
    }
    return { holder, mtimeMs: st.mtimeMs };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

function isStale(info: { holder: LockHolder | null; mtimeMs: number }, staleMs: number): boolean {
  if (Date.now() - info.mtimeMs > staleMs) return true;
  const h = info.holder;
  return h !== null && h.host === os.hostname() && h.pid !== process.pid && !isProcessAlive(h.pid);
}

/**
 * Removes a stale lock without removing a fresh one someone created meanwhile: the file is
 * moved to a unique name first, and put back if it turns out not to be the one judged stale.
 */
async function breakStaleLock(file: string, stale: LockHolder | null): Promise<void> {
  const aside = `${file}.stale-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  try {
    await fs.rename(file, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const moved = await readHolder(aside);
  if (stale && moved?.holder && moved.holder.token !== stale.token) {
    // someone took the lock between our read and our rename: give it back
    await fs.link(aside, file).catch(() => undefined);
  }
  await fs.rm(aside, { force: true });
}

export async function acquireLock(file: string, opts: LockOptions = {}): Promise<Lock> {
  const timeoutMs = opts.timeoutMs ?? 60 * 60_000;
  const staleMs = opts.staleMs ?? 120_000;
  const pollMs = opts.pollMs ?? 100;
  const me: LockHolder = {
    pid: process.pid,
    host: os.hostname(),
    token: crypto.randomBytes(8).toString('hex'),
    created: new Date().toISOString(),
  };
  const deadline = Date.now() + timeoutMs;
  let waitedFor: LockHolder | null | undefined;
  for (;;) {
    try {
      const fh = await fs.open(file, 'wx', 0o644);
      try {
        await fh.writeFile(JSON.stringify(me));
      } finally {
        await fh.close();
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const info = await readHolder(file);
    if (info === null) continue; // released between our open and our read
    if (isStale(info, staleMs)) {
      await breakStaleLock(file, info.holder);
      continue;
    }
    if (waitedFor === undefined) {
      waitedFor = info.holder;
      if (info.holder) opts.onWait?.(info.holder);
    }
    if (Date.now() >= deadline) throw new LockTimeoutError(file, info.holder);
    await sleep(pollMs);
  }

  // Refresh the mtime so waiters on other hosts do not judge a long build stale.
  const heartbeat = setInterval(
    () => {
      const now = new Date();
      fs.utimes(file, now, now).catch(() => undefined);
    },
    Math.max(1000, staleMs / 4),
  );
  heartbeat.unref();

  let released = false;
  return {
    file,
    async release() {
      if (released) return;
      released = true;
      clearInterval(heartbeat);
      const info = await readHolder(file);
      // Remove it only if it is still ours (a very long pause could have let it be broken).
      if (info?.holder?.token === me.token) await fs.rm(file, { force: true });
    },
  };
}

export async function withLock<T>(file: string, opts: LockOptions, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireLock(file, opts);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}
