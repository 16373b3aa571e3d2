import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Shared by the pki-*.test.ts files: openssl as the independent checker, and disk snapshots. */

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `kf-${prefix}-`));
}

/** tempDir for one test file: `tmp(prefix)` makes one, `cleanup()` (in afterAll) removes them all. */
export function tempDirs(): { tmp: (prefix: string) => string; cleanup: () => void } {
  const dirs: string[] = [];
  return {
    tmp: (prefix) => {
      const d = tempDir(prefix);
      dirs.push(d);
      return d;
    },
    cleanup: () => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })),
  };
}

/** `openssl x509 -noout -text` (plus -enddate, -serial, -subject lines) of a PEM file. */
export function opensslText(file: string): string {
  return execFileSync(
    'openssl',
    [
      'x509',
      '-in',
      file,
      '-noout',
      '-text',
      '-subject',
      '-issuer',
      '-serial',
      '-enddate',
      '-nameopt',
      'RFC2253',
    ],
    {
      encoding: 'utf8',
    },
  );
}

/** NotAfter as openssl reads it. */
export function opensslNotAfter(file: string): Date {
  const out = execFileSync('openssl', ['x509', '-in', file, '-noout', '-enddate'], { encoding: 'utf8' });
  return new Date(out.replace(/^notAfter=/, '').trim());
}

export function yearsFromNow(d: Date): number {
  return (d.getTime() - Date.now()) / (365 * 24 * 3_600_000);
}

/** `openssl verify` result: status 0 and "OK" per file, or the error text. */
export function opensslVerify(
  caFile: string,
  files: string[],
  extra: string[] = [],
): { ok: boolean; out: string } {
  const r = spawnSync('openssl', ['verify', ...extra, '-CAfile', caFile, ...files], { encoding: 'utf8' });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

/** The DER SubjectPublicKeyInfo openssl extracts from a certificate (for "same key" checks). */
export function opensslPubkey(file: string): string {
  return execFileSync('openssl', ['x509', '-in', file, '-noout', '-pubkey'], { encoding: 'utf8' });
}

/** Every file under `dir` with its mode and content hash (symlinks by target): "nothing changed" checks. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const rel = path.relative(dir, p);
      if (e.isSymbolicLink()) out[rel] = `link -> ${fs.readlinkSync(p)}`;
      else if (e.isDirectory()) {
        out[rel] = `dir ${(fs.statSync(p).mode & 0o777).toString(8)}`;
        walk(p);
      } else {
        const h = crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex');
        out[rel] = `${(fs.statSync(p).mode & 0o777).toString(8)} ${h}`;
      }
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return out;
}

export function modeOf(file: string): number {
  return fs.statSync(file).mode & 0o777;
}
