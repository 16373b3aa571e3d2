import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256File, sha256FileSync } from '../../src/adapters/fs.js';
import { isProcessAlive } from '../../src/adapters/process.js';
import { sha256Hex } from '../../src/core/digest.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-digest-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('sha256: one digest for bytes, text and files', () => {
  it('gives the known digests', () => {
    expect(sha256Hex('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256Hex(Buffer.from('abc'))).toBe(sha256Hex('abc'));
  });

  it('hashes a file larger than one read piece the same streamed, read in pieces, and in memory', async () => {
    const file = path.join(dir, 'big');
    const data = Buffer.alloc(3 * (1 << 20) + 12345);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 11)) & 0xff;
    fs.writeFileSync(file, data);
    const want = sha256Hex(data);
    expect(await sha256File(file)).toBe(want);
    expect(sha256FileSync(file)).toBe(want);
  });

  it('throws the OS error, with its code and the path', async () => {
    const missing = path.join(dir, 'missing');
    await expect(sha256File(missing)).rejects.toMatchObject({ code: 'ENOENT', path: missing });
    expect(() => sha256FileSync(missing)).toThrow(expect.objectContaining({ code: 'ENOENT', path: missing }));
  });
});

describe('isProcessAlive', () => {
  it('is true for this process and for one of another user (EPERM), false for one that exited', () => {
    expect(isProcessAlive(process.pid)).toBe(true);
    expect(isProcessAlive(1)).toBe(true); // init: exists, maybe another user's
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    const gone = Number(child.stdout.toString());
    expect(gone).toBeGreaterThan(0);
    expect(isProcessAlive(gone)).toBe(false);
  });
});
