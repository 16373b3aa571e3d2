import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportBundle, selectEntries } from '../../src/carry/bundle/export.js';
import { readBundle } from '../../src/carry/bundle/read.js';
import { BinaryCache } from '../../src/carry/cache/store.js';
import {
  fakeElf,
  keyFor,
  listTree,
  manifestInput,
  tempDir,
  writeFakeElf,
} from '../helpers/cache-fixtures.js';
import { runCliInMount, runCliMeasured } from '../helpers/mounts.js';
import { craftBombTarGz, craftTarGz, readTarGz, type CraftMember } from '../helpers/tar-craft.js';

// Hostile archives that are small on disk and huge unpacked: every one is refused before it is
// written (measured with the cache dir on a 16 MB tmpfs: writing the member would end in
// ENOSPC, not in the bound's refusal) and with bounded memory (peak RSS under GNU time).

const ROOT = 'kubeadm-forever-bundle';
const MB = 1024 * 1024;
const key = keyFor('bounds');
const rel = `binaries/${key}/linux-amd64`;
const sha = (b: Buffer | string) => crypto.createHash('sha256').update(b).digest('hex');

let dir: string;
let readme: CraftMember;
let manifestText: string;

beforeAll(async () => {
  dir = tempDir('bundle-bounds');
  const outside = new BinaryCache(path.join(dir, 'outside'));
  await outside.store(manifestInput(key, 'linux/amd64'), writeFakeElf(dir, 'amd64', 'bounds'));
  const bundle = path.join(dir, 'good.tar.gz');
  await exportBundle((await selectEntries(outside, {})).entries, bundle, '0.1.0');
  const members = await readTarGz(bundle);
  readme = members.find((m) => m.name.endsWith('/README.txt'))!;
  manifestText = members.find((m) => m.name.endsWith('/manifest.json'))!.data!.toString();
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** README, SHA256SUMS and a manifest claiming `size` bytes for the binary (consistently summed). */
function leadingMembers(size: number, binarySha = 'f'.repeat(64)): CraftMember[] {
  const manifest = JSON.stringify({ ...JSON.parse(manifestText), size, sha256: binarySha }, null, 2) + '\n';
  const sums = `${sha(readme.data as Buffer)}  README.txt\n${binarySha}  ${rel}/kubeadm\n${sha(manifest)}  ${rel}/manifest.json\n`;
  return [
    readme,
    { name: `${ROOT}/SHA256SUMS`, data: sums },
    { name: `${ROOT}/${rel}/manifest.json`, data: manifest },
  ];
}

/** import into a cache dir on a small tmpfs (16 MB unless said); verify with GNU time: both refused, both small. */
function expectRefusedSmall(file: string, reason: RegExp, tmpfs = '16m') {
  expect(fs.statSync(file).size).toBeLessThan(MB);
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(mnt, { recursive: true });
  const imp = runCliInMount({ tmpfs }, mnt, [
    'bundle',
    'import',
    file,
    '--cache-dir',
    path.join(mnt, 'cache'),
    '--json',
  ]);
  expect(imp.stderr).toMatch(new RegExp(`^error: bundle .* is refused: ${reason.source}.*\\nnext: .+\\n$`));
  expect(imp.stderr).not.toMatch(/ENOSPC|no space/);
  expect(imp.status).toBe(1);
  expect(JSON.parse(imp.stdout)).toMatchObject({ error: expect.stringMatching(reason) });
  expect(fs.readdirSync(mnt)).toEqual([]); // the tmpfs was private to the namespace

  const ver = runCliMeasured(['bundle', 'verify', file]);
  expect(ver.stderr).toMatch(reason);
  expect(ver.status).toBe(1);
  expect(ver.peakRssMb).toBeLessThan(200);
  return ver.peakRssMb;
}

describe('bundle bombs are refused before writing, with bounded memory', () => {
  it('a 0.5 MB bundle whose binary (manifest and header agreeing) unpacks to 512 MB', async () => {
    const file = path.join(dir, 'bomb-512m.tar.gz');
    await craftBombTarGz(file, leadingMembers(512 * MB), {
      name: `${ROOT}/${rel}/kubeadm`,
      size: 512 * MB,
      head: fakeElf('amd64', 'h', 4096),
    });
    const rss = expectRefusedSmall(
      file,
      /member ".*kubeadm" would make it unpack to more than \d+ bytes \(over 20 times its compressed size\)/,
    );
    console.log(
      `bomb-512m: ${(fs.statSync(file).size / MB).toFixed(2)} MB on disk, verify peak RSS ${rss.toFixed(0)} MB`,
    );
  });

  it('a binary whose tar header says 512 MB and its manifest 4 KB', async () => {
    const file = path.join(dir, 'bomb-header.tar.gz');
    await craftBombTarGz(file, leadingMembers(4096), { name: `${ROOT}/${rel}/kubeadm`, size: 512 * MB });
    expectRefusedSmall(file, /member ".*kubeadm" is 536870912 bytes; its manifest says 4096/);
  });

  it('a binary before its manifest (nothing yet bounds it)', async () => {
    const file = path.join(dir, 'bomb-first.tar.gz');
    const [r, sums, manifest] = leadingMembers(40 * MB);
    await craftBombTarGz(file, [r!, sums!], { name: `${ROOT}/${rel}/kubeadm`, size: 40 * MB }, [manifest!]);
    expectRefusedSmall(file, /member ".*kubeadm" comes before its manifest.json/);
  });

  it('40 MB of zeros within the size bound: refused at its first 4 KB (not an ELF binary)', async () => {
    const file = path.join(dir, 'bomb-zeros.tar.gz');
    await craftBombTarGz(file, leadingMembers(40 * MB), { name: `${ROOT}/${rel}/kubeadm`, size: 40 * MB });
    expectRefusedSmall(file, /binaries\/.*\/kubeadm is not an ELF binary/);
  });

  it('a member not listed in SHA256SUMS, refused at its header', async () => {
    const file = path.join(dir, 'bomb-unlisted.tar.gz');
    const other = `binaries/${keyFor('other')}/linux-amd64/manifest.json`;
    await craftBombTarGz(file, leadingMembers(4096), { name: `${ROOT}/${other}`, size: 512 * MB });
    expectRefusedSmall(file, /member ".*manifest.json" is not listed in SHA256SUMS/);
  });

  it('512 MB of zeros after the end of the archive', async () => {
    const file = path.join(dir, 'bomb-trailing.tar.gz');
    const elf = fakeElf('amd64', 'tail', 8192);
    await craftTarGz(file, [
      ...leadingMembers(elf.length, sha(elf)),
      { name: `${ROOT}/${rel}/kubeadm`, data: elf, mode: 0o755 },
    ]);
    await expect(readBundle(file)).resolves.toBeDefined();
    // then zeros, which tar reads as empty blocks after the end of the archive
    const zeros = (await import('node:zlib')).gzipSync(Buffer.alloc(MB), { level: 9 });
    fs.writeFileSync(
      file,
      Buffer.concat([fs.readFileSync(file), ...Array.from({ length: 512 }, () => zeros)]),
    );
    expectRefusedSmall(file, /it unpacks to more than \d+ bytes/);
  });

  it('hundreds of 256 KB manifests (text kept in memory) stop at the text bound', async () => {
    const file = path.join(dir, 'bomb-text.tar.gz');
    const padded = manifestText + ' '.repeat(256 * 1024 - manifestText.length - 16);
    const keys = Array.from({ length: 200 }, (_, i) => keyFor(`t${i}`));
    const sums =
      [
        `${sha(readme.data as Buffer)}  README.txt`,
        ...keys.map((k) => `${sha(padded)}  binaries/${k}/linux-amd64/manifest.json`),
      ].join('\n') + '\n';
    await craftTarGz(file, [
      readme,
      { name: `${ROOT}/SHA256SUMS`, data: sums },
      ...keys.map((k) => ({ name: `${ROOT}/binaries/${k}/linux-amd64/manifest.json`, data: padded })),
    ]);
    // the text bound (32 MB) is what may be written here: a 48 MB tmpfs
    const rss = expectRefusedSmall(file, /its text members add up to more than 33554432 bytes/, '48m');
    console.log(`bomb-text: 200 x 256 KB manifests, verify peak RSS ${rss.toFixed(0)} MB`);
  });

  it('a sound bundle still verifies and imports (the bounds are not in its way)', async () => {
    const elf = fakeElf('amd64', 'sound', 300_000);
    const file = path.join(dir, 'sound.tar.gz');
    await craftTarGz(file, [
      ...leadingMembers(elf.length, sha(elf)),
      { name: `${ROOT}/${rel}/kubeadm`, data: elf, mode: 0o755 },
    ]);
    const c = await readBundle(file);
    expect(c.entries.map((e) => e.key)).toEqual([key]);
    const cache = path.join(dir, 'sound-cache');
    const before = listTree(dir).length;
    expect(runCliMeasured(['bundle', 'import', file, '--cache-dir', cache]).status).toBe(0);
    expect(listTree(dir).length).toBeGreaterThan(before);
  });
});
