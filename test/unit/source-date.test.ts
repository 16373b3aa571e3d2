import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { unpackTarball } from '../../src/adapters/archive.js';
import { newestFileTime } from '../../src/carry/cache/source-identity.js';

// The buildDate of a tarball or a directory: the newest regular file's mtime (.git left out),
// kept through unpacking, so the same tarball gives the same date whenever it is unpacked.

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
    expect(newestFileTime(d)).toBe(1_600_000_000);
  });

  it('of a tarball survives unpacking (entry mtimes are kept)', async () => {
    const d = tmp();
    fs.mkdirSync(path.join(d, 'src/top'), { recursive: true });
    fs.writeFileSync(path.join(d, 'src/top/f'), 'x');
    fs.utimesSync(path.join(d, 'src/top/f'), 1000, 1_577_934_245);
    execFileSync('tar', ['-C', path.join(d, 'src'), '-czf', path.join(d, 't.tgz'), 'top']);
    await unpackTarball(path.join(d, 't.tgz'), path.join(d, 'out'));
    expect(newestFileTime(path.join(d, 'out'))).toBe(1_577_934_245);
  });
});
