import fs from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { machineMismatch, parseBinaryHeader, readBinaryHead } from '../../src/carry/cache/elf.js';
import { BinaryCache } from '../../src/carry/cache/store.js';
import { exportBundle, selectEntries } from '../../src/carry/bundle/export.js';
import { importBundle } from '../../src/carry/bundle/import.js';
import { goImage, skipDockerTests } from '../helpers/env.js';
import { keyFor, manifestInput, tempDir } from '../helpers/cache-fixtures.js';

// A real cross build on this amd64 host: Go in the local image builds a hello world for arm64
// and amd64; the header parser must tell them apart, and the cache and bundle must carry them.
const HELLO = 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hello") }\n';

async function tarOf(files: Record<string, string>): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, text] of Object.entries(files)) pack.entry({ name, mode: 0o644 }, text);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function fileFromArchive(stream: NodeJS.ReadableStream, dest: string): Promise<void> {
  const extract = tar.extract();
  stream.pipe(extract);
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    if (entry.header.type === 'file') fs.writeFileSync(dest, Buffer.concat(chunks), { mode: 0o755 });
  }
}

describe.skipIf(skipDockerTests)('cross-built binaries (real Docker, real Go)', () => {
  let dir: string;
  const bins: Record<string, string> = {};

  beforeAll(async () => {
    dir = tempDir('cache-elf');
    const docker = new Docker();
    await docker
      .getImage(goImage)
      .inspect()
      .catch(() => {
        throw new Error(`Go image ${goImage} missing: run 'sudo bash scripts/test-env.sh up' first`);
      });
    const container = await docker.createContainer({
      Image: goImage,
      Labels: { 'kubeadm-forever-test': '1' },
      Env: ['CGO_ENABLED=0', 'GOOS=linux', 'GO111MODULE=off', 'GOCACHE=/tmp/gocache'],
      Cmd: [
        'sh',
        '-c',
        'GOARCH=arm64 go build -o /tmp/hello-arm64 /src/main.go && GOARCH=amd64 go build -o /tmp/hello-amd64 /src/main.go',
      ],
    });
    try {
      await container.putArchive(await tarOf({ 'src/main.go': HELLO }), { path: '/' });
      await container.start();
      const { StatusCode } = (await container.wait()) as { StatusCode: number };
      if (StatusCode !== 0) {
        const logs = await container.logs({ stdout: true, stderr: true });
        throw new Error(`go build failed (${StatusCode}): ${logs.toString()}`);
      }
      for (const arch of ['arm64', 'amd64']) {
        bins[arch] = path.join(dir, `hello-${arch}`);
        await fileFromArchive(await container.getArchive({ path: `/tmp/hello-${arch}` }), bins[arch]!);
      }
    } finally {
      await container.remove({ force: true });
    }
  }, 300_000);

  afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('reads an aarch64 ELF (183) and an x86-64 ELF (62)', async () => {
    const arm = parseBinaryHeader(await readBinaryHead(bins.arm64!));
    const amd = parseBinaryHeader(await readBinaryHead(bins.amd64!));
    expect(arm).toMatchObject({ format: 'elf', machine: 183, bits: 64, goArch: 'arm64' });
    expect(amd).toMatchObject({ format: 'elf', machine: 62, bits: 64, goArch: 'amd64' });
    expect(machineMismatch(await readBinaryHead(bins.arm64!), { os: 'linux', arch: 'amd64' })).toMatch(
      /built for arm64/,
    );
  });

  it('caches each under its platform, refuses a swap, and carries both through a bundle', async () => {
    const cache = new BinaryCache(path.join(dir, 'cache'));
    const key = keyFor('hello');
    await expect(cache.store(manifestInput(key, 'linux/amd64'), bins.arm64!)).rejects.toThrow(
      /built for arm64 .*expected amd64/,
    );
    await cache.store(manifestInput(key, 'linux/arm64'), bins.arm64!);
    await cache.store(manifestInput(key, 'linux/amd64'), bins.amd64!);
    const bundle = path.join(dir, 'b.tar.gz');
    await exportBundle((await selectEntries(cache, {})).entries, bundle, '0.1.0');
    const inside = new BinaryCache(path.join(dir, 'inside'));
    const r = await importBundle(bundle, inside, { force: false });
    expect(r.entries.map((e) => e.platform)).toEqual(['linux/amd64', 'linux/arm64']);
    const armHit = await inside.lookup(key, { os: 'linux', arch: 'arm64' });
    expect(armHit.kind).toBe('hit');
    if (armHit.kind === 'hit')
      expect(parseBinaryHeader(await readBinaryHead(armHit.entry.binary))?.machine).toBe(183);
  });
});
