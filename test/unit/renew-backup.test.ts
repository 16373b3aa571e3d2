import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { replaceFiles } from '../../src/adapters/file-transaction.js';
import { sha256Hex } from '../../src/core/digest.js';
import { isKfError } from '../../src/core/errors.js';
import {
  changedFiles,
  readBackup,
  restoreRoot,
  snapshot,
  verifyEntries,
  writeBackup,
  type BackupManifest,
} from '../../src/node/renew/backup.js';

let dir: string;
let k8s: string;
let kubelet: string;
let backups: string;
const roots = () => ({ kubernetes: k8s, 'kubelet-pki': kubelet });

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-test-backup-'));
  k8s = path.join(dir, 'etc-kubernetes');
  kubelet = path.join(dir, 'kubelet-pki');
  backups = path.join(dir, 'backups');
  fs.mkdirSync(path.join(k8s, 'pki/etcd'), { recursive: true });
  fs.mkdirSync(path.join(k8s, 'manifests'));
  fs.mkdirSync(kubelet);
  fs.writeFileSync(path.join(k8s, 'pki/ca.crt'), 'CA CERT\n', { mode: 0o644 });
  fs.writeFileSync(path.join(k8s, 'pki/ca.key'), 'CA KEY\n', { mode: 0o600 });
  fs.writeFileSync(path.join(k8s, 'pki/etcd/server.key'), 'ETCD KEY\n', { mode: 0o600 });
  fs.writeFileSync(path.join(k8s, 'admin.conf'), 'kind: Config\n', { mode: 0o600 });
  fs.writeFileSync(path.join(k8s, 'manifests/kube-apiserver.yaml'), 'kind: Pod\n');
  fs.writeFileSync(path.join(kubelet, 'kubelet-client-2026.pem'), 'KUBELET\n', { mode: 0o600 });
  fs.symlinkSync(
    path.join(kubelet, 'kubelet-client-2026.pem'),
    path.join(kubelet, 'kubelet-client-current.pem'),
  );
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('renew backups', () => {
  it('writes a timestamped 0600 tar.gz that tar itself can list, with backup.json first', async () => {
    const { file, manifest } = await writeBackup({
      backupDir: backups,
      purpose: 'renew',
      roots: roots(),
      snap: snapshot(roots()),
      now: new Date('2026-11-28T20:15:00.123Z'),
    });
    expect(path.basename(file)).toBe('kubeadm-forever-renew-20261128T201500123Z.tar.gz');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(backups).mode & 0o777).toBe(0o700);
    const listing = execFileSync('tar', ['-tzvf', file], { encoding: 'utf8' }).trim().split('\n');
    expect(listing[0]).toMatch(/ backup\.json$/);
    expect(listing.join('\n')).toMatch(/^-rw------- .* kubernetes\/pki\/ca\.key$/m);
    expect(listing.join('\n')).toMatch(
      /^l.* kubelet-pki\/kubelet-client-current\.pem -> .*kubelet-client-2026\.pem$/m,
    );
    const key = manifest.entries.find((e) => e.path === 'kubernetes/pki/ca.key');
    expect(key).toEqual({
      path: 'kubernetes/pki/ca.key',
      type: 'file',
      mode: 0o600,
      size: 7,
      sha256: sha256Hex('CA KEY\n'),
    });
    expect(fs.readdirSync(backups)).toEqual([path.basename(file)]);
  });

  it('reads back every file and link, and restores them with their modes', async () => {
    const { file } = await writeBackup({
      backupDir: backups,
      purpose: 'renew',
      roots: roots(),
      snap: snapshot(roots()),
      extra: { 'kubeadm-config.yaml': 'kind: ConfigMap\n' },
    });
    const before = snapshot(roots());
    fs.writeFileSync(path.join(k8s, 'pki/ca.key'), 'CHANGED\n');
    fs.chmodSync(path.join(k8s, 'pki/ca.key'), 0o644);
    fs.rmSync(path.join(k8s, 'pki/etcd'), { recursive: true });
    fs.rmSync(path.join(kubelet, 'kubelet-client-current.pem'));
    fs.writeFileSync(path.join(k8s, 'super-admin.conf'), 'new file\n');
    expect(changedFiles(before, snapshot(roots()))).toEqual([
      'kubelet-pki/kubelet-client-current.pem',
      'kubernetes/pki/ca.key',
      'kubernetes/pki/etcd',
      'kubernetes/pki/etcd/server.key',
      'kubernetes/super-admin.conf',
    ]);
    const verified = await readBackup(file);
    expect(verified.contents.get('extra/kubeadm-config.yaml')?.toString()).toBe('kind: ConfigMap\n');
    replaceFiles([
      ...restoreRoot(verified, 'kubernetes', k8s).staged,
      ...restoreRoot(verified, 'kubelet-pki', kubelet).staged,
    ]);
    // only the file the backup never had is left over
    expect(changedFiles(before, snapshot(roots()))).toEqual(['kubernetes/super-admin.conf']);
    expect(fs.statSync(path.join(k8s, 'pki/ca.key')).mode & 0o777).toBe(0o600);
    expect(fs.readlinkSync(path.join(kubelet, 'kubelet-client-current.pem'))).toBe(
      path.join(kubelet, 'kubelet-client-2026.pem'),
    );
    expect(fs.readdirSync(path.join(k8s, 'pki')).filter((n) => n.startsWith('.kubeadm-forever'))).toEqual([]);
  });

  it('leaves out its own backup dir when it lives inside a root', async () => {
    const inside = path.join(k8s, 'backups');
    const { manifest } = await writeBackup({
      backupDir: inside,
      purpose: 'renew',
      roots: roots(),
      snap: snapshot(roots(), [inside]),
    });
    expect(manifest.entries.some((e) => e.path.startsWith('kubernetes/backups'))).toBe(false);
  });

  async function tampered(edit: (members: Map<string, Buffer>) => void): Promise<string> {
    const { file } = await writeBackup({
      backupDir: backups,
      purpose: 'renew',
      roots: roots(),
      snap: snapshot(roots()),
    });
    const x = path.join(dir, 'x');
    fs.mkdirSync(x);
    execFileSync('tar', ['-xzf', file, '-C', x]);
    const members = new Map<string, Buffer>([
      ['kubernetes/pki/ca.key', fs.readFileSync(path.join(x, 'kubernetes/pki/ca.key'))],
    ]);
    edit(members);
    fs.writeFileSync(path.join(x, 'kubernetes/pki/ca.key'), members.get('kubernetes/pki/ca.key')!);
    const out = path.join(dir, 'tampered.tar.gz');
    execFileSync('tar', ['-czf', out, '-C', x, 'backup.json', 'kubernetes', 'kubelet-pki']);
    return out;
  }

  it('refuses a backup whose file no longer matches its sha256', async () => {
    const file = await tampered((m) => m.set('kubernetes/pki/ca.key', Buffer.from('EVIL KEY\n')));
    await expect(readBackup(file)).rejects.toMatchObject({
      what: expect.stringMatching(/kubernetes\/pki\/ca\.key has changed/),
    });
  });

  it('refuses a truncated archive, a missing file and a non-backup', async () => {
    const { file } = await writeBackup({
      backupDir: backups,
      purpose: 'renew',
      roots: roots(),
      snap: snapshot(roots()),
    });
    const cut = path.join(dir, 'cut.tar.gz');
    fs.writeFileSync(cut, fs.readFileSync(file).subarray(0, 200));
    await expect(readBackup(cut)).rejects.toSatisfy(isKfError);
    await expect(readBackup(path.join(dir, 'nope.tar.gz'))).rejects.toMatchObject({
      what: expect.stringMatching(/does not exist/),
    });
    const plain = path.join(dir, 'plain.tar.gz');
    fs.writeFileSync(plain, zlib.gzipSync(Buffer.alloc(1024)));
    await expect(readBackup(plain)).rejects.toMatchObject({ what: expect.stringMatching(/no backup\.json/) });
  });

  it('refuses unsafe and unlisted paths', () => {
    const manifest: BackupManifest = {
      kind: 'kubeadm-forever-backup',
      version: 1,
      createdAt: '',
      purpose: 'renew',
      roots: { kubernetes: '/etc/kubernetes' },
      entries: [],
    };
    const data = Buffer.from('x');
    const file = { type: 'file', data, linkname: '' };
    const withEntry = (p: string) => ({
      ...manifest,
      entries: [{ path: p, type: 'file' as const, mode: 0o600, size: 1, sha256: sha256Hex(data) }],
    });
    expect(() =>
      verifyEntries(
        'b',
        withEntry('kubernetes/../../etc/passwd'),
        new Map([['kubernetes/../../etc/passwd', file]]),
      ),
    ).toThrow(/unsafe path/);
    expect(() => verifyEntries('b', withEntry('other/x'), new Map([['other/x', file]]))).toThrow(
      /unsafe path/,
    );
    expect(() =>
      verifyEntries(
        'b',
        withEntry('kubernetes/a'),
        new Map([
          ['kubernetes/a', file],
          ['kubernetes/b', file],
        ]),
      ),
    ).toThrow(/kubernetes\/b is not listed/);
    expect(() =>
      verifyEntries('b', withEntry('kubernetes/a'), new Map([['kubernetes/a', file]])),
    ).not.toThrow();
  });
});
