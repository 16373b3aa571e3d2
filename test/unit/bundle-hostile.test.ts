import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { exportBundle, selectEntries } from '../../src/carry/bundle/export.js';
import { importBundle } from '../../src/carry/bundle/import.js';
import { readBundle } from '../../src/carry/bundle/read.js';
import { BinaryCache } from '../../src/carry/cache/store.js';
import { keyFor, listTree, manifestInput, tempDir, writeFakeElf } from '../helpers/cache-fixtures.js';
import { craftTarGz, readTarGz, type CraftMember } from '../helpers/tar-craft.js';

const ROOT = 'kubeadm-forever-bundle';
const key = keyFor('hostile');
const entryDir = `${ROOT}/binaries/${key}/linux-amd64`;

let dir: string;
let good: CraftMember[];
beforeEach(async () => {
  dir = tempDir('bundle-hostile');
  const outside = new BinaryCache(path.join(dir, 'outside'));
  await outside.store(manifestInput(key, 'linux/amd64'), writeFakeElf(dir, 'amd64', 'h'));
  const bundle = path.join(dir, 'good.tar.gz');
  await exportBundle((await selectEntries(outside, {})).entries, bundle, '0.1.0');
  good = await readTarGz(bundle);
  fs.mkdirSync(path.join(dir, 'victim'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const absTarget = () => path.join(dir, 'victim', 'absolute.txt');

// Each case: the hostile member(s), placed after the good members (so staging already holds
// files when the refusal comes) and, separately, before them.
const cases: [string, () => CraftMember[], RegExp][] = [
  ['a "../" path', () => [{ name: '../escape.txt', data: 'x' }], /refused: a "\.\." component/],
  [
    'a "../" path inside the root',
    () => [{ name: `${ROOT}/../../victim/escape.txt`, data: 'x' }],
    /refused: a "\.\." component/,
  ],
  ['an absolute path', () => [{ name: absTarget(), data: 'x' }], /refused: an absolute path/],
  [
    'a symlink',
    () => [{ name: `${entryDir}/kubeadm`, type: 'symlink', linkname: '/etc/passwd' }],
    /is a symlink to "\/etc\/passwd"; only regular files/,
  ],
  [
    'a symlinked directory then a file through it',
    () => [
      { name: `${ROOT}/binaries/${keyFor('x')}`, type: 'symlink', linkname: path.join(dir, 'victim') },
      { name: `${ROOT}/binaries/${keyFor('x')}/linux-amd64/kubeadm`, data: 'x' },
    ],
    /is a symlink/,
  ],
  [
    'a hard link',
    () => [{ name: `${entryDir}/manifest.json`, type: 'link', linkname: '../../../../etc/passwd' }],
    /is a hard link to/,
  ],
  [
    'a character device',
    () => [{ name: `${ROOT}/README.txt`, type: 'character-device', devmajor: 1, devminor: 3 }],
    /is a character-device/,
  ],
  [
    'a block device',
    () => [{ name: `${ROOT}/SHA256SUMS`, type: 'block-device', devmajor: 8, devminor: 0 }],
    /is a block-device/,
  ],
  ['a fifo', () => [{ name: `${ROOT}/README.txt`, type: 'fifo' }], /is a fifo/],
  ['a directory member', () => [{ name: `${ROOT}/binaries/`, type: 'directory' }], /is a directory/],
  [
    'a name outside the layout',
    () => [{ name: `${ROOT}/install.sh`, data: 'rm -rf /' }],
    /not a file the bundle layout has/,
  ],
  ['a name outside the root', () => [{ name: 'other/README.txt', data: 'x' }], /outside the bundle root/],
  ['a backslash name', () => [{ name: `${ROOT}\\..\\evil`, data: 'x' }], /backslash/],
];

describe('hostile bundles are refused by verify and import; nothing is written anywhere', () => {
  for (const [name, hostile, reason] of cases) {
    for (const where of ['after', 'before'] as const) {
      it(`${name} (${where} the good members)`, async () => {
        const file = path.join(dir, 'hostile.tar.gz');
        await craftTarGz(file, where === 'after' ? [...good, ...hostile()] : [...hostile(), ...good]);
        const before = listTree(dir);
        await expect(readBundle(file)).rejects.toThrow(reason);
        const inside = new BinaryCache(path.join(dir, 'inside', 'cache'));
        await expect(importBundle(file, inside, { force: true })).rejects.toThrow(reason);
        expect(listTree(dir)).toEqual(before); // no cache dir, no staging, nothing in victim/
        expect(fs.existsSync(absTarget())).toBe(false);
        expect(fs.existsSync(path.resolve('../escape.txt'))).toBe(false);
      });
    }
  }

  it('a duplicate name (a second manifest that would replace the first)', async () => {
    const file = path.join(dir, 'dup.tar.gz');
    await craftTarGz(file, [...good, { name: `${entryDir}/manifest.json`, data: '{}' }]);
    await expect(readBundle(file)).rejects.toThrow(/appears twice/);
    const inside = new BinaryCache(path.join(dir, 'inside'));
    await expect(importBundle(file, inside, { force: false })).rejects.toThrow(/appears twice/);
    expect(fs.existsSync(inside.cacheDir)).toBe(false);
  });

  it('leaves an existing cache exactly as it was', async () => {
    const inside = new BinaryCache(path.join(dir, 'inside'));
    await inside.store(manifestInput(keyFor('kept'), 'linux/amd64'), writeFakeElf(dir, 'amd64', 'kept'));
    const before = listTree(inside.cacheDir);
    const file = path.join(dir, 'hostile.tar.gz');
    await craftTarGz(file, [...good, { name: '../escape.txt', data: 'x' }]);
    await expect(importBundle(file, inside, { force: true })).rejects.toThrow(/"\.\." component/);
    expect(listTree(inside.cacheDir)).toEqual(before);
  });

  it('a gzip that is not a tar, and a file that is not gzip', async () => {
    const notTar = path.join(dir, 'not-tar.tar.gz');
    fs.writeFileSync(notTar, (await import('node:zlib')).gzipSync(Buffer.alloc(2048, 7)));
    await expect(readBundle(notTar)).rejects.toThrow(/not a readable tar.gz/);
    const notGz = path.join(dir, 'not-gz.tar.gz');
    fs.writeFileSync(notGz, 'hello');
    await expect(readBundle(notGz)).rejects.toThrow(/not a readable tar.gz/);
  });
});
