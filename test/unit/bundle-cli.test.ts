import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BinaryCache } from '../../src/carry/cache/store.js';
import { runCli } from '../helpers/env.js';
import { keyFor, listTree, manifestInput, tempDir, writeFakeElf } from '../helpers/cache-fixtures.js';
import { craftTarGz, readTarGz } from '../helpers/tar-craft.js';

let dir: string;
let outsideDir: string;
let bundle: string;
const lsShas = (cacheDir: string) =>
  (
    JSON.parse(runCli(['cache', 'ls', '--json', '--cache-dir', cacheDir]).stdout) as {
      key: string;
      platform: string;
      sha256: string;
    }[]
  )
    .map((r) => `${r.key} ${r.platform} ${r.sha256}`)
    .sort();

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
  it('export -> verify -> import into an empty cache dir: the same cache ls sha256s', () => {
    const ex = runCli([
      'bundle',
      'export',
      '--out',
      bundle,
      '--version',
      'v1.20.2',
      '--json',
      '--no-tool',
      '--cache-dir',
      outsideDir,
    ]);
    expect(ex.stderr).toBe('');
    expect(ex.status).toBe(0);
    const doc = JSON.parse(ex.stdout) as { out: string; sha256: string; entries: unknown[] };
    expect(doc.out).toBe(bundle);
    expect(doc.entries).toHaveLength(2); // v1.24.15 is not selected

    const v = runCli(['bundle', 'verify', bundle, '--json']);
    expect(v.status).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ ok: true, files: 6 });

    const insideDir = path.join(dir, 'inside');
    const im = runCli(['bundle', 'import', bundle, '--json', '--cache-dir', insideDir]);
    expect(im.status).toBe(0);
    expect((JSON.parse(im.stdout) as { status: string }[]).map((e) => e.status)).toEqual([
      'imported',
      'imported',
    ]);
    const outsideShas = lsShas(outsideDir).filter((l) => !l.startsWith(keyFor('b2')));
    expect(lsShas(insideDir)).toEqual(outsideShas);
    expect(outsideShas).toHaveLength(2);

    const again = runCli(['bundle', 'import', bundle, '--cache-dir', insideDir]);
    expect(again.status).toBe(0);
    expect(again.stdout).toMatch(/^kept: /m);
    expect(again.stderr).toMatch(/--force replaces it/);
  }, 120_000);

  it('a tampered or hostile bundle: verify and import exit 1 with two lines, nothing written', async () => {
    if (!fs.existsSync(bundle))
      runCli(['bundle', 'export', '--out', bundle, '--no-tool', '--cache-dir', outsideDir]);
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
      for (const args of [
        ['bundle', 'verify', file],
        ['bundle', 'import', file, '--cache-dir', target, '--force'],
      ]) {
        const r = runCli(args);
        expect(r.status).toBe(1);
        expect(r.stderr).toMatch(/^error: bundle .* is refused: .*\nnext: .*\n$/);
        expect(r.stderr).toMatch(reason);
        expect(r.stdout).toBe('');
      }
      expect(fs.existsSync(target)).toBe(false);
    }
  }, 120_000);

  it('usage errors and an empty selection', () => {
    const before = listTree(dir);
    expect(
      runCli([
        'bundle',
        'export',
        '--out',
        path.join(dir, 'x.tar.gz'),
        '--version',
        '1.20',
        '--cache-dir',
        outsideDir,
      ]).status,
    ).toBe(2);
    expect(runCli(['bundle', 'export', '--out', dir, '--cache-dir', outsideDir]).status).toBe(2);
    const none = runCli([
      'bundle',
      'export',
      '--out',
      path.join(dir, 'x.tar.gz'),
      '--version',
      'v1.99.0',
      '--cache-dir',
      outsideDir,
    ]);
    expect(none.status).toBe(1);
    expect(none.stderr).toMatch(/^error: no cached binaries match v1.99.0 .*\nnext: .*\n$/);
    const missing = runCli(['bundle', 'verify', path.join(dir, 'nope.tar.gz')]);
    expect(missing.status).toBe(2);
    expect(listTree(dir)).toEqual(before);
  }, 120_000);

  it("carries the tool's executables: absent is a two-line error naming the fix; --tool-dir; import installs them", () => {
    const out = path.join(dir, 'with-tool.tar.gz');
    const args = [
      'bundle',
      'export',
      '--out',
      out,
      '--version',
      'v1.20.2',
      '--json',
      '--cache-dir',
      outsideDir,
    ];
    const absent = runCli(args);
    expect(absent.status).toBe(1);
    expect(absent.stderr).toMatch(
      /^error: the bundle would carry the tool for linux\/amd64, but .*\/tool\/linux-amd64\/kubeadm-forever is missing\nnext: run 'npm run dist' .*--tool-dir .*--no-tool\n$/,
    );
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
    const wrong = runCli([...args, '--tool-dir', toolDir]);
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toMatch(
      /^error: the bundle would carry the tool for linux\/amd64, but .* is .*\nnext: /,
    );
    fs.renameSync(path.join(dir, 'swap'), path.join(toolDir, 'kubeadm-forever-linux-amd64'));

    const ex = runCli([...args, '--tool-dir', toolDir]);
    expect(ex.stderr).toBe('');
    expect(ex.status).toBe(0);
    const doc = JSON.parse(ex.stdout) as { tools: { platform: string; sha256: string }[] };
    expect(doc.tools).toEqual([
      { platform: 'linux/amd64', sha256: shas['linux/amd64'], size: 70_000 },
      { platform: 'linux/arm64', sha256: shas['linux/arm64'], size: 70_000 },
    ]);
    const v = JSON.parse(runCli(['bundle', 'verify', out, '--json']).stdout) as {
      tools: unknown[];
      files: number;
    };
    expect(v.tools).toHaveLength(2);
    expect(v.files).toBe(8);

    const inside = path.join(dir, 'inside-tool');
    const im = runCli(['bundle', 'import', out, '--json', '--cache-dir', inside]);
    expect(im.status).toBe(0);
    const imported = (
      JSON.parse(im.stdout) as { tools: { platform: string; status: string; path: string }[] }
    ).tools;
    expect(imported.map((t) => [t.platform, t.status])).toEqual([
      ['linux/amd64', 'imported'],
      ['linux/arm64', 'imported'],
    ]);
    for (const t of imported) {
      const p = runCli(['cache', 'path', 'tool', '--platform', t.platform, '--cache-dir', inside]);
      expect(p.status).toBe(0);
      expect(p.stdout).toBe(`${t.path}\n`);
      expect(crypto.createHash('sha256').update(fs.readFileSync(t.path)).digest('hex')).toBe(
        shas[t.platform],
      );
      expect(fs.statSync(t.path).mode & 0o777).toBe(0o755);
    }
    const again = runCli(['bundle', 'import', out, '--cache-dir', inside]);
    expect(again.stdout).toMatch(/^kept: tool linux\/amd64 /m);
    const none = runCli([
      'cache',
      'path',
      'tool',
      '--platform',
      'linux/amd64',
      '--cache-dir',
      path.join(dir, 'empty'),
    ]);
    expect(none.status).toBe(1);
    expect(none.stderr).toMatch(
      /^error: no executable of the tool for linux\/amd64: .*\nnext: .*bundle import/,
    );
  }, 120_000);
});
