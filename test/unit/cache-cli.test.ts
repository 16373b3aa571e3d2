import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BinaryCache } from '../../src/carry/cache/store.js';
import { runCli } from '../helpers/env.js';
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

const cli = (...args: string[]) => runCli([...args, '--cache-dir', cacheDir]);

describe('cache commands', () => {
  it('ls --json: one row per binary with the contract fields', () => {
    const r = cli('cache', 'ls', '--json');
    expect(r.status).toBe(0);
    const rows = JSON.parse(r.stdout) as Record<string, unknown>[];
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

  it('ls: a human table; an empty cache says so', () => {
    const r = cli('cache', 'ls');
    expect(r.stdout).toMatch(/^KEY +VERSION +PLATFORM/);
    expect(r.stdout).toContain(k1.slice(0, 12));
    const empty = runCli(['cache', 'ls', '--json', '--cache-dir', path.join(dir, 'none')]);
    expect(empty.status).toBe(0);
    expect(JSON.parse(empty.stdout)).toEqual([]);
  }, 120_000);

  it('path: every platform of a key, or one; a unique prefix works', () => {
    const all = cli('cache', 'path', k1);
    expect(all.status).toBe(0);
    expect(all.stdout.trim().split('\n')).toEqual([
      path.join(cacheDir, 'binaries', k1, 'linux-amd64', 'kubeadm'),
      path.join(cacheDir, 'binaries', k1, 'linux-arm64', 'kubeadm'),
    ]);
    const one = cli('cache', 'path', k1.slice(0, 10), '--platform', 'linux/arm64');
    expect(one.stdout.trim()).toBe(path.join(cacheDir, 'binaries', k1, 'linux-arm64', 'kubeadm'));
  }, 120_000);

  it('path/rm of an unknown key: exit 1, two-line error, nothing changed', () => {
    const before = listTree(cacheDir);
    for (const action of ['path', 'rm']) {
      const r = cli('cache', action, 'f'.repeat(64));
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/^error: no cache entry for key f{64} .*\nnext: .*cache ls.*\n$/);
      expect(r.stdout).toBe('');
    }
    expect(cli('cache', 'path', k1, '--platform', 'linux/x:y').status).toBe(2);
    expect(listTree(cacheDir)).toEqual(before);
  }, 120_000);

  it('rm removes a key with all its platforms', () => {
    const r = cli('cache', 'rm', k1, '--json');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ removed: k1 });
    expect(fs.existsSync(path.join(cacheDir, 'binaries', k1))).toBe(false);
    expect(JSON.parse(cli('cache', 'ls', '--json').stdout)).toHaveLength(1);
  }, 120_000);

  it('prune --keep 1 keeps the newest key; a bad --keep is a usage error', () => {
    expect(cli('cache', 'prune', '--keep', '-1').status).toBe(2);
    expect(cli('cache', 'prune', '--keep', 'x').status).toBe(2);
    const r = cli('cache', 'prune', '--keep', '1', '--json');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ removedKeys: [k1], removedLeftovers: [] });
    const rows = JSON.parse(cli('cache', 'ls', '--json').stdout) as { key: string }[];
    expect(rows.map((x) => x.key)).toEqual([k2]);
  }, 120_000);

  it('path and ls check the sha256 first: a binary changed in place is a corrupt entry, moved aside, never handed out', () => {
    const cache = new BinaryCache(cacheDir);
    const bin = path.join(cache.entryDir(k1, { os: 'linux', arch: 'amd64' }), 'kubeadm');
    const bytes = fs.readFileSync(bin);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff; // same size, same ELF header: only the sha256 tells
    fs.writeFileSync(bin, bytes);

    const p = cli('cache', 'path', k1, '--platform', 'linux/amd64', '--json');
    expect(p.status).toBe(1);
    expect(p.stderr).toMatch(
      /^error: corrupt cache entry [0-9a-f]{12} linux\/amd64: sha256 [0-9a-f]{64} differs from the manifest's [0-9a-f]{64}; moved aside to .*\/binaries\/\.corrupt\/.+\nnext: .+no path was printed\n$/,
    );
    expect(JSON.parse(p.stdout)).toMatchObject({ error: expect.stringMatching(/^corrupt cache entry/) });
    expect(fs.existsSync(bin)).toBe(false);
    expect(fs.readdirSync(path.join(cacheDir, 'binaries', '.corrupt'))).toHaveLength(1);

    // ls: the same check; the arm64 binary of the key is changed now, and is not listed
    const arm = path.join(cache.entryDir(k1, { os: 'linux', arch: 'arm64' }), 'kubeadm');
    const armBytes = fs.readFileSync(arm);
    armBytes[100] = armBytes[100]! ^ 0xff;
    fs.writeFileSync(arm, armBytes);
    const ls = cli('cache', 'ls', '--json');
    expect(ls.status).toBe(0);
    expect((JSON.parse(ls.stdout) as { key: string }[]).map((r) => r.key)).toEqual([k2]);
    expect(ls.stderr).toMatch(
      /^warning: corrupt cache entry [0-9a-f]{12} linux\/arm64: sha256 .* moved aside to /m,
    );
    expect(fs.readdirSync(path.join(cacheDir, 'binaries', '.corrupt'))).toHaveLength(2);
    // the sound entry is still handed out
    expect(cli('cache', 'path', k2).stdout.trim()).toBe(
      path.join(cache.entryDir(k2, { os: 'linux', arch: 'amd64' }), 'kubeadm'),
    );
  });
});
