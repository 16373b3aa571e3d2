import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import tar from 'tar-stream';
import { KfError, messageOf } from '../../errors.js';

/**
 * A backup is one tar.gz (0600) holding `backup.json` (what it holds, with sha256s) and the
 * files of each root under `<root name>/`. Rollback verifies every file against backup.json
 * before it writes anything.
 */
export const backupManifestName = 'backup.json';

export type BackupEntry =
  | { path: string; type: 'file'; mode: number; size: number; sha256: string }
  | { path: string; type: 'symlink'; target: string }
  | { path: string; type: 'dir'; mode: number };

export interface BackupManifest {
  kind: 'kubeadm-forever-backup';
  version: 1;
  createdAt: string;
  /** why it was taken: "renew", "rollback" (the state before a rollback) */
  purpose: string;
  /** root name -> the directory it was taken from */
  roots: Record<string, string>;
  entries: BackupEntry[];
}

/** A directory tree read into memory (PKI dirs are a few hundred KB at most). */
export interface Snapshot {
  entries: BackupEntry[];
  contents: Map<string, Buffer>;
}

export function sha256(data: Buffer | string): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

/**
 * Reads the roots into a snapshot. A root that does not exist is left out; `skip` names
 * absolute paths not to descend into (our own backup and temp dirs).
 */
export function snapshot(roots: Record<string, string>, skip: string[] = []): Snapshot {
  const entries: BackupEntry[] = [];
  const contents = new Map<string, Buffer>();
  const skipped = new Set(skip.map((p) => path.resolve(p)));
  const walk = (abs: string, rel: string) => {
    const names = fs.readdirSync(abs).sort();
    for (const name of names) {
      const childAbs = path.join(abs, name);
      if (skipped.has(childAbs) || name.startsWith('.kubeadm-forever-')) continue;
      const childRel = `${rel}/${name}`;
      const st = fs.lstatSync(childAbs);
      if (st.isSymbolicLink()) {
        entries.push({ path: childRel, type: 'symlink', target: fs.readlinkSync(childAbs) });
      } else if (st.isDirectory()) {
        entries.push({ path: childRel, type: 'dir', mode: st.mode & 0o7777 });
        walk(childAbs, childRel);
      } else if (st.isFile()) {
        const data = fs.readFileSync(childAbs);
        contents.set(childRel, data);
        entries.push({ path: childRel, type: 'file', mode: st.mode & 0o7777, size: data.length, sha256: sha256(data) });
      }
    }
  };
  for (const [name, dir] of Object.entries(roots)) {
    if (!fs.existsSync(dir)) continue;
    entries.push({ path: name, type: 'dir', mode: fs.statSync(dir).mode & 0o7777 });
    walk(dir, name);
  }
  return { entries, contents };
}

/** Names of files whose content or presence differs between two snapshots. */
export function changedFiles(before: Snapshot, after: Snapshot): string[] {
  const hashes = (s: Snapshot) =>
    new Map(s.entries.map((e) => [e.path, e.type === 'file' ? e.sha256 : e.type === 'symlink' ? `->${e.target}` : 'dir']));
  const a = hashes(before);
  const b = hashes(after);
  const names = new Set([...a.keys(), ...b.keys()]);
  return [...names].filter((n) => a.get(n) !== b.get(n)).sort();
}

function timestamp(now: Date): string {
  return now.toISOString().replace(/[-:]/g, '').replace('.', '');
}

/**
 * Writes the snapshot (plus `extra` files such as the kubeadm-config ConfigMap) as a
 * timestamped tar.gz in `backupDir`, 0600, through a temp name and a rename.
 */
export async function writeBackup(opts: {
  backupDir: string;
  purpose: string;
  roots: Record<string, string>;
  snap: Snapshot;
  extra?: Record<string, string>;
  now?: Date;
}): Promise<{ file: string; manifest: BackupManifest }> {
  const now = opts.now ?? new Date();
  const entries = [...opts.snap.entries];
  const contents = new Map(opts.snap.contents);
  for (const [name, text] of Object.entries(opts.extra ?? {})) {
    const rel = `extra/${name}`;
    const data = Buffer.from(text);
    contents.set(rel, data);
    entries.push({ path: rel, type: 'file', mode: 0o600, size: data.length, sha256: sha256(data) });
  }
  const manifest: BackupManifest = {
    kind: 'kubeadm-forever-backup',
    version: 1,
    createdAt: now.toISOString(),
    purpose: opts.purpose,
    roots: opts.roots,
    entries,
  };
  try {
    fs.mkdirSync(opts.backupDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new KfError(`cannot create the backup dir ${opts.backupDir}: ${messageOf(err)}`, 'pass --backup-dir with a writable directory');
  }
  const file = path.join(opts.backupDir, `kubeadm-forever-${opts.purpose}-${timestamp(now)}.tar.gz`);
  const tmp = `${file}.${process.pid}.tmp`;
  const pack = tar.pack();
  const done = pipeline(pack, zlib.createGzip(), fs.createWriteStream(tmp, { mode: 0o600, flags: 'wx' }));
  const mtime = now;
  pack.entry({ name: backupManifestName, mode: 0o600, mtime }, `${JSON.stringify(manifest, null, 2)}\n`);
  for (const e of entries) {
    if (e.type === 'dir') pack.entry({ name: `${e.path}/`, type: 'directory', mode: e.mode, mtime });
    else if (e.type === 'symlink') pack.entry({ name: e.path, type: 'symlink', linkname: e.target, mtime });
    else pack.entry({ name: e.path, mode: e.mode, mtime }, contents.get(e.path) ?? Buffer.alloc(0));
  }
  pack.finalize();
  try {
    await done;
    fs.chmodSync(tmp, 0o600);
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw new KfError(`cannot write the backup ${file}: ${messageOf(err)}`, 'check the space and permissions of --backup-dir');
  }
  return { file, manifest };
}

/** A backup read back and verified: every entry of backup.json present with its sha256. */
export interface VerifiedBackup {
  file: string;
  manifest: BackupManifest;
  contents: Map<string, Buffer>;
}

const invalid = (file: string, why: string) =>
  new KfError(`backup ${file} does not verify: ${why}`, 'pick another backup (they are named kubeadm-forever-*.tar.gz) or restore by hand');

/** Reads a backup and checks it completely; throws before anything could be restored. */
export async function readBackup(file: string): Promise<VerifiedBackup> {
  if (!fs.existsSync(file)) {
    throw new KfError(`backup ${file} does not exist`, 'pass the path of a kubeadm-forever-*.tar.gz that renew wrote');
  }
  const members = new Map<string, { type: string; data: Buffer; linkname: string }>();
  const extract = tar.extract();
  const reading = pipeline(fs.createReadStream(file), zlib.createGunzip(), extract).catch((err: unknown) => {
    throw invalid(file, messageOf(err));
  });
  try {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      const name = entry.header.name.replace(/\/$/, '');
      members.set(name, { type: entry.header.type ?? 'file', data: Buffer.concat(chunks), linkname: entry.header.linkname ?? '' });
    }
    await reading;
  } catch (err) {
    await reading.catch(() => undefined);
    throw err instanceof KfError ? err : invalid(file, messageOf(err));
  }
  const head = members.get(backupManifestName);
  if (!head) throw invalid(file, `no ${backupManifestName} in it`);
  let manifest: BackupManifest;
  try {
    manifest = JSON.parse(head.data.toString('utf8')) as BackupManifest;
  } catch (err) {
    throw invalid(file, `${backupManifestName} is not JSON: ${messageOf(err)}`);
  }
  if (manifest.kind !== 'kubeadm-forever-backup' || !Array.isArray(manifest.entries)) {
    throw invalid(file, `${backupManifestName} is not a kubeadm-forever backup manifest`);
  }
  verifyEntries(file, manifest, members);
  const contents = new Map<string, Buffer>();
  for (const e of manifest.entries) if (e.type === 'file') contents.set(e.path, members.get(e.path)!.data);
  return { file, manifest, contents };
}

/** Exported for unit tests: the checks of readBackup on already-read members. */
export function verifyEntries(
  file: string,
  manifest: BackupManifest,
  members: Map<string, { type: string; data: Buffer; linkname: string }>,
): void {
  const roots = new Set([...Object.keys(manifest.roots), 'extra']);
  const listed = new Set<string>([backupManifestName]);
  for (const e of manifest.entries) {
    const parts = e.path.split('/');
    if (!roots.has(parts[0] ?? '') || parts.some((p) => p === '..' || p === '.' || p === '') || path.isAbsolute(e.path)) {
      throw invalid(file, `unsafe path ${e.path}`);
    }
    listed.add(e.path);
    const m = members.get(e.path);
    if (!m) throw invalid(file, `${e.path} is missing`);
    if (e.type === 'file') {
      if (m.data.length !== e.size || sha256(m.data) !== e.sha256) throw invalid(file, `${e.path} has changed (sha256 mismatch)`);
    } else if (e.type === 'symlink') {
      if (m.type !== 'symlink' || m.linkname !== e.target) throw invalid(file, `${e.path} is not the recorded symlink`);
    } else if (m.type !== 'directory') {
      throw invalid(file, `${e.path} is not a directory`);
    }
  }
  for (const name of members.keys()) {
    if (!listed.has(name)) throw invalid(file, `${name} is not listed in ${backupManifestName}`);
  }
}

/**
 * Writes a verified backup's root back to `dir`: every file through a temp name and a rename,
 * with its recorded mode. Files that exist now but not in the backup are left alone.
 */
export function restoreRoot(backup: VerifiedBackup, root: string, dir: string): string[] {
  const restored: string[] = [];
  for (const e of backup.manifest.entries) {
    if (e.path !== root && !e.path.startsWith(`${root}/`)) continue;
    const target = path.join(dir, e.path.slice(root.length));
    if (e.type === 'dir') {
      fs.mkdirSync(target, { recursive: true, mode: e.mode });
      fs.chmodSync(target, e.mode);
      continue;
    }
    fs.mkdirSync(path.dirname(target), { recursive: true });
    const tmp = path.join(path.dirname(target), `.kubeadm-forever-restore-${process.pid}-${path.basename(target)}`);
    fs.rmSync(tmp, { force: true });
    if (e.type === 'symlink') {
      fs.symlinkSync(e.target, tmp);
    } else {
      fs.writeFileSync(tmp, backup.contents.get(e.path)!, { mode: e.mode });
      fs.chmodSync(tmp, e.mode);
    }
    fs.renameSync(tmp, target);
    restored.push(e.path);
  }
  return restored;
}
