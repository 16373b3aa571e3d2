import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { KfError, messageOf } from '../errors.js';

export const KEY_MODE = 0o600;
export const CERT_MODE = 0o644;

export interface PendingWrite {
  file: string;
  data: string | Uint8Array;
  mode: number;
}

function tempNameFor(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.kf-${crypto.randomBytes(4).toString('hex')}.tmp`);
}

/**
 * Writes a set of files as one step: every file goes to a temp name beside its target first
 * (created with its final mode, so a key is never readable by others), and only when all temp
 * files are written are they renamed over their targets. A failure before the renames leaves
 * no trace; the renames themselves are atomic per file.
 */
export function writeFilesAtomically(writes: PendingWrite[]): void {
  const temps: { temp: string; file: string }[] = [];
  try {
    for (const w of writes) {
      fs.mkdirSync(path.dirname(w.file), { recursive: true, mode: 0o755 });
      const temp = tempNameFor(w.file);
      fs.writeFileSync(temp, w.data, { mode: w.mode, flag: 'wx' });
      temps.push({ temp, file: w.file });
      fs.chmodSync(temp, w.mode); // umask may have narrowed or (for keys) never widens it
    }
  } catch (err) {
    for (const t of temps) fs.rmSync(t.temp, { force: true });
    throw new KfError(
      `cannot write ${writes.map((w) => w.file).find((f) => !temps.some((t) => t.file === f)) ?? 'files'}: ${messageOf(err)}`,
      'check that the directory exists, is writable and has space; nothing was changed',
    );
  }
  for (const t of temps) fs.renameSync(t.temp, t.file);
}

/**
 * Checks before anything is written that `dir` can be created or written: the nearest existing
 * ancestor must be a writable directory. Catches a file in the way and a read-only mount.
 */
export function assertWritableDir(dir: string, what: string): void {
  let p = path.resolve(dir);
  for (;;) {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(p);
    } catch {
      const parent = path.dirname(p);
      if (parent === p) break;
      p = parent;
      continue;
    }
    if (!st.isDirectory()) {
      throw new KfError(`${what} ${dir} cannot be used: ${p} is not a directory`, `choose another ${what}; nothing was written`);
    }
    try {
      fs.accessSync(p, fs.constants.W_OK);
      // root passes access() on read-only mounts too: probe with a real file
      const probe = path.join(p, `.kf-probe-${crypto.randomBytes(4).toString('hex')}`);
      fs.writeFileSync(probe, '', { flag: 'wx' });
      fs.rmSync(probe);
    } catch (err) {
      throw new KfError(`${what} ${dir} is not writable (${messageOf(err)})`, `fix its permissions or choose another ${what}; nothing was written`);
    }
    return;
  }
}

/** Copies files into `backupDir` (created 0700) under their path relative to `baseDir`, keeping modes. */
export function backupFiles(files: string[], baseDir: string, backupDir: string): string[] {
  const copied: string[] = [];
  fs.mkdirSync(backupDir, { recursive: true, mode: 0o700 });
  for (const file of files) {
    const rel = path.relative(baseDir, file);
    const dest = path.join(backupDir, rel.startsWith('..') ? path.basename(file) : rel);
    fs.mkdirSync(path.dirname(dest), { recursive: true, mode: 0o700 });
    fs.copyFileSync(file, dest, fs.constants.COPYFILE_EXCL);
    fs.chmodSync(dest, fs.statSync(file).mode & 0o777);
    copied.push(dest);
  }
  return copied;
}

/** A UTC timestamp for file and folder names: 20261128T201530Z. */
export function fileTimestamp(d = new Date()): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/** Reads a file, turning "missing" and "unreadable" into a KfError naming it. */
export function readFileOrFail(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new KfError(`cannot read ${what} ${file}: ${messageOf(err)}`, `check the path (and --pki-dir); nothing was written`);
  }
}

/** Certificate files (*.crt, *.pem) under `dir`, recursively, sorted. */
export function certFilesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if ((e.isFile() || e.isSymbolicLink()) && /\.(crt|pem)$/.test(e.name)) out.push(p);
    }
  };
  walk(dir);
  return out;
}
