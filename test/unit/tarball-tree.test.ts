import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import zlib from 'node:zlib';
import tarStream from 'tar-stream';
import { afterEach, describe, expect, it } from 'vitest';
import { indexTarball, packTarball } from '../../src/adapters/tarball-tree.js';
import { packageClosure, treePackageClosure } from '../../src/adapters/package-closure.js';
import { packSelection } from '../../src/adapters/archive.js';
import { selectionEntries } from '../../src/carry/cache/source-identity.js';
import { readTreeFacts } from '../../src/build/prepare.js';
import { composeShape } from '../helpers/fixtures.js';

// A source tarball read as a stream (adapters/tarball-tree.ts): it must read exactly as the
// directory it was made from, stream exactly what that directory's packer streams, and refuse
// what no Kubernetes tarball holds before anything is built.

const dirs: string[] = [];
function temp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-tgz-tree-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A .tar.gz of tar-stream entries, as a hostile tarball could be made. */
type Crafted = Partial<tarStream.Header> & { name: string; body?: string };
async function craft(file: string, entries: Crafted[]): Promise<string> {
  const pack = tarStream.pack();
  for (const { body, ...h } of entries) {
    if (body === undefined) pack.entry(h);
    else pack.entry(h, body);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    (pack as unknown as Readable)
      .pipe(zlib.createGzip())
      .pipe(
        new Writable({
          write(c, _e, cb) {
            chunks.push(c as Buffer);
            cb();
          },
        }),
      )
      .on('finish', resolve)
      .on('error', reject);
  });
  fs.writeFileSync(file, Buffer.concat(chunks));
  return file;
}

/** path → [type, mode, content or link target] of a tar stream, sorted. */
async function listing(tar: Readable): Promise<string[]> {
  const extract = tarStream.extract();
  tar.on('error', (err) => extract.destroy(err));
  tar.pipe(extract as unknown as Writable);
  const out: string[] = [];
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const c of entry as AsyncIterable<Buffer>) chunks.push(c);
    const h = entry.header;
    const what =
      h.type === 'symlink' ? h.linkname : h.type === 'file' ? Buffer.concat(chunks).toString() : '';
    out.push(`${h.name.replace(/\/$/, '')} ${h.type} ${h.uid}:${h.gid} ${JSON.stringify(what)}`);
  }
  return out.sort();
}

/** The gopath fixture shape and a .tar.gz of it with one top folder, as releases are packed. */
function packedShape(prepare?: (tree: string) => void) {
  const work = temp();
  const tree = composeShape('gopath', path.join(work, 'kubernetes'));
  prepare?.(tree);
  const tgz = path.join(work, 'k.tar.gz');
  execFileSync('tar', ['-czf', tgz, '-C', work, 'kubernetes']);
  return { work, tree, tgz };
}

describe('a source tarball read as a stream', () => {
  it('reads as the directory it was made from: facts, closure, filled entries, and the same stream', async () => {
    const { tree, tgz } = packedShape();
    const index = await indexTarball(tgz);
    expect(index.sha256).toBe(crypto.createHash('sha256').update(fs.readFileSync(tgz)).digest('hex'));
    expect(await readTreeFacts(index, { buildMode: true })).toEqual(
      await readTreeFacts(tree, { buildMode: true }),
    );
    const fromDir = packageClosure(tree, 'gopath', 'cmd/kubeadm');
    const fromTarball = treePackageClosure(index, 'gopath', 'cmd/kubeadm');
    expect(fromTarball).toEqual(fromDir);
    expect(fromDir.symlinks.length).toBeGreaterThan(0);
    // each folder lists each of its entries once, as the directory does
    for (const rel of ['', 'cmd', 'vendor/k8s.io'])
      expect(
        index
          .readdir(rel)
          .map((e) => e.name)
          .sort(),
      ).toEqual(fs.readdirSync(path.join(tree, rel)).sort());
    // the digests come from the pass; modes are the masked ones the volume gets
    const masked = selectionEntries(tree, fromDir).map((e) =>
      e.kind === 'file' ? { ...e, mode: e.mode & 0o755 } : e,
    );
    expect(selectionEntries(index, fromTarball)).toEqual(masked);
    const overrides = new Map([[fromDir.files.find((f) => f.endsWith('.go'))!, 'package patched\n']]);
    const opts = { prefix: 'go/src/k8s.io/kubernetes', overrides, extraDirs: ['tmp/out'] };
    expect(await listing(packTarball(index, { ...opts, selection: fromTarball }))).toEqual(
      await listing(packSelection(tree, fromDir, opts)),
    );
  });

  it('streams the whole tree but .git when no selection is given', async () => {
    const { tree, tgz } = packedShape((t) => {
      fs.mkdirSync(path.join(t, '.git'));
      fs.writeFileSync(path.join(t, '.git/HEAD'), 'x\n');
    });
    const all = await listing(packTarball(await indexTarball(tgz), { exclude: ['.git'] }));
    const files = execFileSync('find', ['.', '-path', './.git', '-prune', '-o', '-type', 'f', '-print'], {
      cwd: tree,
      encoding: 'utf8',
    })
      .split('\n')
      .filter(Boolean)
      .map((f) => f.slice(2));
    expect(
      all
        .filter((l) => / file /.test(l))
        .map((l) => l.split(' ')[0])
        .sort(),
    ).toEqual(files.sort());
    expect(all.some((l) => l.startsWith('.git'))).toBe(false);
    expect(all.every((l) => / 0:0 /.test(l))).toBe(true);
  });

  it('masks modes: no setuid, nothing group- or world-writable', async () => {
    const work = temp();
    const tgz = await craft(path.join(work, 'm.tar.gz'), [
      { name: 'k/', type: 'directory', mode: 0o777 },
      { name: 'k/cmd/kubeadm/', type: 'directory', mode: 0o777 },
      { name: 'k/cmd/kubeadm/run', type: 'file', mode: 0o6777, body: '#!/bin/sh\n' },
    ]);
    const index = await indexTarball(tgz);
    expect(index.lstat('cmd/kubeadm/run')?.mode).toBe(0o755);
    expect(index.lstat('cmd/kubeadm')?.mode).toBe(0o755);
    const extract = tarStream.extract();
    packTarball(index).pipe(extract as unknown as Writable);
    const modes: Record<string, number> = {};
    for await (const e of extract) {
      modes[e.header.name.replace(/\/$/, '')] = e.header.mode!;
      e.resume();
    }
    expect(modes).toEqual({ cmd: 0o755, 'cmd/kubeadm': 0o755, 'cmd/kubeadm/run': 0o755 });
  });

  it.each([
    ['a path that leaves the tree', [{ name: 'k/../../etc/passwd', body: 'x' }], /leaves the tree/],
    ['an absolute path', [{ name: '/etc/passwd', body: 'x' }], /is an absolute path/],
    [
      'a link out of the tree',
      [{ name: 'k/evil', type: 'symlink', linkname: '../../etc' }],
      /points outside the tree/,
    ],
    ['an absolute link', [{ name: 'k/evil', type: 'symlink', linkname: '/etc' }], /points outside the tree/],
    [
      'a hard link',
      [
        { name: 'k/a', body: 'x' },
        { name: 'k/b', type: 'link', linkname: 'k/a' },
      ],
      /is a hard link/,
    ],
    [
      'a device',
      [{ name: 'k/dev', type: 'character-device', devmajor: 1, devminor: 3 }],
      /is a character-device/,
    ],
    [
      'a path given twice',
      [
        { name: 'k/a', body: 'x' },
        { name: 'k/a', body: 'y' },
      ],
      /appears twice/,
    ],
    [
      'a folder over a file',
      [
        { name: 'k/a', body: 'x' },
        { name: 'k/a/', type: 'directory', mode: 0o755 },
      ],
      /"a" appears twice/,
    ],
    [
      'a file that holds a file',
      [
        { name: 'k/a', body: 'x' },
        { name: 'k/a/b', body: 'y' },
      ],
      /"a" is a file and holds "a\/b"/,
    ],
    [
      'a control character in a name',
      [{ name: 'k/\u001b[2Jx/../../y', body: 'x' }],
      /"k\/\\u001b\[2Jx\/\.\.\/\.\.\/y"/,
    ],
  ] as const)('refuses %s, naming it, with what to do', async (_what, entries, message) => {
    const work = temp();
    const tgz = await craft(
      path.join(work, 'bad.tar.gz'),
      entries.map((e) => ({ type: 'file', mode: 0o644, ...e }) as Crafted),
    );
    const err = await indexTarball(tgz).then(
      () => undefined,
      (e: unknown) => e as { what: string; next: string },
    );
    expect(err?.what).toMatch(message);
    expect(err?.what.includes('\u001b')).toBe(false);
    expect(err?.next).toMatch(/--source-dir; nothing was built/);
  });

  it('fails the second pass when the tarball changed after the first', async () => {
    const { work, tree, tgz } = packedShape();
    const index = await indexTarball(tgz);
    fs.appendFileSync(path.join(tree, 'cmd/kubeadm/kubeadm.go'), '// changed\n');
    execFileSync('tar', ['-czf', tgz, '-C', work, 'kubernetes']);
    await expect(
      listing(packTarball(index, { selection: treePackageClosure(index, 'gopath', 'cmd/kubeadm') })),
    ).rejects.toThrow(/changed while it was read/);
  });
});
