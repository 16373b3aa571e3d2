import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import tar from 'tar-stream';
import type { StagedEntry } from '../../adapters/file-transaction.js';
import { sha256Hex } from '../../core/digest.js';
import { isSystemError, KfError, messageOf } from '../../core/errors.js';

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
        entries.push({
          path: childRel,
          type: 'file',
          mode: st.mode & 0o7777,
          size: data.length,
          sha256: sha256Hex(data),
        });
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
    new Map(
      s.entries.map((e) => [
        e.path,
        e.type === 'file' ? e.sha256 : e.type === 'symlink' ? `->${e.target}` : 'dir',
      ]),
    );
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
    entries.push({ path: rel, type: 'file', mode: 0o600, size: data.length, sha256: sha256Hex(data) });
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
    throw new KfError(
      `cannot create the backup dir ${opts.backupDir}: ${messageOf(err)}`,
      'pass --backup-dir with a writable directory',
    );
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
    throw new KfError(
      `cannot write the backup ${file}: ${messageOf(err)}`,
      'check the space and permissions of --backup-dir',
    );
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
  new KfError(
    `backup ${file} does not verify: ${why}`,
    'pick another backup (they are named kubeadm-forever-*.tar.gz) or restore by hand',
  );

/**
 * Bounds on what a backup may hold, checked against backup.json before any member is read
 * (its files are kept in memory to be restored; PKI dirs and manifests are a few MB at most).
 */
const MAX_BACKUP_MANIFEST = 4 * 1024 * 1024;
const MAX_BACKUP_ENTRIES = 20_000;
const MAX_BACKUP_FILE = 64 * 1024 * 1024;
const MAX_BACKUP_TOTAL = 256 * 1024 * 1024;

/** What a restored file or directory may be: no setuid, setgid or sticky bit, never world-writable. */
export function safeMode(mode: number): number {
  return mode & 0o777 & ~0o002;
}

/**
 * Whether a link at `linkRel` (relative to its root dir, "/" separated) pointing to `target`
 * stays inside `rootDir`: an absolute target must lie under it, a relative one resolve under it.
 */
export function linkStaysInside(linkRel: string, target: string, rootDir: string): boolean {
  const root = path.resolve(rootDir);
  const resolved = path.isAbsolute(target)
    ? path.resolve(target)
    : path.resolve(root, path.dirname(linkRel), target);
  return resolved === root || resolved.startsWith(`${root}${path.sep}`);
}

/** One member's data, bounded by what backup.json recorded for it. */
async function readMember(
  entry: AsyncIterable<unknown>,
  limit: number,
  name: string,
  file: string,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of entry) {
    size += (chunk as Buffer).length;
    if (size > limit) throw invalid(file, `${name} is larger than ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function parseBackupManifest(file: string, text: string): BackupManifest {
  let manifest: BackupManifest;
  try {
    manifest = JSON.parse(text) as BackupManifest;
  } catch (err) {
    throw invalid(file, `${backupManifestName} is not JSON: ${messageOf(err)}`);
  }
  if (
    !manifest ||
    manifest.kind !== 'kubeadm-forever-backup' ||
    !Array.isArray(manifest.entries) ||
    typeof manifest.roots !== 'object' ||
    manifest.roots === null
  ) {
    throw invalid(file, `${backupManifestName} is not a kubeadm-forever backup manifest`);
  }
  if (manifest.entries.length > MAX_BACKUP_ENTRIES)
    throw invalid(file, `it lists more than ${MAX_BACKUP_ENTRIES} entries`);
  let total = 0;
  for (const e of manifest.entries as unknown[]) {
    const x = e as Record<string, unknown>;
    const ok =
      typeof x === 'object' &&
      x !== null &&
      typeof x.path === 'string' &&
      ((x.type === 'file' &&
        Number.isSafeInteger(x.mode) &&
        Number.isSafeInteger(x.size) &&
        (x.size as number) >= 0 &&
        typeof x.sha256 === 'string' &&
        /^[0-9a-f]{64}$/.test(x.sha256)) ||
        (x.type === 'dir' && Number.isSafeInteger(x.mode)) ||
        (x.type === 'symlink' &&
          typeof x.target === 'string' &&
          x.target !== '' &&
          !x.target.includes('\0')));
    if (!ok)
      throw invalid(file, `${backupManifestName} has a malformed entry ${JSON.stringify(e).slice(0, 200)}`);
    if (x.type === 'file') {
      if ((x.size as number) > MAX_BACKUP_FILE)
        throw invalid(file, `${x.path as string} is larger than ${MAX_BACKUP_FILE} bytes`);
      total += x.size as number;
    }
  }
  if (total > MAX_BACKUP_TOTAL)
    throw invalid(file, `its files add up to more than ${MAX_BACKUP_TOTAL} bytes`);
  return manifest;
}

/**
 * Reads a backup and checks it completely; throws before anything could be restored. Streams:
 * backup.json comes first and bounds everything after it (every member must be listed there,
 * once, with the recorded type and size), so a hostile archive is refused at the first member
 * that disagrees, before its data is read.
 */
export async function readBackup(file: string): Promise<VerifiedBackup> {
  if (!fs.existsSync(file)) {
    throw new KfError(
      `backup ${file} does not exist`,
      'pass the path of a kubeadm-forever-*.tar.gz that renew wrote',
    );
  }
  const members = new Map<string, { type: string; data: Buffer; linkname: string }>();
  let manifest: BackupManifest | undefined;
  let listed = new Map<string, BackupEntry>();
  const extract = tar.extract();
  const reading = pipeline(fs.createReadStream(file), zlib.createGunzip(), extract).catch((err: unknown) => {
    if (isSystemError(err)) throw err;
    throw invalid(file, messageOf(err));
  });
  try {
    for await (const entry of extract) {
      const name = entry.header.name.replace(/\/$/, '');
      const type = entry.header.type ?? 'file';
      if (!manifest) {
        if (name !== backupManifestName || type !== 'file')
          throw invalid(file, `its first member is ${JSON.stringify(name)}, not ${backupManifestName}`);
        if ((entry.header.size ?? 0) > MAX_BACKUP_MANIFEST)
          throw invalid(file, `${backupManifestName} is larger than ${MAX_BACKUP_MANIFEST} bytes`);
        manifest = parseBackupManifest(
          file,
          (await readMember(entry, MAX_BACKUP_MANIFEST, name, file)).toString('utf8'),
        );
        listed = new Map(manifest.entries.map((e) => [e.path, e]));
        continue;
      }
      const e = listed.get(name);
      if (!e) throw invalid(file, `${name} is not listed in ${backupManifestName}`);
      if (members.has(name)) throw invalid(file, `${name} appears twice`);
      const want = e.type === 'file' ? 'file' : e.type === 'dir' ? 'directory' : 'symlink';
      if (type !== want) throw invalid(file, `${name} is a ${type}; ${backupManifestName} records a ${want}`);
      if (e.type === 'file' && entry.header.size !== e.size)
        throw invalid(file, `${name} has changed (${entry.header.size} bytes, recorded ${e.size})`);
      const data = await readMember(entry, e.type === 'file' ? e.size : 0, name, file);
      members.set(name, { type, data, linkname: entry.header.linkname ?? '' });
    }
    await reading;
  } catch (err) {
    extract.destroy();
    await reading.catch(() => undefined);
    if (err instanceof KfError || isSystemError(err)) throw err;
    throw invalid(file, messageOf(err));
  }
  if (!manifest) throw invalid(file, `no ${backupManifestName} in it`);
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
  const dirs = new Set<string>(roots);
  for (const e of manifest.entries) if (e.type === 'dir') dirs.add(e.path);
  for (const e of manifest.entries) {
    const parts = e.path.split('/');
    if (
      !roots.has(parts[0] ?? '') ||
      parts.some((p) => p === '..' || p === '.' || p === '') ||
      path.isAbsolute(e.path) ||
      e.path.includes('\0')
    ) {
      throw invalid(file, `unsafe path ${e.path}`);
    }
    if (listed.has(e.path)) throw invalid(file, `${e.path} is listed twice`);
    // every entry sits in a recorded directory: nothing can be restored through a link
    if (parts.length > 1 && !dirs.has(parts.slice(0, -1).join('/')))
      throw invalid(file, `${e.path} is not inside a directory the backup records`);
    listed.add(e.path);
    const m = members.get(e.path);
    if (!m) throw invalid(file, `${e.path} is missing`);
    if (e.type === 'file') {
      if (m.data.length !== e.size || sha256Hex(m.data) !== e.sha256)
        throw invalid(file, `${e.path} has changed (sha256 mismatch)`);
    } else if (e.type === 'symlink') {
      if (m.type !== 'symlink' || m.linkname !== e.target)
        throw invalid(file, `${e.path} is not the recorded symlink`);
      const rootDir = manifest.roots[parts[0]!];
      if (rootDir === undefined || !linkStaysInside(parts.slice(1).join('/'), e.target, rootDir)) {
        throw invalid(file, `the link ${e.path} -> ${e.target} leaves its root ${rootDir ?? parts[0]}`);
      }
    } else if (m.type !== 'directory') {
      throw invalid(file, `${e.path} is not a directory`);
    }
  }
  for (const name of members.keys()) {
    if (!listed.has(name)) throw invalid(file, `${name} is not listed in ${backupManifestName}`);
  }
}

/** Entries of one root, with where each goes under `dir`. */
function rootEntries(
  backup: VerifiedBackup,
  root: string,
  dir: string,
): { e: BackupEntry; rel: string; target: string }[] {
  return backup.manifest.entries
    .filter((e) => e.path === root || e.path.startsWith(`${root}/`))
    .map((e) => ({
      e,
      rel: e.path.slice(root.length + 1),
      target: path.join(dir, e.path.slice(root.length)),
    }));
}

const unsafeRestore = (backup: VerifiedBackup, why: string) =>
  new KfError(
    `refusing to restore ${backup.file}: ${why}; nothing was restored`,
    'move the thing in the way aside (or restore by hand), then run the rollback again',
  );

/**
 * Checks, before anything is written, that restoring `root` into `dir` writes through no link
 * and leaves `dir` with no link: every directory on the way is a real directory (or will be
 * made), nothing recorded as a file or link would replace a directory, and every link stays
 * inside `dir` (absolute targets included).
 */
export function checkRestore(backup: VerifiedBackup, root: string, dir: string): void {
  for (const { e, rel, target } of rootEntries(backup, root, dir)) {
    const parts = rel === '' ? [] : rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      const p = path.join(dir, ...parts.slice(0, i));
      const st = fs.lstatSync(p, { throwIfNoEntry: false });
      if (st && !st.isDirectory())
        throw unsafeRestore(
          backup,
          `${p} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a directory'} on disk, where the backup has a directory`,
        );
    }
    const st = rel === '' ? undefined : fs.lstatSync(target, { throwIfNoEntry: false });
    if (e.type === 'dir' && st && !st.isDirectory())
      throw unsafeRestore(
        backup,
        `${target} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a directory'} on disk, where the backup has a directory`,
      );
    if (e.type !== 'dir' && st?.isDirectory())
      throw unsafeRestore(backup, `${target} is a directory on disk, where the backup has a ${e.type}`);
    if (e.type === 'symlink' && !linkStaysInside(rel, e.target, dir))
      throw unsafeRestore(backup, `the link ${e.path} -> ${e.target} would leave ${dir}`);
  }
}

/**
 * Prepares a verified backup's root for writing back to `dir` (checkRestore first): makes its
 * directories and returns each file (recorded mode masked by safeMode) and link (only as the
 * backup recorded it, inside the root) for one replaceFiles transaction, which writes through
 * exclusively created temp names and renames, so never through a link. Files that exist now but
 * not in the backup are left alone.
 */
export function restoreRoot(
  backup: VerifiedBackup,
  root: string,
  dir: string,
): { staged: StagedEntry[]; restored: string[] } {
  checkRestore(backup, root, dir);
  const staged: StagedEntry[] = [];
  const restored: string[] = [];
  // directories first, parents before children, whatever order backup.json lists them in
  const depth = (p: string) => p.split('/').length;
  const ordered = rootEntries(backup, root, dir).sort(
    (a, b) =>
      Number(b.e.type === 'dir') - Number(a.e.type === 'dir') ||
      (a.e.type === 'dir' ? depth(a.e.path) - depth(b.e.path) : 0),
  );
  for (const { e, target } of ordered) {
    if (e.type === 'dir') {
      if (!fs.lstatSync(target, { throwIfNoEntry: false })) fs.mkdirSync(target, { mode: safeMode(e.mode) });
      fs.chmodSync(target, safeMode(e.mode));
      continue;
    }
    staged.push(
      e.type === 'symlink'
        ? { file: target, linkTo: e.target }
        : { file: target, data: backup.contents.get(e.path)!, mode: safeMode(e.mode) },
    );
    restored.push(e.path);
  }
  return { staged, restored };
}
