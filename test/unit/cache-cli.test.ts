import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BinaryCache } from '../../src/carry/cache/store.js';
import {
  formatCacheLsResult,
  formatCachePathResult,
  runCacheLs,
  runCachePath,
  runCachePrune,
  runCacheRm,
} from '../../src/commands/cache.js';
import { captureIo, expectFailure } from '../helpers/command-io.js';
import { keyFor, listTree, manifestInput, tempDir, writeFakeElf } from '../helpers/cache-fixtures.js';

let dir: string;
let cacheDir: string;
const k1 = keyFor('cli-1');
const k2 = keyFor('cli-2');
beforeEach(async () => {
  dir = tempDir('cache-cli');
  cacheDir = path.join(dir, 'cache');
  const cache = new BinaryCache(cacheDir);
  await cache.store(manifestInput(k1, 'linux/amd64'), writeFakeElf(dir, 'amd64', '1'));
  await cache.store(manifestInput(k1, 'linux/arm64'), writeFakeElf(dir, 'arm64', '1'));
  await new Promise((r) => setTimeout(r, 5));
  await cache.store(
    manifestInput(k2, 'linux/amd64', { gitVersion: 'v1.24.15' }),
    writeFakeElf(dir, 'amd64', '2'),
  );
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('cache commands', () => {
  it('ls --json: one row per binary with the contract fields', async () => {
    const rows = await runCacheLs({ cacheDir }, captureIo());
    expect(rows).toHaveLength(3);
    for (const row of rows) {
      expect(Object.keys(row).sort()).toEqual(
        [
          'key',
          'gitVersion',
          'gitCommit',
          'platform',
          'validity',
          'caValidity',
          'sha256',
          'path',
          'size',
          'created',
        ].sort(),
      );
      expect(fs.existsSync(row.path as string)).toBe(true);
    }
    expect(rows.map((x) => `${x.gitVersion} ${x.platform} ${x.validity} ${x.caValidity}`).sort()).toEqual([
      'v1.20.2 linux/amd64 199y 200y',
      'v1.20.2 linux/arm64 199y 200y',
      'v1.24.15 linux/amd64 199y 200y',
    ]);
  }, 120_000);

  it('ls: a human table; an empty cache says so', async () => {
    const text = formatCacheLsResult(await runCacheLs({ cacheDir }, captureIo()), cacheDir);
    expect(text).toMatch(/^KEY +VERSION +PLATFORM/);
    expect(text).toContain(k1.slice(0, 12));
    const none = path.join(dir, 'none');
    const empty = await runCacheLs({ cacheDir: none }, captureIo());
    expect(empty).toEqual([]);
    expect(formatCacheLsResult(empty, none)).toBe(`no cached binaries in ${path.join(none, 'binaries')}`);
  }, 120_000);

  it('path: every platform of a key, or one; a unique prefix works', async () => {
    const all = await runCachePath({ cacheDir, key: k1 }, captureIo());
    expect(formatCachePathResult(all).split('\n')).toEqual([
      path.join(cacheDir, 'binaries', k1, 'linux-amd64', 'kubeadm'),
      path.join(cacheDir, 'binaries', k1, 'linux-arm64', 'kubeadm'),
    ]);
    const one = await runCachePath(
      { cacheDir, key: k1.slice(0, 10), platform: ['linux/arm64'] },
      captureIo(),
    );
    expect(one).toEqual([{ key: k1, platform: 'linux/arm64', path: expect.any(String) }]);
    expect(formatCachePathResult(one)).toBe(path.join(cacheDir, 'binaries', k1, 'linux-arm64', 'kubeadm'));
  }, 120_000);

  it('path/rm of an unknown key: exit 1, two-line error, nothing changed', async () => {
    const before = listTree(cacheDir);
    for (const run of [runCachePath, runCacheRm]) {
      const e = await expectFailure(
        run({ cacheDir, key: 'f'.repeat(64) }, captureIo()),
        1,
        /^no cache entry for key f{64} /,
      );
      expect(e.next).toMatch(/cache ls/);
    }
    await expectFailure(
      runCachePath({ cacheDir, key: k1, platform: ['linux/x:y'] }, captureIo()),
      2,
      /linux\/x:y/,
    );
    expect(listTree(cacheDir)).toEqual(before);
  }, 120_000);

  it('rm removes a key with all its platforms', async () => {
    expect(await runCacheRm({ cacheDir, key: k1 }, captureIo())).toEqual({ removed: k1 });
    expect(fs.existsSync(path.join(cacheDir, 'binaries', k1))).toBe(false);
    expect(await runCacheLs({ cacheDir }, captureIo())).toHaveLength(1);
  }, 120_000);

  it('prune --keep 1 keeps the newest key; a bad --keep is a usage error', async () => {
    // --keep x: yargs parses it as NaN
    for (const keep of [-1, NaN, 1.5])
      await expectFailure(runCachePrune({ cacheDir, keep }, captureIo()), 2, /--keep must be a whole number/);
    expect(await runCachePrune({ cacheDir, keep: 1 }, captureIo())).toEqual({
      removedKeys: [k1],
      removedLeftovers: [],
    });
    const rows = await runCacheLs({ cacheDir }, captureIo());
    expect(rows.map((x) => x.key)).toEqual([k2]);
  }, 120_000);

  it('path and ls check the sha256 first: a binary changed in place is a corrupt entry, moved aside, never handed out', async () => {
    const cache = new BinaryCache(cacheDir);
    const bin = path.join(cache.entryDir(k1, { os: 'linux', arch: 'amd64' }), 'kubeadm');
    const bytes = fs.readFileSync(bin);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff; // same size, same ELF header: only the sha256 tells
    fs.writeFileSync(bin, bytes);

    const e = await expectFailure(
      runCachePath({ cacheDir, key: k1, platform: ['linux/amd64'] }, captureIo()),
      1,
      /^corrupt cache entry [0-9a-f]{12} linux\/amd64: sha256 [0-9a-f]{64} differs from the manifest's [0-9a-f]{64}; moved aside to .*\/binaries\/\.corrupt\/.+$/,
    );
    expect(e.next).toMatch(/no path was printed$/);
    expect(fs.existsSync(bin)).toBe(false);
    expect(fs.readdirSync(path.join(cacheDir, 'binaries', '.corrupt'))).toHaveLength(1);

    // ls: the same check; the arm64 binary of the key is changed now, and is not listed
    const arm = path.join(cache.entryDir(k1, { os: 'linux', arch: 'arm64' }), 'kubeadm');
    const armBytes = fs.readFileSync(arm);
    armBytes[100] = armBytes[100]! ^ 0xff;
    fs.writeFileSync(arm, armBytes);
    const io = captureIo();
    expect((await runCacheLs({ cacheDir }, io)).map((r) => r.key)).toEqual([k2]);
    expect(io.told()).toMatch(
      /^warning: corrupt cache entry [0-9a-f]{12} linux\/arm64: sha256 .* moved aside to /m,
    );
    expect(fs.readdirSync(path.join(cacheDir, 'binaries', '.corrupt'))).toHaveLength(2);
    // the sound entry is still handed out
    expect(formatCachePathResult(await runCachePath({ cacheDir, key: k2 }, captureIo()))).toBe(
      path.join(cache.entryDir(k2, { os: 'linux', arch: 'amd64' }), 'kubeadm'),
    );
  });
});
