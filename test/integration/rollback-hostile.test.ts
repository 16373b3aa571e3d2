import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/core/digest.js';
import { readBackup, restoreRoot, type BackupEntry } from '../../src/node/renew/backup.js';
import { listTree, tempDir } from '../helpers/cache-fixtures.js';
import { runCli } from '../helpers/env.js';
import { runCliMeasured } from '../helpers/mounts.js';
import { craftBombTarGz, craftTarGz, type CraftMember } from '../helpers/tar-craft.js';

// Crafted backups against `renew --rollback`: links out of the root, links on the way, modes
// that must not come back, and archives that are small on disk but huge unpacked.

const MB = 1024 * 1024;
let dir: string;
let k8s: string;
let kubelet: string;
let victim: string;

beforeEach(() => {
  dir = tempDir('rollback-hostile');
  k8s = path.join(dir, 'etc-kubernetes');
  kubelet = path.join(dir, 'kubelet-pki');
  victim = path.join(dir, 'victim');
  for (const d of [path.join(k8s, 'pki'), kubelet, victim]) fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(k8s, 'pki/ca.crt'), 'CURRENT CA\n', { mode: 0o644 });
  fs.writeFileSync(path.join(victim, 'passwd'), 'root:x:0:0\n');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const file = (p: string, data: string, mode = 0o600): { entry: BackupEntry; member: CraftMember } => ({
  entry: { path: p, type: 'file', mode, size: Buffer.byteLength(data), sha256: sha256Hex(data) },
  member: { name: p, data, mode },
});
const dirEntry = (p: string, mode = 0o755): { entry: BackupEntry; member: CraftMember } => ({
  entry: { path: p, type: 'dir', mode },
  member: { name: `${p}/`, type: 'directory', mode },
});
const link = (p: string, target: string): { entry: BackupEntry; member: CraftMember } => ({
  entry: { path: p, type: 'symlink', target },
  member: { name: p, type: 'symlink', linkname: target },
});

function manifestOf(entries: BackupEntry[]) {
  return JSON.stringify({
    kind: 'kubeadm-forever-backup',
    version: 1,
    createdAt: '2026-11-28T20:15:00.000Z',
    purpose: 'renew',
    roots: { kubernetes: k8s, 'kubelet-pki': kubelet },
    entries,
  });
}

async function backupOf(
  parts: { entry: BackupEntry; member: CraftMember }[],
  extra: CraftMember[] = [],
): Promise<string> {
  const out = path.join(dir, `crafted-${Math.random().toString(16).slice(2)}.tar.gz`);
  await craftTarGz(out, [
    { name: 'backup.json', data: manifestOf(parts.map((p) => p.entry)) },
    ...parts.map((p) => p.member),
    ...extra,
  ]);
  return out;
}

const base = () => [dirEntry('kubernetes'), dirEntry('kubernetes/pki'), dirEntry('kubelet-pki', 0o700)];

function rollbackCli(backup: string, dryRun = false) {
  const args = [
    'renew',
    '--rollback',
    backup,
    '--kubernetes-dir',
    k8s,
    '--kubelet-pki-dir',
    kubelet,
    '--backup-dir',
    path.join(dir, 'backups'),
    '--restart',
    'none',
  ];
  return runCli(dryRun ? [...args, '--dry-run'] : args);
}

/** The rollback is refused with the two lines, and nothing anywhere under `dir` changed. */
function expectRefusedUnchanged(backup: string, reason: string) {
  const before = listTree(dir);
  for (const dry of [true, false]) {
    const r = rollbackCli(backup, dry);
    expect(r.stderr).toMatch(new RegExp(`(^|\\n)error: .*${reason}.*\\nnext: .+\\n$`));
    expect(r.status).toBe(1);
    expect(listTree(dir)).toEqual(before);
  }
  expect(fs.readFileSync(path.join(victim, 'passwd'), 'utf8')).toBe('root:x:0:0\n');
}

describe('rollback refuses links that leave the root and never writes through one', () => {
  it('an absolute link out of the root, then a file through it', async () => {
    const b = await backupOf([
      ...base(),
      link('kubernetes/evil', victim),
      file('kubernetes/evil/passwd', 'owned\n'),
    ]);
    await expect(readBackup(b)).rejects.toThrow(/the link kubernetes\/evil -> .*victim leaves its root/);
    expectRefusedUnchanged(b, 'the link kubernetes/evil -> .*victim leaves its root');
    // and without the link entry, the file alone is not inside any recorded directory
    const alone = await backupOf([...base(), file('kubernetes/evil/passwd', 'owned\n')]);
    expectRefusedUnchanged(alone, 'kubernetes/evil/passwd is not inside a directory the backup records');
  });

  it('a relative link that climbs out of the root', async () => {
    const b = await backupOf([...base(), link('kubernetes/pki/ca.crt', '../../victim/passwd')]);
    expectRefusedUnchanged(
      b,
      'the link kubernetes/pki/ca.crt -> \\.\\./\\.\\./victim/passwd leaves its root',
    );
  });

  it('an absolute link out of the root replacing a file', async () => {
    const b = await backupOf([...base(), link('kubernetes/pki/ca.crt', '/etc/shadow')]);
    expectRefusedUnchanged(b, 'leaves its root');
    expect(fs.lstatSync(path.join(k8s, 'pki/ca.crt')).isFile()).toBe(true);
  });

  it('a directory that is a link on disk: the file is not written through it', async () => {
    fs.rmSync(path.join(k8s, 'pki'), { recursive: true });
    fs.symlinkSync(victim, path.join(k8s, 'pki'));
    const b = await backupOf([...base(), file('kubernetes/pki/passwd', 'owned\n')]);
    expectRefusedUnchanged(
      b,
      `refusing to restore .*: ${path.join(k8s, 'pki')} is a symbolic link on disk, where the backup has a directory; nothing was restored`,
    );
    const verified = await readBackup(b);
    expect(() => restoreRoot(verified, 'kubernetes', k8s)).toThrow(/is a symbolic link on disk/);
    expect(fs.readFileSync(path.join(victim, 'passwd'), 'utf8')).toBe('root:x:0:0\n');
  });

  it('a file recorded where a directory stands on disk', async () => {
    const b = await backupOf([
      dirEntry('kubernetes'),
      file('kubernetes/pki', 'not a dir\n'),
      dirEntry('kubelet-pki'),
    ]);
    expectRefusedUnchanged(b, 'is a directory on disk, where the backup has a file');
  });

  it('a link inside the root replaces a file (the backup recorded it), modes are masked', async () => {
    fs.writeFileSync(path.join(kubelet, 'kubelet-client-current.pem'), 'a file now\n');
    const b = await backupOf([
      ...base().slice(0, 2),
      dirEntry('kubelet-pki', 0o1777),
      file('kubernetes/pki/ca.crt', 'OLD CA\n', 0o4777),
      file('kubernetes/pki/ca.key', 'OLD KEY\n', 0o600),
      file('kubelet-pki/kubelet-client-2026.pem', 'KUBELET\n', 0o2666),
      link('kubelet-pki/kubelet-client-current.pem', path.join(kubelet, 'kubelet-client-2026.pem')),
      link('kubelet-pki/relative.pem', 'kubelet-client-2026.pem'),
    ]);
    const r = rollbackCli(b);
    expect(r.stderr).not.toMatch(/^error:/m);
    expect(r.status).toBe(0);
    const mode = (p: string) => fs.statSync(p).mode & 0o7777;
    expect(mode(path.join(k8s, 'pki/ca.crt'))).toBe(0o775); // no setuid, not world-writable
    expect(mode(path.join(k8s, 'pki/ca.key'))).toBe(0o600);
    expect(mode(path.join(kubelet, 'kubelet-client-2026.pem'))).toBe(0o664);
    expect(mode(kubelet)).toBe(0o775); // no sticky bit, not world-writable
    expect(fs.readlinkSync(path.join(kubelet, 'kubelet-client-current.pem'))).toBe(
      path.join(kubelet, 'kubelet-client-2026.pem'),
    );
    expect(fs.readFileSync(path.join(kubelet, 'relative.pem'), 'utf8')).toBe('KUBELET\n');
    expect(fs.readFileSync(path.join(k8s, 'pki/ca.crt'), 'utf8')).toBe('OLD CA\n');
  });
});

describe('rollback of archives that are small on disk and huge unpacked', () => {
  const measured = (b: string) => {
    const args = [
      'renew',
      '--rollback',
      b,
      '--dry-run',
      '--kubernetes-dir',
      k8s,
      '--kubelet-pki-dir',
      kubelet,
      '--backup-dir',
      path.join(dir, 'backups'),
      '--restart',
      'none',
    ];
    const r = runCliMeasured(args);
    expect(fs.statSync(b).size).toBeLessThan(MB);
    expect(r.status).toBe(1);
    expect(r.peakRssMb).toBeLessThan(200);
    return r;
  };

  it('a member whose header says 512 MB where backup.json records 10 bytes', async () => {
    const entries = [...base(), file('kubernetes/pki/ca.crt', 'OLD CA 10\n')];
    const b = path.join(dir, 'bomb.tar.gz');
    await craftBombTarGz(
      b,
      [
        { name: 'backup.json', data: manifestOf(entries.map((e) => e.entry)) },
        ...entries.slice(0, 3).map((e) => e.member),
      ],
      { name: 'kubernetes/pki/ca.crt', size: 512 * MB },
    );
    const r = measured(b);
    expect(r.stderr).toMatch(
      /^error: backup .* does not verify: kubernetes\/pki\/ca.crt has changed \(536870912 bytes, recorded 10\)\nnext: .+\n$/,
    );
    console.log(`rollback --dry-run of a 512 MB member: peak RSS ${r.peakRssMb.toFixed(0)} MB`);
  });

  it('a 512 MB member backup.json does not list', async () => {
    const entries = base();
    const b = path.join(dir, 'bomb-unlisted.tar.gz');
    await craftBombTarGz(
      b,
      [
        { name: 'backup.json', data: manifestOf(entries.map((e) => e.entry)) },
        ...entries.map((e) => e.member),
      ],
      { name: 'kubernetes/huge', size: 512 * MB },
    );
    expect(measured(b).stderr).toMatch(/kubernetes\/huge is not listed in backup\.json/);
  });

  it('backup.json recording a 1 GB file, and backup.json not first', async () => {
    const huge: BackupEntry = {
      path: 'kubernetes/huge',
      type: 'file',
      mode: 0o600,
      size: 1024 * MB,
      sha256: 'a'.repeat(64),
    };
    const b = path.join(dir, 'bomb-recorded.tar.gz');
    await craftTarGz(b, [{ name: 'backup.json', data: manifestOf([...base().map((e) => e.entry), huge]) }]);
    expect(measured(b).stderr).toMatch(/kubernetes\/huge is larger than 67108864 bytes/);
    const late = path.join(dir, 'late.tar.gz');
    await craftBombTarGz(late, [], { name: 'kubernetes/first', size: 512 * MB }, [
      { name: 'backup.json', data: manifestOf([]) },
    ]);
    expect(measured(late).stderr).toMatch(/its first member is "kubernetes\/first", not backup\.json/);
  });
});

describe('rollback is all or nothing across files', () => {
  it('a swap that fails half-way puts back every file already restored; a sound run then restores all', async () => {
    fs.writeFileSync(path.join(k8s, 'admin.conf'), 'CURRENT ADMIN\n', { mode: 0o600 });
    fs.writeFileSync(path.join(kubelet, 'kubelet-client.pem'), 'CURRENT KUBELET\n', { mode: 0o600 });
    const b = await backupOf([
      ...base(),
      file('kubernetes/admin.conf', 'OLD ADMIN\n'),
      file('kubernetes/pki/ca.crt', 'OLD CA\n', 0o644),
      file('kubelet-pki/kubelet-client.pem', 'OLD KUBELET\n'),
    ]);
    const watched = [
      path.join(k8s, 'admin.conf'),
      path.join(k8s, 'pki/ca.crt'),
      path.join(kubelet, 'kubelet-client.pem'),
    ];
    const before = watched.map((f) => fs.readFileSync(f, 'utf8'));
    const args = [
      'renew',
      '--rollback',
      b,
      '--kubernetes-dir',
      k8s,
      '--kubelet-pki-dir',
      kubelet,
      '--backup-dir',
      path.join(dir, 'backups'),
      '--restart',
      'none',
    ];
    const failed = runCli(args, { env: { KF_TEST_FAULT: 'fail-swap:2' } });
    expect(failed.status).toBe(1);
    expect(failed.stderr).toMatch(/(^|\n)error: .+\nnext: .+\n$/);
    expect(watched.map((f) => fs.readFileSync(f, 'utf8'))).toEqual(before);
    for (const d of [k8s, path.join(k8s, 'pki'), kubelet])
      expect(fs.readdirSync(d).filter((n) => n.includes('.tmp'))).toEqual([]);
    const ok = runCli(args);
    expect(ok.stderr).not.toMatch(/^error:/m);
    expect(ok.status).toBe(0);
    expect(watched.map((f) => fs.readFileSync(f, 'utf8'))).toEqual([
      'OLD ADMIN\n',
      'OLD CA\n',
      'OLD KUBELET\n',
    ]);
  });
});
