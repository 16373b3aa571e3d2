import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { indexTarball } from '../../src/adapters/tarball-tree.js';
import { scanTree } from '../../src/carry/cache/source-identity.js';

// The buildDate of a tarball or a directory: the newest regular file's mtime (.git left out),
// read from the tarball's entries (never unpacked), so the same tarball always gives the same date.

const dirs: string[] = [];
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-unit-date-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('source time', () => {
  it('is the newest regular file; .git and directories do not count', async () => {
    const d = tmp();
    fs.mkdirSync(path.join(d, 'a/b'), { recursive: true });
    fs.mkdirSync(path.join(d, '.git'));
    fs.writeFileSync(path.join(d, 'a/old'), 'x');
    fs.writeFileSync(path.join(d, 'a/b/new'), 'y');
    fs.writeFileSync(path.join(d, '.git/HEAD'), 'z');
    fs.utimesSync(path.join(d, 'a/old'), 1000, 1_500_000_000);
    fs.utimesSync(path.join(d, 'a/b/new'), 1000, 1_600_000_000);
    fs.utimesSync(path.join(d, '.git/HEAD'), 1000, 1_700_000_000);
    expect(scanTree(d).newestFile).toBe(1_600_000_000);
  });

  it("of a tarball is its newest file entry's mtime", async () => {
    const d = tmp();
    fs.mkdirSync(path.join(d, 'src/top'), { recursive: true });
    fs.writeFileSync(path.join(d, 'src/top/f'), 'x');
    fs.utimesSync(path.join(d, 'src/top/f'), 1000, 1_577_934_245);
    execFileSync('tar', ['-C', path.join(d, 'src'), '-czf', path.join(d, 't.tgz'), 'top']);
    expect((await indexTarball(path.join(d, 't.tgz'))).newestFile).toBe(1_577_934_245);
  });
});
