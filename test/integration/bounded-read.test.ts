import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readBoundedFile, READ_LIMITS } from '../../src/adapters/bounded-read.js';
import { tempDirs } from './pki-support.js';

// The one reader of untrusted node files: what it refuses, before reading, and how fast.

const { tmp, cleanup } = tempDirs();
const servers: net.Server[] = [];
afterAll(() => {
  for (const s of servers) s.close();
  cleanup();
});

function mkfifo(file: string): void {
  execFileSync('mkfifo', [file]);
}

/** A unix socket at `file`, listening for as long as the tests run. */
async function socketAt(file: string): Promise<void> {
  const server = net.createServer();
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(file, resolve));
}

describe('readBoundedFile', () => {
  it('refuses FIFOs, sockets, devices and links to them before reading, quickly', async () => {
    const dir = tmp('bounded');
    mkfifo(path.join(dir, 'fifo.crt'));
    fs.symlinkSync(path.join(dir, 'fifo.crt'), path.join(dir, 'link-to-fifo.crt'));
    fs.symlinkSync('/dev/zero', path.join(dir, 'zero.crt'));
    execFileSync('mknod', [path.join(dir, 'null.crt'), 'c', '1', '3']); // root in the test machine
    await socketAt(path.join(dir, 'sock.crt'));
    fs.mkdirSync(path.join(dir, 'dir.crt'));
    const cases: [string, RegExp][] = [
      ['fifo.crt', /: a FIFO, not a regular file$/],
      ['link-to-fifo.crt', /: a FIFO, not a regular file$/],
      ['zero.crt', /: a character device, not a regular file$/],
      ['null.crt', /: a character device, not a regular file$/],
      ['sock.crt', /: a socket, not a regular file$/],
      ['dir.crt', /: a directory, not a regular file$/],
    ];
    for (const [name, reason] of cases) {
      const started = Date.now();
      const file = path.join(dir, name);
      expect(() => readBoundedFile(file, 'certificate')).toThrow(reason);
      expect(() => readBoundedFile(file, 'certificate')).toThrow(`cannot read certificate ${file}:`);
      expect(Date.now() - started).toBeLessThan(1000);
    }
  });

  it('refuses a file over its kind limit by its size, before reading (a sparse gigabyte costs nothing)', () => {
    const dir = tmp('bounded-size');
    const sparse = path.join(dir, 'sparse.crt');
    execFileSync('truncate', ['-s', '1G', sparse]);
    const before = process.memoryUsage().rss;
    const started = Date.now();
    expect(() => readBoundedFile(sparse, 'certificate')).toThrow(
      `cannot read certificate ${sparse}: 1024.0 MiB, over the limit of 1.0 MiB`,
    );
    expect(Date.now() - started).toBeLessThan(1000);
    expect(process.memoryUsage().rss - before).toBeLessThan(32 * 1024 * 1024);
    // the limits: exactly at the limit is read, one byte over is not
    const at = path.join(dir, 'at.conf');
    fs.writeFileSync(at, Buffer.alloc(READ_LIMITS.kubeconfig, 0x61));
    expect(readBoundedFile(at, 'kubeconfig').length).toBe(READ_LIMITS.kubeconfig);
    fs.appendFileSync(at, 'b');
    expect(() => readBoundedFile(at, 'kubeconfig')).toThrow(/4\.0 MiB, over the limit of 4\.0 MiB/);
  });

  it('caps the read itself: a file with more bytes than fstat said (a /proc file says 0) stops at the limit', () => {
    // /proc/self/status is a regular file of size 0 holding about a kilobyte: what a file
    // growing between fstat and read looks like
    expect(fs.statSync('/proc/self/status').size).toBe(0);
    expect(() => readBoundedFile('/proc/self/status', 'certificate', { maxBytes: 100 })).toThrow(
      'cannot read certificate /proc/self/status: grew past the limit of 100 bytes while read',
    );
    expect(readBoundedFile('/proc/self/status', 'certificate').toString()).toMatch(/^Name:/);
  });

  it('follows links unless told not to, and reads regular files whole', () => {
    const dir = tmp('bounded-link');
    fs.writeFileSync(path.join(dir, 'real.pem'), 'hello\n');
    fs.symlinkSync('real.pem', path.join(dir, 'link.pem'));
    expect(readBoundedFile(path.join(dir, 'link.pem'), 'certificate').toString()).toBe('hello\n');
    expect(() => readBoundedFile(path.join(dir, 'link.pem'), 'certificate', { noFollow: true })).toThrow(
      /: a symbolic link, not a regular file$/,
    );
    expect(() => readBoundedFile(path.join(dir, 'missing.pem'), 'key')).toThrow(
      /^cannot read private key .*missing\.pem: ENOENT/,
    );
  });
});
