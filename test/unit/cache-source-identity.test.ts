import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { repoUrl } from '../../src/adapters/git.js';
import { resolveSourceTree } from '../../src/adapters/source-tree.js';
import {
  scanTree,
  selectionEntries,
  sourceIdentity,
  treeFingerprint,
} from '../../src/carry/cache/source-identity.js';
import { filledDigest } from '../../src/core/source-volume.js';
import { resolveSource } from '../../src/build/source.js';
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

/** The identity of a --source-dir as the build computes it: real path first, then the content. */
async function identityOf(given: string, memoDir?: string): Promise<string | undefined> {
  const src = await resolveSource({ kind: 'dir', dir: given });
  return sourceIdentity(src, undefined, { memoDir });
}

describe('source identity for the cache key', () => {
  it('git: none (the commit is in the plan); tarball: its sha256, through a link too', async () => {
    expect(await sourceIdentity({ kind: 'git', repo: 'x', commit: 'a'.repeat(40) })).toBeUndefined();
    const tgz = path.join(dir, 'src.tar.gz');
    execFileSync('tar', ['-czf', tgz, '-C', dir, 'tree']);
    const sha = crypto.createHash('sha256').update(fs.readFileSync(tgz)).digest('hex');
    expect(await sourceIdentity({ kind: 'tarball', file: tgz })).toBe(`tarball:sha256:${sha}`);
    // a file that is no tarball is refused by the pass that hashes it
    fs.writeFileSync(path.join(dir, 'not.tar.gz'), 'not really a tarball');
    await expect(
      sourceIdentity({ kind: 'tarball', file: path.join(dir, 'not.tar.gz') }),
    ).rejects.toMatchObject({
      what: expect.stringMatching(/^cannot read source tarball .*not\.tar\.gz/),
    });
    fs.symlinkSync(tgz, path.join(dir, 'current.tar.gz'));
    const resolved = await resolveSource({ kind: 'tarball', file: path.join(dir, 'current.tar.gz') });
    expect(resolved).toEqual({ kind: 'tarball', file: tgz });
    fs.symlinkSync(path.join(dir, 'gone.tar.gz'), path.join(dir, 'dangling.tar.gz'));
    await expect(
      resolveSource({ kind: 'tarball', file: path.join(dir, 'dangling.tar.gz') }),
    ).rejects.toMatchObject({
      what: expect.stringMatching(/dangling\.tar\.gz: no such file \(or a link to a missing one\)/),
    });
  });

  it('dir: stable, ignores .git and _output, changes when a file, its mode or a link changes', () => {
    const first = treeFingerprint(tree);
    expect(first).toMatch(/^tree2:[0-9a-f]{64}$/);
    expect(treeFingerprint(tree)).toBe(first);
    fs.writeFileSync(path.join(tree, '.git/HEAD'), 'ref: y, longer\n');
    fs.mkdirSync(path.join(tree, '_output'));
    fs.writeFileSync(path.join(tree, '_output/kubeadm'), 'an old build');
    expect(treeFingerprint(tree)).toBe(first);

    const file = path.join(tree, 'cmd/kubeadm/kubeadm.go');
    fs.writeFileSync(file, 'package main // edited\n');
    const edited = treeFingerprint(tree);
    expect(edited).not.toBe(first);
    fs.chmodSync(file, 0o755);
    const chmodded = treeFingerprint(tree);
    expect(chmodded).not.toBe(edited);
    fs.rmSync(path.join(tree, 'link'));
    fs.symlinkSync('cmd/kubeadm', path.join(tree, 'link'));
    expect(treeFingerprint(tree)).not.toBe(chmodded);
  });

  it('the same fingerprint without GNU find (the walk in JS), equally sensitive', () => {
    fs.writeFileSync(path.join(tree, 'cmd/kubeadm/a file with spaces.go'), 'package main\n');
    fs.utimesSync(path.join(tree, 'cmd/kubeadm/a file with spaces.go'), 2_000_000_000, 2_000_000_000.75);
    const withFind = scanTree(tree);
    const savedPath = process.env.PATH;
    process.env.PATH = path.join(dir, 'no-bin');
    try {
      const walked = scanTree(tree);
      expect(walked.fingerprint).toBe(withFind.fingerprint);
      expect(walked.newestFile).toBe(2_000_000_000);
      fs.appendFileSync(path.join(tree, 'cmd/kubeadm/kubeadm.go'), '// more\n');
      expect(treeFingerprint(tree)).not.toBe(walked.fingerprint);
    } finally {
      process.env.PATH = savedPath;
    }
  });

  it('dir: the content counts, not only names, sizes and mtimes', () => {
    const file = path.join(tree, 'cmd/kubeadm/kubeadm.go');
    fs.utimesSync(file, 1_600_000_000, 1_600_000_000);
    const before = treeFingerprint(tree);
    // same size, same mtime, one byte different (a locally modified copy declared as the same version)
    fs.writeFileSync(file, 'package main\r');
    fs.utimesSync(file, 1_600_000_000, 1_600_000_000);
    expect(treeFingerprint(tree)).not.toBe(before);
  });

  it('dir: one identity whatever path names the tree: link, link to link, "..", trailing "/", relative, a cp -a copy', async () => {
    const real = await identityOf(tree);
    expect(real).toMatch(/^dir:tree2:[0-9a-f]{64}$/);
    fs.symlinkSync(tree, path.join(dir, 'current'));
    fs.symlinkSync('current', path.join(dir, 'current-link'));
    const copy = path.join(dir, 'copy');
    execFileSync('cp', ['-a', tree, copy]);
    const cwd = process.cwd();
    process.chdir(path.join(dir, 'copy'));
    try {
      for (const given of [
        path.join(dir, 'current'),
        path.join(dir, 'current-link'),
        `${path.join(dir, 'current')}/`,
        path.join(tree, 'cmd', '..'),
        '.',
        '../current-link',
        copy,
      ]) {
        expect({ given, id: await identityOf(given) }).toEqual({ given, id: real });
      }
    } finally {
      process.chdir(cwd);
    }
    expect(await resolveSourceTree(path.join(dir, 'current-link'))).toBe(fs.realpathSync(tree));
    expect(await resolveSource({ kind: 'dir', dir: `${path.join(dir, 'current-link')}/` })).toEqual({
      kind: 'dir',
      dir: fs.realpathSync(tree),
    });
  });

  it('dir: two different trees behind the same link path get two identities', async () => {
    const other = path.join(dir, 'other');
    execFileSync('cp', ['-a', tree, other]);
    fs.appendFileSync(path.join(other, 'cmd/kubeadm/kubeadm.go'), '// the other release\n');
    const link = path.join(dir, 'current');
    fs.symlinkSync(tree, link);
    const a = await identityOf(link, dir);
    fs.rmSync(link);
    fs.symlinkSync(other, link);
    const b = await identityOf(link, dir);
    expect(a).not.toBe(b);
    expect(b).toBe(await identityOf(other));
  });

  it('an empty directory, a dangling link, a missing path, an unlistable tree: refused, never fingerprinted', async () => {
    const empty = path.join(dir, 'empty');
    fs.mkdirSync(empty);
    fs.symlinkSync(empty, path.join(dir, 'to-empty'));
    fs.symlinkSync(path.join(dir, 'releases/v1.28.4'), path.join(dir, 'dangling'));
    fs.symlinkSync('dangling', path.join(dir, 'to-dangling'));
    for (const given of [
      empty,
      path.join(dir, 'to-empty'),
      path.join(dir, 'dangling'),
      path.join(dir, 'to-dangling'),
      path.join(dir, 'missing'),
    ]) {
      await expect(identityOf(given)).rejects.toMatchObject({
        what: expect.stringContaining(
          `source tree ${JSON.stringify(given)} has no files: is it a link to a missing directory?`,
        ),
        exitCode: 2,
      });
    }
    await expect(identityOf(path.join(dir, 'dangling'))).rejects.toMatchObject({
      what: expect.stringContaining(
        `is a link to ${JSON.stringify(path.join(dir, 'releases/v1.28.4'))}, which does not exist`,
      ),
    });
    // the walk itself refuses what has no regular file, whoever calls it
    fs.mkdirSync(path.join(empty, 'cmd/kubeadm'), { recursive: true });
    expect(() => scanTree(empty)).toThrow(/has no files: is it a link to a missing directory\?/);
    expect(() => scanTree(path.join(dir, 'dangling'))).toThrow(
      /has no files: is it a link to a missing directory\? \(listing it failed: ENOENT\)/,
    );
  });

  it('the digest memo: a repeat scan reads nothing, yet every change is seen', async () => {
    const memoDir = path.join(dir, 'cache');
    const file = path.join(tree, 'cmd/kubeadm/kubeadm.go');
    fs.utimesSync(file, 1_600_000_000, 1_600_000_000);
    // files changed within 2 s of a scan are never remembered (racy): let the tree age
    const fresh = scanTree(tree, { memoDir });
    expect(scanTree(tree, { memoDir }).hashed).toBe(1);
    await sleep(2200);
    const cold = scanTree(tree, { memoDir });
    expect(cold.fingerprint).toBe(fresh.fingerprint);
    expect(cold.hashed).toBe(1);
    const warm = scanTree(tree, { memoDir });
    expect(warm).toMatchObject({ fingerprint: cold.fingerprint, hashed: 0 });
    // a repeat of the same listing is taken whole from the memo, its digests included
    expect([...warm.files].sort()).toEqual([...cold.files].sort());
    // a link pointed elsewhere, or a folder added, changes the listing: looked at again
    fs.rmSync(path.join(tree, 'link'));
    fs.symlinkSync('cmd/kubeadm', path.join(tree, 'link'));
    const relinked = scanTree(tree, { memoDir });
    expect(relinked.fingerprint).not.toBe(cold.fingerprint);
    fs.rmSync(path.join(tree, 'link'));
    fs.symlinkSync('cmd', path.join(tree, 'link'));
    expect(scanTree(tree, { memoDir }).fingerprint).toBe(cold.fingerprint);
    fs.mkdirSync(path.join(tree, 'cmd/new'));
    expect(scanTree(tree, { memoDir }).fingerprint).not.toBe(cold.fingerprint);
    fs.rmdirSync(path.join(tree, 'cmd/new'));
    // same size and mtime, other bytes: its ctime moves, so it is read again
    fs.writeFileSync(file, 'package mai\n\n');
    fs.utimesSync(file, 1_600_000_000, 1_600_000_000);
    const changed = scanTree(tree, { memoDir });
    expect(changed.hashed).toBe(1);
    expect(changed.fingerprint).not.toBe(cold.fingerprint);
    expect(changed.fingerprint).toBe(scanTree(tree).fingerprint);
    // a garbled memo is ignored (every file read)
    const digests = path.join(memoDir, 'source-digests');
    for (const f of fs.readdirSync(digests)) fs.writeFileSync(path.join(digests, f), '{garbled');
    expect(scanTree(tree, { memoDir })).toMatchObject({ fingerprint: changed.fingerprint, hashed: 1 });
  });

  it('one walk gives both the fingerprint and the newest file time, paths with spaces included', () => {
    const spaced = path.join(tree, 'cmd/kubeadm/a file with spaces.go');
    fs.writeFileSync(spaced, 'package main\n');
    fs.utimesSync(spaced, 2_000_000_000, 2_000_000_000.75);
    // a directory and a link newer than every file do not count
    fs.utimesSync(path.join(tree, 'cmd'), 2_100_000_000, 2_100_000_000);
    const scan = scanTree(tree);
    expect(scan.fingerprint).toBe(treeFingerprint(tree));
    expect(scan.newestFile).toBe(2_000_000_000);
    // the newest time is part of the fingerprint: it is the buildDate, so it changes the binary
    fs.utimesSync(spaced, 2_000_000_000, 2_000_000_100);
    expect(treeFingerprint(tree)).not.toBe(scan.fingerprint);
  });

  it('what a volume is filled with: the same digest from the scan as from reading the files', () => {
    const scan = scanTree(tree);
    const selection = { files: ['cmd/kubeadm/kubeadm.go'], symlinks: ['link'] };
    const fromScan = filledDigest(selectionEntries(tree, selection, scan));
    expect(fromScan).toBe(filledDigest(selectionEntries(tree, selection)));
    fs.appendFileSync(path.join(tree, 'cmd/kubeadm/kubeadm.go'), '// more\n');
    expect(filledDigest(selectionEntries(tree, selection))).not.toBe(fromScan);
  });

  it('git: a local --repo through links is one repository (one mirror in the cache); a dangling link is refused', () => {
    const repo = path.join(dir, 'mirror.git');
    fs.mkdirSync(repo);
    fs.symlinkSync(repo, path.join(dir, 'repo-link'));
    fs.symlinkSync('repo-link', path.join(dir, 'repo-link-link'));
    expect(repoUrl(path.join(dir, 'repo-link-link'))).toBe(`file://${fs.realpathSync(repo)}`);
    expect(repoUrl(`${path.join(dir, 'repo-link')}/`)).toBe(`file://${fs.realpathSync(repo)}`);
    fs.symlinkSync(path.join(dir, 'gone.git'), path.join(dir, 'repo-dangling'));
    expect(() => repoUrl(path.join(dir, 'repo-dangling'))).toThrow(
      /no such directory \(or a link to a missing one\) and not a URL/,
    );
    expect(repoUrl('https://example.invalid/k.git')).toBe('https://example.invalid/k.git');
  });
});
