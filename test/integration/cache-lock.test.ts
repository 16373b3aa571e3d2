import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cliPath } from '../helpers/env.js';
import { keyFor, tempDir, writeFakeElf, manifestInput } from '../helpers/cache-fixtures.js';
import { BinaryCache } from '../../src/carry/cache/store.js';

// Real processes racing on one cache dir, through the built code (dist/), as two concurrent
// `build` runs of the same key would.
const storeModule = path.join(path.dirname(cliPath), 'carry/cache/store.js');
const worker = `
const { BinaryCache } = await import(process.env.STORE_MODULE);
const cache = new BinaryCache(process.env.CACHE_DIR);
const key = process.env.KEY;
const platform = { os: 'linux', arch: 'amd64' };
const t0 = Date.now();
const outcome = await cache.withKeyLock(key, async () => {
  process.stdout.write('locked\\n');
  const r = await cache.lookup(key, platform);
  if (r.kind === 'hit') return 'hit';
  if (process.env.HANG) await new Promise(() => setInterval(() => {}, 1000));
  await new Promise((res) => setTimeout(res, Number(process.env.BUILD_MS)));
  await cache.store(JSON.parse(process.env.MANIFEST), process.env.BINARY);
  return 'built';
}, { pollMs: 25 });
process.stdout.write(JSON.stringify({ outcome, ms: Date.now() - t0 }) + '\\n');
`;

function runWorker(env: Record<string, string>): {
  done: Promise<{ outcome: string; ms: number }>;
  pid: number;
  locked: Promise<void>;
} {
  const child = spawn(process.execPath, ['--input-type=module', '-e', worker], {
    env: { ...process.env, STORE_MODULE: storeModule, ...env },
  });
  let out = '';
  let err = '';
  let onLocked: () => void = () => undefined;
  const locked = new Promise<void>((res) => (onLocked = res));
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes('locked')) onLocked();
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<{ outcome: string; ms: number }>((resolve, reject) =>
    child.on('exit', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code === 0) resolve(JSON.parse(last) as { outcome: string; ms: number });
      else reject(new Error(`worker exited ${code}: ${err}`));
    }),
  );
  return { done, pid: child.pid!, locked };
}

let dir: string;
beforeEach(() => {
  dir = tempDir('cache-lock');
  if (!fs.existsSync(storeModule)) throw new Error(`${storeModule} missing: run 'npm run build' first`);
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('two processes, one key', () => {
  it('the second waits for the first build and then hits; one entry, no leftovers', async () => {
    const key = keyFor('two-procs');
    const cacheDir = path.join(dir, 'cache');
    const env = (seed: string) => ({
      CACHE_DIR: cacheDir,
      KEY: key,
      BUILD_MS: '1500',
      MANIFEST: JSON.stringify(manifestInput(key, 'linux/amd64')),
      BINARY: writeFakeElf(dir, 'amd64', seed),
    });
    const a = runWorker(env('a'));
    await a.locked;
    const b = runWorker(env('b'));
    const [ra, rb] = await Promise.all([a.done, b.done]);
    expect(ra.outcome).toBe('built');
    expect(rb.outcome).toBe('hit');
    expect(rb.ms).toBeGreaterThan(500); // it waited for the lock
    const cache = new BinaryCache(cacheDir);
    const { entries, problems } = await cache.list();
    expect(problems).toEqual([]);
    expect(entries).toHaveLength(1);
    expect((await cache.lookup(key, { os: 'linux', arch: 'amd64' })).kind).toBe('hit');
    expect(fs.readdirSync(cache.root).filter((n) => n.startsWith('.'))).toEqual([]);
    expect(fs.readdirSync(cache.locksDir)).toEqual([]);
  }, 60_000);

  it('a holder killed with SIGKILL does not block the next build', async () => {
    const key = keyFor('killed');
    const cacheDir = path.join(dir, 'cache');
    const base = {
      CACHE_DIR: cacheDir,
      KEY: key,
      BUILD_MS: '10',
      MANIFEST: JSON.stringify(manifestInput(key, 'linux/amd64')),
    };
    const hung = runWorker({ ...base, BINARY: writeFakeElf(dir, 'amd64', 'h'), HANG: '1' });
    await hung.locked;
    process.kill(hung.pid, 'SIGKILL');
    await hung.done.catch(() => undefined);
    expect(fs.readdirSync(path.join(cacheDir, 'locks'))).toEqual([`${key}.lock`]); // left behind
    const next = await runWorker({ ...base, BINARY: writeFakeElf(dir, 'amd64', 'n') }).done;
    expect(next.outcome).toBe('built');
    expect(next.ms).toBeLessThan(5000);
  }, 60_000);
});
