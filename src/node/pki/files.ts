import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { KfError, messageOf } from '../../core/errors.js';

export const KEY_MODE = 0o600;
export const CERT_MODE = 0o644;

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
      throw new KfError(
        `${what} ${dir} cannot be used: ${p} is not a directory`,
        `choose another ${what}; nothing was written`,
      );
    }
    try {
      fs.accessSync(p, fs.constants.W_OK);
      // root passes access() on read-only mounts too: probe with a real file
      const probe = path.join(p, `.kf-probe-${crypto.randomBytes(4).toString('hex')}`);
      fs.writeFileSync(probe, '', { flag: 'wx' });
      fs.rmSync(probe);
    } catch (err) {
      throw new KfError(
        `${what} ${dir} is not writable (${messageOf(err)})`,
        `fix its permissions or choose another ${what}; nothing was written`,
      );
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
  return d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

/** Reads a file, turning "missing" and "unreadable" into a KfError naming it. */
export function readFileOrFail(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new KfError(
      `cannot read ${what} ${file}: ${messageOf(err)}`,
      `check the path (and --pki-dir); nothing was written`,
    );
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
