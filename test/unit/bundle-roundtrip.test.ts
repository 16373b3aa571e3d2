import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { exportBundle, selectEntries } from '../../src/carry/bundle/export.js';
import { importBundle } from '../../src/carry/bundle/import.js';
import { readBundle } from '../../src/carry/bundle/read.js';
import { BinaryCache } from '../../src/carry/cache/store.js';
import { keyFor, listTree, manifestInput, tempDir, writeFakeElf } from '../helpers/cache-fixtures.js';
import { craftTarGz, readTarGz } from '../helpers/tar-craft.js';

const sha = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

let dir: string;
let outside: BinaryCache;
let bundle: string;
const shas = async (c: BinaryCache) =>
  (await c.list()).entries.map((e) => `${e.manifest.key} ${e.manifest.platform} ${e.manifest.sha256}`);

beforeEach(async () => {
  dir = tempDir('bundle');
  outside = new BinaryCache(path.join(dir, 'outside'));
  await outside.store(manifestInput(keyFor('1'), 'linux/amd64'), writeFakeElf(dir, 'amd64', '1', 100_000));
  await outside.store(manifestInput(keyFor('1'), 'linux/arm64'), writeFakeElf(dir, 'arm64', '1', 90_000));
  await outside.store(
    manifestInput(keyFor('2'), 'linux/amd64', { gitVersion: 'v1.24.15' }),
    writeFakeElf(dir, 'amd64', '2'),
  );
  bundle = path.join(dir, 'bundle.tar.gz');
  await exportBundle((await selectEntries(outside, {})).entries, bundle, '0.1.0');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('bundle round trip', () => {
  it('export -> verify -> import into an empty cache reproduces the same sha256s', async () => {
    const verified = await readBundle(bundle);
    expect(verified.entries).toHaveLength(3);
    expect(verified.files).toBe(8); // README, SHA256SUMS, 3 x (binary + manifest)
    expect(verified.readme).toMatch(/sha256sum -c SHA256SUMS/);
    expect(verified.readme).toMatch(/certs renew all/);
    // the node procedure in its order: ca extend, renew, check
    expect(verified.readme).toMatch(/ca extend --pki-dir[\s\S]+renew --kubeadm[\s\S]+check --min-years 150/);
    expect(verified.readme).toMatch(/1\.31 and later/);

    const inside = new BinaryCache(path.join(dir, 'inside'));
    const r = await importBundle(bundle, inside, { force: false });
    expect(r.entries.map((e) => e.status)).toEqual(['imported', 'imported', 'imported']);
    expect(await shas(inside)).toEqual(await shas(outside));
    expect((await shas(inside)).length).toBe(3);
    for (const e of (await inside.list()).entries) {
      expect(
        (await inside.lookup(e.manifest.key, { os: 'linux', arch: e.manifest.platform.split('/')[1]! })).kind,
      ).toBe('hit');
      expect(fs.statSync(e.binary).mode & 0o777).toBe(0o755);
    }
    // no staging dir, lock or temp file left behind
    expect(listTree(inside.root).filter((n) => n.startsWith('.'))).toEqual([]);
    expect(listTree(inside.locksDir)).toEqual([]);

    // again: kept unless --force
    const again = await importBundle(bundle, inside, { force: false });
    expect(again.entries.map((e) => e.status)).toEqual(['kept', 'kept', 'kept']);
    const forced = await importBundle(bundle, inside, { force: true });
    expect(forced.entries.map((e) => e.status)).toEqual(['replaced', 'replaced', 'replaced']);
    expect(await shas(inside)).toEqual(await shas(outside));
  });

  it('a corrupt existing entry is replaced by an import even without --force', async () => {
    const inside = new BinaryCache(path.join(dir, 'inside'));
    await importBundle(bundle, inside, { force: false });
    const victim = (await inside.list()).entries[0]!;
    fs.appendFileSync(victim.binary, 'x');
    const r = await importBundle(bundle, inside, { force: false });
    expect(r.entries[0]!.status).toBe('replaced');
    expect(sha(victim.binary)).toBe(victim.manifest.sha256);
  });

  it('is checkable without the tool: tar -x and sha256sum -c', () => {
    const x = path.join(dir, 'x');
    fs.mkdirSync(x);
    execFileSync('tar', ['-xzf', bundle, '-C', x]);
    const out = execFileSync('sha256sum', ['-c', 'SHA256SUMS'], {
      cwd: path.join(x, 'kubeadm-forever-bundle'),
      encoding: 'utf8',
    });
    expect(out.trim().split('\n')).toHaveLength(7);
    expect(out).not.toMatch(/FAILED/);
  });

  it('is byte-for-byte reproducible from the same entries', async () => {
    const again = path.join(dir, 'again.tar.gz');
    await exportBundle((await selectEntries(outside, {})).entries, again, '0.1.0');
    expect(sha(again)).toBe(sha(bundle));
  });

  it('selects by version and platform, and never ships a corrupt entry', async () => {
    const sel = await selectEntries(outside, {
      version: 'v1.20.2',
      platforms: [{ os: 'linux', arch: 'arm64' }],
    });
    expect(sel.entries.map((e) => e.manifest.platform)).toEqual(['linux/arm64']);
    fs.appendFileSync(sel.entries[0]!.binary, 'x');
    const again = await selectEntries(outside, {
      version: 'v1.20.2',
      platforms: [{ os: 'linux', arch: 'arm64' }],
    });
    expect(again.entries).toEqual([]);
    expect(again.corrupt[0]).toMatch(/size .* differs/);
  });
});

describe('tampered bundles are refused by verify and import, writing nothing', () => {
  async function expectRefused(file: string, reason: RegExp) {
    await expect(readBundle(file)).rejects.toThrow(reason);
    const inside = new BinaryCache(path.join(dir, 'inside'));
    await expect(importBundle(file, inside, { force: false })).rejects.toThrow(reason);
    expect(fs.existsSync(inside.cacheDir)).toBe(false);
  }

  it('one byte changed inside a binary', async () => {
    const members = await readTarGz(bundle);
    const bin = members.find((m) => m.name.endsWith('/linux-arm64/kubeadm'))!;
    (bin.data as Buffer).writeUInt8((bin.data as Buffer).readUInt8(5000) ^ 1, 5000);
    const file = path.join(dir, 'tampered.tar.gz');
    await craftTarGz(file, members);
    await expectRefused(file, /linux-arm64\/kubeadm: sha256 [0-9a-f]{64} differs from SHA256SUMS/);
  });

  it('a binary swapped together with its SHA256SUMS line (the manifest still disagrees)', async () => {
    const members = await readTarGz(bundle);
    const bin = members.find((m) => m.name.endsWith('/linux-arm64/kubeadm'))!;
    const oldSha = crypto
      .createHash('sha256')
      .update(bin.data as Buffer)
      .digest('hex');
    (bin.data as Buffer).writeUInt8((bin.data as Buffer).readUInt8(5000) ^ 1, 5000);
    const newSha = crypto
      .createHash('sha256')
      .update(bin.data as Buffer)
      .digest('hex');
    const sums = members.find((m) => m.name.endsWith('/SHA256SUMS'))!;
    sums.data = (sums.data as Buffer).toString().replace(oldSha, newSha);
    const file = path.join(dir, 'swapped.tar.gz');
    await craftTarGz(file, members);
    await expectRefused(file, /kubeadm: sha256 [0-9a-f]{64} differs from its manifest's/);
  });

  it('one byte changed in the compressed file', async () => {
    const bytes = fs.readFileSync(bundle);
    const mid = Math.floor(bytes.length / 2);
    bytes.writeUInt8(bytes.readUInt8(mid) ^ 1, mid);
    const file = path.join(dir, 'flipped.tar.gz');
    fs.writeFileSync(file, bytes);
    await expectRefused(file, /not a readable tar.gz|differs/);
  });

  it('a file missing from SHA256SUMS, or SHA256SUMS missing', async () => {
    const members = await readTarGz(bundle);
    const sums = members.find((m) => m.name.endsWith('/SHA256SUMS'))!;
    sums.data = (sums.data as Buffer)
      .toString()
      .split('\n')
      .filter((l) => !l.endsWith('README.txt'))
      .join('\n');
    const file = path.join(dir, 'unlisted.tar.gz');
    await craftTarGz(file, members);
    await expectRefused(file, /README.txt is not listed in SHA256SUMS/);
    await craftTarGz(
      file,
      members.filter((m) => m !== sums),
    );
    await expectRefused(file, /comes before SHA256SUMS \(missing or out of place/);
  });

  it('a binary of the wrong machine for its platform, consistently summed', async () => {
    const arm = new BinaryCache(path.join(dir, 'liar'));
    // store honestly as amd64, then relabel the manifest to arm64 and the directory to match
    const e = await arm.store(manifestInput(keyFor('3'), 'linux/amd64'), writeFakeElf(dir, 'amd64', '3'));
    const members = (await readTarGz(bundle)).filter((m) => !m.name.includes('/binaries/'));
    const manifest = fs
      .readFileSync(path.join(e.dir, 'manifest.json'), 'utf8')
      .replace('linux/amd64', 'linux/arm64');
    const rel = `binaries/${keyFor('3')}/linux-arm64`;
    const binData = fs.readFileSync(e.binary);
    const h = (b: Buffer | string) => crypto.createHash('sha256').update(b).digest('hex');
    const readme = members.find((m) => m.name.endsWith('README.txt'))!;
    const sums = members.find((m) => m.name.endsWith('SHA256SUMS'))!;
    sums.data = `${h(readme.data as Buffer)}  README.txt\n${h(binData)}  ${rel}/kubeadm\n${h(manifest)}  ${rel}/manifest.json\n`;
    const file = path.join(dir, 'liar.tar.gz');
    await craftTarGz(file, [
      readme,
      sums,
      { name: `kubeadm-forever-bundle/${rel}/manifest.json`, data: manifest },
      { name: `kubeadm-forever-bundle/${rel}/kubeadm`, data: binData, mode: 0o755 },
    ]);
    await expectRefused(file, /kubeadm is built for amd64 .*expected arm64/);
  });
});
