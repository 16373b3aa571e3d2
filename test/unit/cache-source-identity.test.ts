import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newestFileTime, scanTree, sourceIdentity, treeFingerprint } from '../../src/cache/source-identity.js';
import { tempDir } from '../helpers/cache-fixtures.js';

let dir: string;
let tree: string;
beforeEach(() => {
  dir = tempDir('source-id');
  tree = path.join(dir, 'tree');
  fs.mkdirSync(path.join(tree, 'cmd/kubeadm'), { recursive: true });
  fs.mkdirSync(path.join(tree, '.git'));
  fs.writeFileSync(path.join(tree, 'cmd/kubeadm/kubeadm.go'), 'package main\n');
  fs.writeFileSync(path.join(tree, '.git/HEAD'), 'ref: x\n');
  fs.symlinkSync('cmd', path.join(tree, 'link'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('source identity for the cache key', () => {
  it('git: none (the commit is in the plan); tarball: its sha256', async () => {
    expect(await sourceIdentity({ kind: 'git', repo: 'x', commit: 'a'.repeat(40) })).toBeUndefined();
    const tgz = path.join(dir, 'src.tar.gz');
    fs.writeFileSync(tgz, 'not really a tarball');
    const sha = crypto.createHash('sha256').update('not really a tarball').digest('hex');
    expect(await sourceIdentity({ kind: 'tarball', file: tgz })).toBe(`tarball:sha256:${sha}`);
  });

  it('dir: stable, ignores .git, changes when a file, its mode or a link changes', async () => {
    const first = await treeFingerprint(tree);
    expect(await treeFingerprint(tree)).toBe(first);
    expect(await sourceIdentity({ kind: 'dir', dir: tree })).toBe(`dir:${first}`);
    fs.writeFileSync(path.join(tree, '.git/HEAD'), 'ref: y, longer\n');
    expect(await treeFingerprint(tree)).toBe(first);

    const file = path.join(tree, 'cmd/kubeadm/kubeadm.go');
    fs.writeFileSync(file, 'package main // edited\n');
    const edited = await treeFingerprint(tree);
    expect(edited).not.toBe(first);
    fs.chmodSync(file, 0o755);
    const chmodded = await treeFingerprint(tree);
    expect(chmodded).not.toBe(edited);
    fs.rmSync(path.join(tree, 'link'));
    fs.symlinkSync('cmd/kubeadm', path.join(tree, 'link'));
    expect(await treeFingerprint(tree)).not.toBe(chmodded);
  });

  it('works without GNU find (the walk in JS), equally sensitive', async () => {
    const savedPath = process.env.PATH;
    process.env.PATH = path.join(dir, 'no-bin');
    try {
      const a = await treeFingerprint(tree);
      expect(await treeFingerprint(tree)).toBe(a);
      fs.appendFileSync(path.join(tree, 'cmd/kubeadm/kubeadm.go'), '// more\n');
      expect(await treeFingerprint(tree)).not.toBe(a);
    } finally {
      process.env.PATH = savedPath;
    }
  });

  it('one walk gives both the fingerprint and the newest file time, paths with spaces included', async () => {
    const spaced = path.join(tree, 'cmd/kubeadm/a file with spaces.go');
    fs.writeFileSync(spaced, 'package main\n');
    fs.utimesSync(spaced, 2_000_000_000, 2_000_000_000.75);
    // a directory and a link newer than every file do not count
    fs.utimesSync(path.join(tree, 'cmd'), 2_100_000_000, 2_100_000_000);
    for (const noFind of [false, true]) {
      const savedPath = process.env.PATH;
      if (noFind) process.env.PATH = path.join(dir, 'no-bin');
      try {
        const scan = await scanTree(tree);
        expect(scan.fingerprint).toBe(await treeFingerprint(tree));
        expect(scan.newestFile).toBe(2_000_000_000);
        expect(scan.newestFile).toBe(await newestFileTime(tree));
      } finally {
        process.env.PATH = savedPath;
      }
    }
  });
});
