import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { packDirectory, takeOneFile } from '../../src/adapters/archive.js';
import { discardBinary, extractBinary, goVersionOf, placeBinary } from '../../src/build/extract.js';

// tar streams against the system tar as the independent reader/writer.

let work: string;
beforeEach(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-archive-'));
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

function tree(): string {
  const dir = path.join(work, 'tree');
  fs.mkdirSync(path.join(dir, 'staging/src/k8s.io/client-go'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'vendor/k8s.io'), { recursive: true });
  fs.mkdirSync(path.join(dir, '.git'));
  fs.writeFileSync(path.join(dir, '.git/HEAD'), 'ref');
  fs.writeFileSync(path.join(dir, 'staging/src/k8s.io/client-go/cert.go'), 'original\n');
  fs.writeFileSync(path.join(dir, 'main.go'), 'package main\n', { mode: 0o644 });
  fs.symlinkSync('../../staging/src/k8s.io/client-go', path.join(dir, 'vendor/k8s.io/client-go'));
  return dir;
}

async function toFile(stream: NodeJS.ReadableStream, file: string) {
  await new Promise<void>((resolve, reject) => {
    const ws = fs.createWriteStream(file);
    stream.pipe(ws);
    ws.on('finish', () => resolve());
    stream.on('error', reject);
  });
}

describe('packDirectory', () => {
  it('streams the tree under a prefix with patched contents overlaid, symlinks kept, .git left out, the source untouched', async () => {
    const dir = tree();
    const tar = path.join(work, 'out.tar');
    await toFile(
      packDirectory(dir, {
        prefix: 'go/src/k8s.io/kubernetes',
        overrides: new Map([['staging/src/k8s.io/client-go/cert.go', 'patched, longer\n']]),
        exclude: ['.git'],
        extraDirs: ['out/bin'],
      }),
      tar,
    );
    const x = path.join(work, 'x');
    fs.mkdirSync(x);
    execFileSync('tar', ['-xf', tar, '-C', x]);
    const root = path.join(x, 'go/src/k8s.io/kubernetes');
    expect(fs.readFileSync(path.join(root, 'staging/src/k8s.io/client-go/cert.go'), 'utf8')).toBe(
      'patched, longer\n',
    );
    expect(fs.readFileSync(path.join(root, 'vendor/k8s.io/client-go/cert.go'), 'utf8')).toBe(
      'patched, longer\n',
    );
    expect(fs.readlinkSync(path.join(root, 'vendor/k8s.io/client-go'))).toBe(
      '../../staging/src/k8s.io/client-go',
    );
    expect(fs.existsSync(path.join(root, '.git'))).toBe(false);
    expect(fs.statSync(path.join(x, 'out/bin')).isDirectory()).toBe(true);
    expect(fs.readFileSync(path.join(dir, 'staging/src/k8s.io/client-go/cert.go'), 'utf8')).toBe(
      'original\n',
    );
  });
});

describe('takeOneFile and extractBinary', () => {
  function archiveOf(files: Record<string, string>): string {
    const src = path.join(work, 'a');
    for (const [name, content] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(src, name)), { recursive: true });
      fs.writeFileSync(path.join(src, name), content);
    }
    const tar = path.join(work, 'a.tar');
    execFileSync('tar', ['-cf', tar, '-C', src, '.']);
    return tar;
  }

  it('takes exactly the named file out of a stream', async () => {
    const tar = archiveOf({ 'other/kubeadm.txt': 'no', 'kubeadm-linux-amd64': 'the binary', zzz: 'after' });
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (c: Buffer) => chunks.push(c));
    const size = await takeOneFile(fs.createReadStream(tar), 'kubeadm-linux-amd64', sink);
    expect(size).toBe(10);
    expect(Buffer.concat(chunks).toString()).toBe('the binary');
  });

  it('writes to a temp name, 0755, sha256, and only placeBinary puts it at --out', async () => {
    const tar = archiveOf({ 'kubeadm-linux-amd64': 'the binary' });
    const out = path.join(work, 'kubeadm-custom');
    const bin = await extractBinary(fs.createReadStream(tar), 'kubeadm-linux-amd64', out);
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.statSync(bin.tempPath).mode & 0o777).toBe(0o755);
    expect(bin.sha256).toBe(execFileSync('sha256sum', [bin.tempPath], { encoding: 'utf8' }).split(' ')[0]);
    placeBinary(bin);
    discardBinary(bin);
    expect(fs.readFileSync(out, 'utf8')).toBe('the binary');
    expect(fs.readdirSync(work).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });

  it('fails, leaving nothing behind, when the archive lacks the file', async () => {
    const tar = archiveOf({ 'something-else': 'x' });
    const out = path.join(work, 'kubeadm-custom');
    await expect(extractBinary(fs.createReadStream(tar), 'kubeadm-linux-amd64', out)).rejects.toMatchObject({
      name: 'KfError',
    });
    expect(
      fs.readdirSync(work).filter((n) => n.startsWith('.kubeadm-custom') || n === 'kubeadm-custom'),
    ).toEqual([]);
  });

  it('reads the Go version from build info, "" for a non-Go file', () => {
    const f = path.join(work, 'notgo');
    fs.writeFileSync(f, 'hello');
    expect(goVersionOf(f)).toBe('');
    expect(goVersionOf('/usr/lib/go-1.19/bin/go')).toMatch(/^go1\.19/);
  });
});
