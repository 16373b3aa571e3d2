import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportBundle, selectEntries } from '../../src/carry/bundle/export.js';
import { BinaryCache } from '../../src/carry/cache/store.js';
import { manifestInput, keyFor, tempDir, writeFakeElf } from '../helpers/cache-fixtures.js';
import { cliPath, runCli } from '../helpers/env.js';
import { runCliInMount, runCliMeasured } from '../helpers/mounts.js';

// Real OS errors, each provoked for real (root ignores permission bits, so: a tiny tmpfs for
// ENOSPC, a read-only bind mount for EROFS, a file in the way for ENOTDIR, an unprivileged uid
// for EACCES): the two lines name the path and what to do, --json adds the document, and no
// temp file stays.

let dir: string;
let bundle: string;
const twoLines = /^error: [^\n]+\nnext: [^\n]+\n$/;

beforeAll(async () => {
  dir = tempDir('os-errors');
  const cache = new BinaryCache(path.join(dir, 'outside'));
  await cache.store(manifestInput(keyFor('os'), 'linux/amd64'), writeFakeElf(dir, 'amd64', 'os', 400_000));
  bundle = path.join(dir, 'b.tar.gz');
  await exportBundle((await selectEntries(cache, {})).entries, bundle, '0.1.0');
  fs.chmodSync(dir, 0o755);
  fs.chmodSync(bundle, 0o644);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('OS errors are named with their path, never "unexpected failure" or "not a readable tar.gz"', () => {
  it('ENOSPC: bundle import into a 64 KB tmpfs; the staging dir does not stay', () => {
    const mnt = path.join(dir, 'tiny');
    fs.mkdirSync(mnt);
    const list = path.join(dir, 'tiny-after.txt');
    const script = `"$@"; rc=$?; find "${mnt}" -mindepth 1 > "${list}"; exit $rc`;
    const r = runCliInMount(
      { tmpfs: '64k' },
      mnt,
      ['bundle', 'import', bundle, '--cache-dir', path.join(mnt, 'cache'), '--json'],
      { wrap: script },
    );
    expect(r.stderr).toMatch(twoLines);
    expect(r.stderr).toMatch(
      /^error: cannot write ".*\/cache\/binaries\/\.import-[^"]+\/kubeadm": no space left on the device \(ENOSPC\)\nnext: free space on the filesystem holding /,
    );
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({
      error: expect.stringMatching(/ENOSPC/),
      next: expect.stringMatching(/free space/),
    });
    expect(fs.readFileSync(list, 'utf8')).toBe(''); // no staging dir, no cache dir left in the tmpfs
  });

  it('EROFS: bundle import into a read-only cache dir', () => {
    const ro = path.join(dir, 'ro-cache');
    fs.mkdirSync(ro);
    const r = runCliInMount({ readOnly: true }, ro, [
      'bundle',
      'import',
      bundle,
      '--cache-dir',
      ro,
      '--json',
    ]);
    expect(r.stderr).toBe(
      `error: cannot mkdir "${ro}/binaries": read-only file system (EROFS)\nnext: "${ro}/binaries" is on a read-only mount: remount it read-write or choose a location on a writable filesystem\n`,
    );
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout).error).toMatch(/EROFS/);
    expect(fs.readdirSync(ro)).toEqual([]);
  });

  it('ENOTDIR: a file where the cache dir should be', () => {
    const blocker = path.join(dir, 'blocker');
    fs.writeFileSync(blocker, 'a file\n');
    const r = runCli(['bundle', 'import', bundle, '--cache-dir', path.join(blocker, 'cache')]);
    expect(r.stderr).toBe(
      `error: cannot mkdir "${blocker}/cache/binaries": a part of the path is not a directory (ENOTDIR)\nnext: a file stands where a directory of "${blocker}/cache/binaries" is expected: move it away or choose another path\n`,
    );
    expect(r.status).toBe(1);
  });

  it('EACCES: an unprivileged user importing into a root-only dir', () => {
    const locked = path.join(dir, 'locked');
    fs.mkdirSync(locked, { mode: 0o700 });
    const r = spawnSync(
      'setpriv',
      [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        '--',
        process.execPath,
        cliPath,
        'bundle',
        'import',
        bundle,
        '--cache-dir',
        path.join(locked, 'c'),
        '--json',
      ],
      { encoding: 'utf8' },
    );
    expect(r.stderr).toBe(
      `error: cannot mkdir "${locked}/c/binaries": permission denied (EACCES)\nnext: check the permissions of "${locked}/c/binaries" and its directories, or run as a user allowed to use it\n`,
    );
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout).error).toMatch(/EACCES/);
    expect(fs.readdirSync(locked)).toEqual([]);
  });

  it('plan --version-file - < /dev/zero is refused at 64 KB with bounded memory', () => {
    const r = runCliMeasured(['plan', '--version-file', '-', '--json'], { stdinFile: '/dev/zero' });
    expect(r.stderr).toBe(
      'error: --version-file - (stdin) is larger than 65536 bytes: not a kubeadm version output\nnext: save `kubeadm version -o json` from the cluster into a file and pass its path (or - for stdin)\n',
    );
    expect(r.status).toBe(2);
    expect(JSON.parse(r.stdout).error).toMatch(/larger than 65536 bytes/);
    expect(r.peakRssMb).toBeLessThan(150);
    const dev = runCli(['plan', '--version-file', '/dev/zero']);
    expect(dev.stderr).toMatch(/^error: --version-file "\/dev\/zero" is larger than 65536 bytes/);
  });
});
