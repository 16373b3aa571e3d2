import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireLock } from '../../src/carry/cache/lock.js';
import { describeVerification, parseManifest, serializeManifest } from '../../src/core/cache-manifest.js';
import { BinaryCache } from '../../src/carry/cache/store.js';
import { keyFor, listTree, manifestInput, tempDir, writeFakeElf } from '../helpers/cache-fixtures.js';

const amd64 = { os: 'linux', arch: 'amd64' };
const arm64 = { os: 'linux', arch: 'arm64' };
const sha = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

let dir: string;
let cache: BinaryCache;
beforeEach(() => {
  dir = tempDir('cache-store');
  cache = new BinaryCache(path.join(dir, 'cache'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('binary cache store and lookup', () => {
  it('stores a binary with its manifest and finds it again, sha256 checked', async () => {
    const bin = writeFakeElf(dir, 'amd64');
    const key = keyFor('a');
    expect(await cache.lookup(key, amd64)).toEqual({ kind: 'miss' });
    const entry = await cache.store(manifestInput(key, 'linux/amd64'), bin);
    expect(entry.dir).toBe(path.join(dir, 'cache/binaries', key, 'linux-amd64'));
    expect(fs.statSync(entry.binary).mode & 0o777).toBe(0o755);
    const m = parseManifest(fs.readFileSync(path.join(entry.dir, 'manifest.json'), 'utf8'));
    expect(m).toMatchObject({
      schema: 1,
      key,
      platform: 'linux/amd64',
      sha256: sha(bin),
      size: 4096,
      gitVersion: 'v1.20.2',
    });
    expect(Date.now() - Date.parse(m.created)).toBeLessThan(60_000);
    const hit = await cache.lookup(key, amd64);
    expect(hit.kind).toBe('hit');
    // nothing but the entry (and no temp dirs) is left in the cache
    expect(listTree(cache.root)).toEqual([
      key,
      `${key}/linux-amd64`,
      `${key}/linux-amd64/kubeadm`,
      `${key}/linux-amd64/manifest.json`,
    ]);
  });

  it('keeps how each binary was verified in its manifest, and refuses a malformed record', async () => {
    const bin = writeFakeElf(dir, 'arm64');
    const verification = {
      how: 'emulated' as const,
      emulator: '/usr/bin/qemu-aarch64-static',
      seconds: 5.4,
      passed: true,
    };
    const entry = await cache.store(manifestInput(keyFor('v'), 'linux/arm64', { verification }), bin);
    const text = fs.readFileSync(path.join(entry.dir, 'manifest.json'), 'utf8');
    const m = parseManifest(text);
    expect(m.verification).toEqual(verification);
    expect(describeVerification(m.verification)).toBe('verified under /usr/bin/qemu-aarch64-static');
    expect(describeVerification({ how: 'native' })).toBe('verified natively');
    expect(describeVerification({ how: 'not executed', reason: 'skipped (--no-verify)' })).toBe(
      'not executed (skipped (--no-verify))',
    );
    // a manifest of an older tool version has none: still read
    const { verification: _v, ...older } = m;
    expect(parseManifest(serializeManifest(older as typeof m)).verification).toBeUndefined();
    for (const bad of [{ how: 'passed' }, 'native', null]) {
      expect(() => parseManifest(JSON.stringify({ ...m, verification: bad }))).toThrow(/bad verification/);
    }
  });

  it('copies a hit out atomically, mode 0755, same bytes', async () => {
    const bin = writeFakeElf(dir, 'amd64');
    const entry = await cache.store(manifestInput(keyFor('a'), 'linux/amd64'), bin);
    const out = path.join(dir, 'kubeadm-out');
    fs.writeFileSync(out, 'old');
    await cache.copyOut(entry, out);
    expect(sha(out)).toBe(sha(bin));
    expect(fs.statSync(out).mode & 0o777).toBe(0o755);
    expect(fs.readdirSync(dir).filter((n) => n.includes('.kf-'))).toEqual([]);
  });

  it('reports a corrupt entry (one byte flipped), moves it aside and then misses', async () => {
    const key = keyFor('a');
    const entry = await cache.store(manifestInput(key, 'linux/amd64'), writeFakeElf(dir, 'amd64'));
    const fd = fs.openSync(entry.binary, 'r+');
    fs.writeSync(fd, Buffer.from([0x42]), 0, 1, 1000);
    fs.closeSync(fd);
    const r = await cache.lookup(key, amd64);
    expect(r.kind).toBe('corrupt');
    if (r.kind !== 'corrupt') return;
    expect(r.reason).toMatch(/sha256 [0-9a-f]{64} differs from the manifest's/);
    expect(r.movedTo.startsWith(path.join(cache.root, '.corrupt'))).toBe(true);
    expect(fs.existsSync(path.join(r.movedTo, 'kubeadm'))).toBe(true);
    expect(fs.existsSync(entry.dir)).toBe(false);
    expect(await cache.lookup(key, amd64)).toEqual({ kind: 'miss' });
    // a rebuild stores cleanly again
    await cache.store(manifestInput(key, 'linux/amd64'), writeFakeElf(dir, 'amd64'));
    expect((await cache.lookup(key, amd64)).kind).toBe('hit');
  });

  it.each([
    ['a missing manifest', (d: string) => fs.rmSync(path.join(d, 'manifest.json')), /manifest.json/],
    [
      'a manifest that is not JSON',
      (d: string) => fs.writeFileSync(path.join(d, 'manifest.json'), '{'),
      /not JSON/,
    ],
    ['a truncated binary', (d: string) => fs.truncateSync(path.join(d, 'kubeadm'), 100), /size 100 differs/],
    ['a missing binary', (d: string) => fs.rmSync(path.join(d, 'kubeadm')), /binary is missing/],
    [
      'a manifest of another key',
      (d: string) => {
        const f = path.join(d, 'manifest.json');
        fs.writeFileSync(f, fs.readFileSync(f, 'utf8').replace(keyFor('a'), keyFor('b')));
      },
      /is for key/,
    ],
  ])('treats %s as corrupt', async (_name, damage, reason) => {
    const key = keyFor('a');
    const entry = await cache.store(manifestInput(key, 'linux/amd64'), writeFakeElf(dir, 'amd64'));
    damage(entry.dir);
    const r = await cache.lookup(key, amd64);
    expect(r.kind).toBe('corrupt');
    if (r.kind === 'corrupt') expect(r.reason).toMatch(reason);
  });

  it('refuses to store a binary of another machine than its platform, writing nothing', async () => {
    await expect(
      cache.store(manifestInput(keyFor('a'), 'linux/arm64'), writeFakeElf(dir, 'amd64')),
    ).rejects.toThrow(/built for amd64 .*expected arm64/);
    expect(listTree(cache.root)).toEqual([]);
    await expect(
      cache.store(manifestInput('../evil', 'linux/amd64'), writeFakeElf(dir, 'amd64')),
    ).rejects.toThrow(/invalid cache key/);
    await expect(
      cache.store(manifestInput(keyFor('a'), 'linux/../x'), writeFakeElf(dir, 'amd64')),
    ).rejects.toThrow(/invalid platform/);
    expect(listTree(cache.root)).toEqual([]);
  });

  it('keeps one key per platform side by side, lists, removes and prunes', async () => {
    const k1 = keyFor('1');
    const k2 = keyFor('2');
    await cache.store(manifestInput(k1, 'linux/amd64'), writeFakeElf(dir, 'amd64', '1'));
    await cache.store(
      manifestInput(k1, 'linux/arm64', { gitVersion: 'v1.20.2' }),
      writeFakeElf(dir, 'arm64', '1'),
    );
    await new Promise((r) => setTimeout(r, 5));
    await cache.store(
      manifestInput(k2, 'linux/amd64', { gitVersion: 'v1.24.15' }),
      writeFakeElf(dir, 'amd64', '2'),
    );
    expect((await cache.lookup(k1, arm64)).kind).toBe('hit');
    const { entries } = await cache.list();
    expect(entries.map((e) => `${e.manifest.key.slice(0, 4)} ${e.manifest.platform}`)).toEqual(
      [
        `${k1.slice(0, 4)} linux/amd64`,
        `${k1.slice(0, 4)} linux/arm64`,
        `${k2.slice(0, 4)} linux/amd64`,
      ].sort(),
    );
    expect(await cache.resolveKey(k2.slice(0, 8))).toBe(k2);
    expect(await cache.resolveKey('zzzzzzzz')).toBeNull();

    fs.mkdirSync(path.join(cache.root, '.corrupt/x'), { recursive: true });
    fs.mkdirSync(path.join(cache.root, '.tmp-999999999-abcd'));
    const live = path.join(cache.root, `.tmp-${process.pid}-abcd`);
    fs.mkdirSync(live);
    const pruned = await cache.prune(1);
    expect(pruned.removedKeys).toEqual([k1]);
    expect(pruned.removedLeftovers.sort()).toEqual(['.corrupt', '.tmp-999999999-abcd']);
    expect(fs.existsSync(live)).toBe(true); // a live process's temp dir stays
    expect((await cache.list()).entries.map((e) => e.manifest.key)).toEqual([k2]);
    expect(await cache.remove(k2)).toBe(true);
    expect(await cache.remove(k2)).toBe(false);
    expect((await cache.list()).entries).toEqual([]);
  });

  it('keeps an existing sound entry when the same key is stored again', async () => {
    const key = keyFor('a');
    const first = await cache.store(manifestInput(key, 'linux/amd64'), writeFakeElf(dir, 'amd64', 'first'));
    const second = await cache.store(manifestInput(key, 'linux/amd64'), writeFakeElf(dir, 'amd64', 'second'));
    expect(second.manifest.sha256).toBe(first.manifest.sha256);
    expect(listTree(cache.root).filter((n) => n.startsWith('.'))).toEqual([]);
  });
});

describe('key lock', () => {
  it('makes two concurrent build-or-hit runs of one key build once; the second waits and hits', async () => {
    const key = keyFor('race');
    let builds = 0;
    const run = (seed: string) =>
      cache.withKeyLock(
        key,
        async () => {
          const r = await cache.lookup(key, amd64);
          if (r.kind === 'hit') return 'hit';
          builds++;
          await new Promise((res) => setTimeout(res, 200)); // a "build"
          await cache.store(manifestInput(key, 'linux/amd64'), writeFakeElf(dir, 'amd64', seed));
          return 'built';
        },
        { pollMs: 20 },
      );
    const results = await Promise.all([run('a'), run('b'), run('c')]);
    expect(results.sort()).toEqual(['built', 'hit', 'hit']);
    expect(builds).toBe(1);
    expect(fs.readdirSync(cache.locksDir)).toEqual([]);
  });

  it('breaks a lock left by a dead process at once, and times out on a live one', async () => {
    fs.mkdirSync(cache.locksDir, { recursive: true });
    const lockFile = path.join(cache.locksDir, 'k.lock');
    // a pid that surely is not running: a child that already exited
    const child = spawn(process.execPath, ['-e', '0']);
    const deadPid = await new Promise<number>((res) => child.on('exit', () => res(child.pid!)));
    fs.writeFileSync(
      lockFile,
      JSON.stringify({ pid: deadPid, host: os.hostname(), token: 'dead', created: '' }),
    );
    const t0 = Date.now();
    const lock = await acquireLock(lockFile, { pollMs: 10 });
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(JSON.parse(fs.readFileSync(lockFile, 'utf8')).pid).toBe(process.pid);
    // our own, live lock: another acquirer waits, then gives up
    const waitedOn: number[] = [];
    await expect(
      acquireLock(lockFile, { timeoutMs: 200, pollMs: 10, onWait: (h) => waitedOn.push(h.pid) }),
    ).rejects.toThrow(/timed out waiting for lock/);
    expect(waitedOn).toEqual([process.pid]);
    await lock.release();
    expect(fs.existsSync(lockFile)).toBe(false);
  });

  it('breaks a lock whose file was not refreshed for staleMs (holder on another host)', async () => {
    fs.mkdirSync(cache.locksDir, { recursive: true });
    const lockFile = path.join(cache.locksDir, 'k.lock');
    fs.writeFileSync(lockFile, JSON.stringify({ pid: 1, host: 'elsewhere', token: 't', created: '' }));
    const old = new Date(Date.now() - 10 * 60_000);
    fs.utimesSync(lockFile, old, old);
    const lock = await acquireLock(lockFile, { staleMs: 60_000, timeoutMs: 1000 });
    await lock.release();
  });
});
