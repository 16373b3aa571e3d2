import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { KfError, messageOf } from '../../core/errors.js';
import { readBoundedFile, type ReadKind } from '../../adapters/bounded-read.js';

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

/**
 * Reads a PKI file through the bounded reader: missing, unreadable, not a regular file (a FIFO,
 * a device) or over the size limit of its kind is a KfError naming it.
 */
export function readFileOrFail(file: string, what: string, kind: ReadKind = 'certificate'): Buffer {
  return readBoundedFile(file, kind, { what });
}

export interface CertFileScan {
  /** every entry named *.crt or *.pem that is not a directory (FIFOs and links included: the reader judges them) */
  files: string[];
  /** directories that could not be listed, with the reason */
  errors: { file: string; message: string }[];
}

/**
 * Certificate files (*.crt, *.pem) under `dir`, recursively, sorted. Anything so named is
 * listed whatever its type, so that a FIFO or a device where a certificate should be is seen
 * (and refused by the reader) rather than skipped; a directory that cannot be listed is noted
 * and the walk goes on.
 */
export function scanCertFiles(dir: string): CertFileScan {
  const scan: CertFileScan = { files: [], errors: [] };
  const walk = (d: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch (err) {
      scan.errors.push({ file: d, message: `directory not readable: ${messageOf(err)}` });
      return;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(crt|pem)$/.test(e.name)) scan.files.push(p);
    }
  };
  walk(dir);
  return scan;
}

/** scanCertFiles' files; a directory that cannot be listed is an error naming it. */
export function certFilesUnder(dir: string): string[] {
  const scan = scanCertFiles(dir);
  const [first] = scan.errors;
  if (first)
    throw new KfError(
      `cannot list ${first.file}: ${first.message}`,
      'check the directory and its permissions',
    );
  return scan.files;
}

/** Whether `file` is `dir` or inside it (both absolute, links already resolved). */
function isWithin(file: string, dir: string): boolean {
  const rel = path.relative(dir, file);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * The path a new version of `file` must be written to: `file` itself, or for a symbolic link
 * (also through a chain of them) its final target when that lies inside one of `dirs` (the
 * directories the operator named). Renaming over the link would turn it into a regular file
 * while its target, which other names may lead to, kept the old content; a link leading
 * elsewhere, or nowhere, is refused.
 */
export function writeTarget(file: string, dirs: string[], what: string): string {
  if (!fs.lstatSync(file).isSymbolicLink()) return file;
  let real: string;
  try {
    real = fs.realpathSync(file);
  } catch (err) {
    throw new KfError(
      `${what} ${file} is a symbolic link that cannot be followed (${messageOf(err)})`,
      'replace the link by the file it should point to; nothing was written',
    );
  }
  const roots = dirs.map((d) => {
    try {
      return fs.realpathSync(d);
    } catch {
      return path.resolve(d);
    }
  });
  if (roots.some((r) => isWithin(real, r))) return real;
  throw new KfError(
    `${what} ${file} is a symbolic link to ${real}, outside ${dirs.join(' and ')}: writing through it would change a file elsewhere, replacing the link would leave that file on the old content`,
    'replace the link by a copy of its target (or point it inside those directories) and run again; nothing was written',
  );
}
