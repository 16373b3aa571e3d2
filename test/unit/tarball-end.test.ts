import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { indexTarball, TARBALL_LIMITS } from '../../src/adapters/tarball-tree.js';
import { KfError } from '../../src/core/errors.js';

// Reading a source tarball stops at the end of its tar archive: unpacked data no entry accounts
// for (zero padding after the end blocks, a gzip of zeros) is refused after a bounded count,
// never unpacked to its end. The bombs here are gzip members repeated: gigabytes unpacked from
// a few megabytes, built in milliseconds.

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-tar-end-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A real tar (GNU tar, its default 10 KiB records) of a tiny tree, uncompressed. */
function smallTar(extraArgs: string[] = []): Buffer {
  const src = fs.mkdtempSync(path.join(dir, 'src-'));
  fs.mkdirSync(path.join(src, 'kubernetes/cmd'), { recursive: true });
  fs.writeFileSync(path.join(src, 'kubernetes/cmd/main.go'), 'package main\n\nfunc main() {}\n');
  return execFileSync('tar', ['-c', ...extraArgs, '-C', src, 'kubernetes']);
}

/** `copies` gzip members of 64 MiB of zeros each (one member compressed once, repeated). */
function zeroMembers(copies: number): Buffer {
  const member = zlib.gzipSync(Buffer.alloc(64 << 20), { level: 9 });
  return Buffer.concat(Array.from({ length: copies }, () => member));
}

async function indexed(file: string): Promise<{ err?: KfError; read: number; size: number; ms: number }> {
  let read = 0;
  const t0 = Date.now();
  try {
    await indexTarball(file, { onProgress: (bytes) => (read = bytes) });
    return { read, size: fs.statSync(file).size, ms: Date.now() - t0 };
  } catch (err) {
    return { err: err as KfError, read, size: fs.statSync(file).size, ms: Date.now() - t0 };
  }
}

describe('the end of a source tarball', () => {
  it('refuses 4 GiB of gzip padding after the archive having read a fraction of the file', async () => {
    const file = path.join(dir, 'padded.tar.gz');
    fs.writeFileSync(file, Buffer.concat([zlib.gzipSync(smallTar()), zeroMembers(64)]));
    const r = await indexed(file);
    expect(r.err).toBeInstanceOf(KfError);
    expect(r.err!.what).toBe(
      `source tarball ${file} is refused: it has more than ${TARBALL_LIMITS.trailer >> 20} MiB of data after the end of its tar archive`,
    );
    // 64 members of ~64 KiB: the read stopped within the first few of them
    expect(r.read).toBeLessThan(r.size / 8);
    expect(r.ms).toBeLessThan(10_000);
  });

  it('says that a gzip of zeros, or of anything else, is not a tar archive', async () => {
    const zeros = path.join(dir, 'zeros.gz');
    fs.writeFileSync(zeros, zlib.gzipSync(Buffer.alloc(10 << 20)));
    const z = await indexed(zeros);
    expect(z.err?.what).toBe(
      `source tarball ${zeros} is gzip but not a tar archive (no tar entry in its first ${TARBALL_LIMITS.trailer >> 20} MiB)`,
    );
    const random = path.join(dir, 'random.gz');
    fs.writeFileSync(random, zlib.gzipSync(crypto.randomBytes(64 << 10)));
    const r = await indexed(random);
    expect(r.err?.what).toBe(
      `source tarball ${random} is gzip but not a tar archive (its first block is not a tar header)`,
    );
    const plainZeros = path.join(dir, 'zeros.tar');
    fs.writeFileSync(plainZeros, Buffer.alloc(8 << 20));
    expect((await indexed(plainZeros)).err?.what).toMatch(/ is not a tar archive \(no tar entry/);
  });

  it('still reads real tarballs with tar record padding (10 KiB, and 1 MiB with -b 2048)', async () => {
    for (const [name, args] of [
      ['default.tar.gz', []],
      ['b2048.tar.gz', ['-b', '2048']],
    ] as const) {
      const file = path.join(dir, name);
      fs.writeFileSync(file, zlib.gzipSync(smallTar([...args])));
      const r = await indexed(file);
      expect(r.err, name).toBeUndefined();
    }
  });
});
