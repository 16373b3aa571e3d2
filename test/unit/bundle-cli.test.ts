import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BinaryCache } from '../../src/carry/cache/store.js';
import {
  formatBundleImportResult,
  runBundleExport,
  runBundleImport,
  runBundleVerify,
  type BundleExportInput,
} from '../../src/commands/bundle.js';
import { formatCachePathResult, runCacheLs, runCachePath } from '../../src/commands/cache.js';
import { captureIo, expectFailure } from '../helpers/command-io.js';
import { keyFor, listTree, manifestInput, tempDir, writeFakeElf } from '../helpers/cache-fixtures.js';
import { craftTarGz, readTarGz } from '../helpers/tar-craft.js';

let dir: string;
let outsideDir: string;
let bundle: string;
const lsShas = async (cacheDir: string) =>
  (await runCacheLs({ cacheDir }, captureIo())).map((r) => `${r.key} ${r.platform} ${r.sha256}`).sort();
const exportTo = (out: string, more: Partial<BundleExportInput> = {}) =>
  runBundleExport({ cacheDir: outsideDir, out, tool: true, ...more }, captureIo());
const importInto = (file: string, cacheDir: string, force = false) =>
  runBundleImport({ file, cacheDir, force }, captureIo());

beforeAll(async () => {
  dir = tempDir('bundle-cli');
  outsideDir = path.join(dir, 'outside');
  const cache = new BinaryCache(outsideDir);
  await cache.store(manifestInput(keyFor('b1'), 'linux/amd64'), writeFakeElf(dir, 'amd64', 'b1', 50_000));
  await cache.store(manifestInput(keyFor('b1'), 'linux/arm64'), writeFakeElf(dir, 'arm64', 'b1', 50_000));
  await cache.store(
    manifestInput(keyFor('b2'), 'linux/amd64', { gitVersion: 'v1.24.15' }),
    writeFakeElf(dir, 'amd64', 'b2'),
  );
  bundle = path.join(dir, 'kubeadm-bundle.tar.gz');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('bundle commands', () => {
  it('export -> verify -> import into an empty cache dir: the same cache ls sha256s', async () => {
    const io = captureIo();
    const doc = await runBundleExport(
      { cacheDir: outsideDir, out: bundle, version: 'v1.20.2', tool: false },
      io,
    );
    expect(io.told()).toBe('');
    expect(doc.out).toBe(bundle);
    expect(doc.entries).toHaveLength(2); // v1.24.15 is not selected

    expect(await runBundleVerify({ file: bundle }, captureIo())).toMatchObject({ ok: true, files: 6 });

    const insideDir = path.join(dir, 'inside');
    const im = await importInto(bundle, insideDir);
    expect(Array.isArray(im) && im.map((e) => e.status)).toEqual(['imported', 'imported']);
    const outsideShas = (await lsShas(outsideDir)).filter((l) => !l.startsWith(keyFor('b2')));
    expect(await lsShas(insideDir)).toEqual(outsideShas);
    expect(outsideShas).toHaveLength(2);

    const againIo = captureIo();
    const again = await runBundleImport({ file: bundle, cacheDir: insideDir, force: false }, againIo);
    expect(formatBundleImportResult(again)).toMatch(/^kept: /m);
    expect(againIo.told()).toMatch(/--force replaces it/);
  }, 120_000);

  it('a tampered or hostile bundle: verify and import exit 1 with two lines, nothing written', async () => {
    if (!fs.existsSync(bundle)) await exportTo(bundle, { tool: false });
    const members = await readTarGz(bundle);
    const bin = members.find((m) => m.name.endsWith('/kubeadm'))!;
    const data = bin.data as Buffer;
    const tampered = path.join(dir, 'tampered.tar.gz');
    await craftTarGz(
      tampered,
      members.map((m) =>
        m === bin
          ? {
              ...m,
              data: Buffer.concat([data.subarray(0, 100), Buffer.from([data[100]! ^ 1]), data.subarray(101)]),
            }
          : m,
      ),
    );
    const hostile = path.join(dir, 'hostile.tar.gz');
    await craftTarGz(hostile, [
      ...members,
      { name: 'kubeadm-forever-bundle/x', type: 'symlink', linkname: '/etc/shadow' },
    ]);
    for (const [file, reason] of [
      [tampered, /sha256 [0-9a-f]{64} differs from SHA256SUMS/],
      [hostile, /is a symlink to "\/etc\/shadow"/],
    ] as const) {
      const target = path.join(dir, 'target');
      for (const attempt of [runBundleVerify({ file }, captureIo()), importInto(file, target, true)]) {
        const e = await expectFailure(attempt, 1, /^bundle .* is refused: /);
        expect(e.what).toMatch(reason);
      }
      expect(fs.existsSync(target)).toBe(false);
    }
  }, 120_000);

  it('usage errors and an empty selection', async () => {
    const before = listTree(dir);
    await expectFailure(exportTo(path.join(dir, 'x.tar.gz'), { version: '1.20' }), 2, /is not vX.Y.Z/);
    await expectFailure(exportTo(dir), 2, /--out/);
    await expectFailure(
      exportTo(path.join(dir, 'x.tar.gz'), { version: 'v1.99.0' }),
      1,
      /^no cached binaries match v1.99.0 /,
    );
    await expectFailure(
      runBundleVerify({ file: path.join(dir, 'nope.tar.gz') }, captureIo()),
      2,
      /no such file/,
    );
    expect(listTree(dir)).toEqual(before);
  }, 120_000);

  it("carries the tool's executables: absent is a two-line error naming the fix; --tool-dir; import installs them", async () => {
    const out = path.join(dir, 'with-tool.tar.gz');
    const absent = await expectFailure(
      exportTo(out, { version: 'v1.20.2' }),
      1,
      /^the bundle would carry the tool for linux\/amd64, but .*\/tool\/linux-amd64\/kubeadm-forever is missing$/,
    );
    expect(absent.next).toMatch(/^run 'npm run dist' .*--tool-dir .*--no-tool$/);
    expect(fs.existsSync(out)).toBe(false);

    const toolDir = path.join(dir, 'dist-bin');
    fs.mkdirSync(toolDir);
    const shas: Record<string, string> = {};
    for (const arch of ['amd64', 'arm64']) {
      const file = path.join(toolDir, `kubeadm-forever-linux-${arch}`);
      fs.renameSync(writeFakeElf(dir, arch, `tool-${arch}`, 70_000), file);
      shas[`linux/${arch}`] = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
    }
    // the wrong machine under a platform's name is refused
    fs.copyFileSync(path.join(toolDir, 'kubeadm-forever-linux-amd64'), path.join(dir, 'swap'));
    fs.copyFileSync(
      path.join(toolDir, 'kubeadm-forever-linux-arm64'),
      path.join(toolDir, 'kubeadm-forever-linux-amd64'),
    );
    await expectFailure(
      exportTo(out, { version: 'v1.20.2', toolDir }),
      1,
      /^the bundle would carry the tool for linux\/amd64, but .* is /,
    );
    fs.renameSync(path.join(dir, 'swap'), path.join(toolDir, 'kubeadm-forever-linux-amd64'));

    const doc = await exportTo(out, { version: 'v1.20.2', toolDir });
    expect(doc.tools).toEqual([
      { platform: 'linux/amd64', sha256: shas['linux/amd64'], size: 70_000 },
      { platform: 'linux/arm64', sha256: shas['linux/arm64'], size: 70_000 },
    ]);
    const v = await runBundleVerify({ file: out }, captureIo());
    expect(v.tools).toHaveLength(2);
    expect(v.files).toBe(8);

    const inside = path.join(dir, 'inside-tool');
    const im = await importInto(out, inside);
    if (Array.isArray(im)) throw new Error('a bundle with tool executables imports as { entries, tools }');
    const imported = im.tools;
    expect(imported.map((t) => [t.platform, t.status])).toEqual([
      ['linux/amd64', 'imported'],
      ['linux/arm64', 'imported'],
    ]);
    for (const t of imported) {
      const p = await runCachePath({ cacheDir: inside, key: 'tool', platform: [t.platform] }, captureIo());
      expect(formatCachePathResult(p)).toBe(t.path);
      expect(crypto.createHash('sha256').update(fs.readFileSync(t.path)).digest('hex')).toBe(
        shas[t.platform],
      );
      expect(fs.statSync(t.path).mode & 0o777).toBe(0o755);
    }
    expect(formatBundleImportResult(await importInto(out, inside))).toMatch(/^kept: tool linux\/amd64 /m);
    const none = await expectFailure(
      runCachePath(
        { cacheDir: path.join(dir, 'empty'), key: 'tool', platform: ['linux/amd64'] },
        captureIo(),
      ),
      1,
      /^no executable of the tool for linux\/amd64: /,
    );
    expect(none.next).toMatch(/bundle import/);
  }, 120_000);
});
