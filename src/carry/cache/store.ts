import crypto from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Platform } from '../../core/types.js';
import { readBinaryHead, wrongMachine } from './elf.js';
import { withLock, type LockOptions } from './lock.js';
import { formatPlatform, parsePlatformDir, platformDir, platformFromText } from '../../core/platform.js';
import { sha256File } from '../../adapters/fs.js';
import { isProcessAlive } from '../../adapters/process.js';
import {
  isValidKey,
  manifestProblem,
  parseManifest,
  serializeManifest,
  type CacheManifest,
  type ManifestInput,
} from '../../core/cache-manifest.js';

/**
 * The binary cache: <cacheDir>/binaries/<key>/<os>-<arch>/{kubeadm,manifest.json}.
 * Entries appear by an atomic directory rename, are checked (sha256, size, machine) before use,
 * and a corrupt one is moved aside to binaries/.corrupt/ and treated as a miss.
 */
export const BINARY_NAME = 'kubeadm';
export const MANIFEST_NAME = 'manifest.json';

export interface CacheEntry {
  manifest: CacheManifest;
  /** <cacheDir>/binaries/<key>/<os>-<arch> */
  dir: string;
  binary: string;
}

export type LookupResult =
  | { kind: 'hit'; entry: CacheEntry }
  | { kind: 'miss' }
  /** the entry was there but wrong; it was moved to `movedTo` */
  | { kind: 'corrupt'; reason: string; movedTo: string };

export interface ListResult {
  entries: CacheEntry[];
  /** entry directories whose manifest could not be read */
  problems: { dir: string; reason: string }[];
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch {
    return false;
  }
}

function randomSuffix(): string {
  return `${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
}

/** A temp name inside the cache (same filesystem, so rename is atomic); prune removes orphans. */
export function tempName(kind: 'tmp' | 'old' | 'import'): string {
  return `.${kind}-${randomSuffix()}`;
}

async function fsyncFile(file: string): Promise<void> {
  const fh = await fs.open(file, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Checks an entry directory: a sound manifest that belongs to this key and platform, a regular
 * binary whose size, sha256 and machine header match it. Returns the problem or the entry.
 */
export async function checkEntryDir(
  dir: string,
  key: string,
  platform: Platform,
  /** false: the caller hashes the bytes itself (fetchTo, while copying them) */
  checkContent = true,
): Promise<{ entry: CacheEntry } | { problem: string }> {
  let manifest: CacheManifest;
  try {
    manifest = parseManifest(await fs.readFile(path.join(dir, MANIFEST_NAME), 'utf8'));
  } catch (err) {
    return { problem: (err as Error).message };
  }
  if (manifest.key !== key) return { problem: `manifest.json is for key ${manifest.key}` };
  if (manifest.platform !== formatPlatform(platform))
    return { problem: `manifest.json is for ${manifest.platform}` };
  const binary = path.join(dir, BINARY_NAME);
  let st;
  try {
    st = await fs.lstat(binary);
  } catch {
    return { problem: 'the binary is missing' };
  }
  if (!st.isFile()) return { problem: 'the binary is not a regular file' };
  if (st.size !== manifest.size)
    return { problem: `size ${st.size} differs from the manifest's ${manifest.size}` };
  if (checkContent) {
    const sha = await sha256File(binary);
    if (sha !== manifest.sha256)
      return { problem: `sha256 ${sha} differs from the manifest's ${manifest.sha256}` };
  }
  const mismatch = wrongMachine(await readBinaryHead(binary), platform);
  if (mismatch) return { problem: `the binary is ${mismatch}` };
  return { entry: { manifest, dir, binary } };
}

export class BinaryCache {
  readonly cacheDir: string;
  readonly root: string;
  readonly locksDir: string;

  constructor(cacheDir: string) {
    this.cacheDir = path.resolve(cacheDir);
    this.root = path.join(this.cacheDir, 'binaries');
    this.locksDir = path.join(this.cacheDir, 'locks');
  }

  entryDir(key: string, platform: Platform): string {
    if (!isValidKey(key)) throw new Error(`invalid cache key ${JSON.stringify(key)}`);
    return path.join(this.root, key, platformDir(platform));
  }

  /**
   * Runs `fn` holding the lock of `key`: build-or-hit sequences of the same key never overlap
   * across processes. Inside, look up again: the previous holder may have stored it.
   */
  async withKeyLock<T>(key: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
    if (!isValidKey(key)) throw new Error(`invalid cache key ${JSON.stringify(key)}`);
    await fs.mkdir(this.locksDir, { recursive: true });
    return withLock(path.join(this.locksDir, `${key}.lock`), opts, fn);
  }

  /** A hit only when the entry checks out; a corrupt entry is moved aside and reported. */
  async lookup(key: string, platform: Platform): Promise<LookupResult> {
    const dir = this.entryDir(key, platform);
    if (!(await exists(dir))) return { kind: 'miss' };
    const checked = await checkEntryDir(dir, key, platform);
    if ('entry' in checked) return { kind: 'hit', entry: checked.entry };
    const movedTo = await this.moveAside(dir, key, platform);
    if (movedTo === null) return { kind: 'miss' }; // someone else moved it meanwhile
    return { kind: 'corrupt', reason: checked.problem, movedTo };
  }

  /**
   * lookup + copyOut: copied to a temp name beside `dest` and that copy hashed, renamed over
   * `dest` only when the sha256 is the manifest's (a cache hit's main cost is 40 MB: one
   * kernel copy and one read). A mismatch moves the entry aside like lookup does.
   */
  async fetchTo(key: string, platform: Platform, dest: string): Promise<LookupResult> {
    const dir = this.entryDir(key, platform);
    if (!(await exists(dir))) return { kind: 'miss' };
    const checked = await checkEntryDir(dir, key, platform, false);
    let problem = 'problem' in checked ? checked.problem : undefined;
    if ('entry' in checked) {
      const absDest = path.resolve(dest);
      const tmp = path.join(path.dirname(absDest), `.${path.basename(absDest)}.kf-${randomSuffix()}`);
      try {
        // the kernel copies (a reflink where the file system has them); the copy is then
        // hashed, so what is renamed into place is what was checked
        await fs.copyFile(
          checked.entry.binary,
          tmp,
          fsConstants.COPYFILE_EXCL | fsConstants.COPYFILE_FICLONE,
        );
        const sha = await sha256File(tmp);
        if (sha === checked.entry.manifest.sha256) {
          await fs.chmod(tmp, 0o755);
          await fs.rename(tmp, absDest);
          return { kind: 'hit', entry: checked.entry };
        }
        problem = `sha256 ${sha} differs from the manifest's ${checked.entry.manifest.sha256}`;
      } finally {
        await fs.rm(tmp, { force: true });
      }
    }
    const movedTo = await this.moveAside(dir, key, platform);
    if (movedTo === null) return { kind: 'miss' };
    return { kind: 'corrupt', reason: problem ?? 'unreadable', movedTo };
  }

  private async moveAside(dir: string, key: string, platform: Platform): Promise<string | null> {
    const corruptDir = path.join(this.root, '.corrupt');
    await fs.mkdir(corruptDir, { recursive: true });
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const target = path.join(corruptDir, `${key}-${platformDir(platform)}-${stamp}-${randomSuffix()}`);
    try {
      await fs.rename(dir, target);
      return target;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  /**
   * Stores a built binary: copied with its manifest into a temp dir inside the cache, checked,
   * then renamed into place. An existing sound entry for the same key and platform wins (same
   * inputs, same result); a corrupt one is moved aside.
   */
  async store(input: ManifestInput, binaryFile: string): Promise<CacheEntry> {
    const platform = platformFromText(input.platform);
    if (!platform) throw new Error(`invalid platform ${JSON.stringify(input.platform)}`);
    this.entryDir(input.key, platform); // validates the key before anything is written
    await fs.mkdir(this.root, { recursive: true });
    const tmp = path.join(this.root, tempName('tmp'));
    await fs.mkdir(tmp);
    try {
      const tmpBinary = path.join(tmp, BINARY_NAME);
      await fs.copyFile(binaryFile, tmpBinary);
      await fs.chmod(tmpBinary, 0o755);
      const mismatch = wrongMachine(await readBinaryHead(tmpBinary), platform);
      if (mismatch) throw new Error(`refusing to cache ${binaryFile}: it is ${mismatch}`);
      const manifest: CacheManifest = {
        schema: 1,
        ...input,
        sha256: await sha256File(tmpBinary),
        size: (await fs.stat(tmpBinary)).size,
        created: new Date().toISOString(),
      };
      const problem = manifestProblem(manifest);
      if (problem) throw new Error(`refusing to cache ${binaryFile}: manifest ${problem}`);
      await fs.writeFile(path.join(tmp, MANIFEST_NAME), serializeManifest(manifest), { mode: 0o644 });
      await fsyncFile(tmpBinary);
      await fsyncFile(path.join(tmp, MANIFEST_NAME));
      return await this.installDir(tmp, input.key, platform, { replace: false });
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  }

  /**
   * Renames a complete, checked entry directory (on the cache's filesystem) into place.
   * `replace`: an existing sound entry is replaced (moved aside first) instead of kept.
   */
  async installDir(
    srcDir: string,
    key: string,
    platform: Platform,
    opts: { replace: boolean },
  ): Promise<CacheEntry> {
    const finalDir = this.entryDir(key, platform);
    await fs.mkdir(path.dirname(finalDir), { recursive: true });
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await fs.rename(srcDir, finalDir);
        const checked = await checkEntryDir(finalDir, key, platform);
        if ('problem' in checked)
          throw new Error(`cache entry ${finalDir} failed its check after install: ${checked.problem}`);
        return checked.entry;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      }
      const existing = await checkEntryDir(finalDir, key, platform);
      if ('entry' in existing && !opts.replace) return existing.entry;
      const aside = path.join(this.root, tempName('old'));
      try {
        await fs.rename(finalDir, aside);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      await fs.rm(aside, { recursive: true, force: true });
    }
    throw new Error(`could not install cache entry ${finalDir}: it keeps changing under us`);
  }

  /**
   * Copies a hit to `dest`: to a temp name beside it, sha256 checked against the manifest,
   * mode 0755, then renamed over `dest`.
   */
  async copyOut(entry: CacheEntry, dest: string): Promise<void> {
    const absDest = path.resolve(dest);
    const tmp = path.join(path.dirname(absDest), `.${path.basename(absDest)}.kf-${randomSuffix()}`);
    try {
      await fs.copyFile(entry.binary, tmp);
      await fs.chmod(tmp, 0o755);
      const sha = await sha256File(tmp);
      if (sha !== entry.manifest.sha256) {
        throw new Error(`copy of ${entry.binary} has sha256 ${sha}, expected ${entry.manifest.sha256}`);
      }
      await fs.rename(tmp, absDest);
    } finally {
      await fs.rm(tmp, { force: true });
    }
  }

  /** Every entry with a readable manifest (sha256 not re-checked: that is lookup's job). */
  async list(): Promise<ListResult> {
    const result: ListResult = { entries: [], problems: [] };
    const keys = await fs.readdir(this.root).catch(() => [] as string[]);
    for (const key of keys.sort()) {
      if (!isValidKey(key)) continue; // .tmp-*, .corrupt, foreign files
      const keyDir = path.join(this.root, key);
      const plats = await fs.readdir(keyDir).catch(() => [] as string[]);
      for (const name of plats.sort()) {
        const platform = parsePlatformDir(name);
        if (!platform) continue;
        const dir = path.join(keyDir, name);
        try {
          const manifest = parseManifest(await fs.readFile(path.join(dir, MANIFEST_NAME), 'utf8'));
          if (manifest.key !== key || manifest.platform !== formatPlatform(platform)) {
            throw new Error(`manifest.json is for ${manifest.key} ${manifest.platform}`);
          }
          result.entries.push({ manifest, dir, binary: path.join(dir, BINARY_NAME) });
        } catch (err) {
          result.problems.push({ dir, reason: (err as Error).message });
        }
      }
    }
    return result;
  }

  /** Resolves a full key or a unique prefix of at least 4 characters among the stored keys. */
  async resolveKey(keyOrPrefix: string): Promise<string | null> {
    const keys = (await fs.readdir(this.root).catch(() => [] as string[])).filter(isValidKey);
    if (keys.includes(keyOrPrefix)) return keyOrPrefix;
    if (keyOrPrefix.length < 4) return null;
    const matches = keys.filter((k) => k.startsWith(keyOrPrefix));
    if (matches.length > 1) throw new Error(`key prefix ${keyOrPrefix} matches ${matches.length} entries`);
    return matches[0] ?? null;
  }

  /** Removes every platform of a key, under its lock; the directory disappears at once. */
  async remove(key: string): Promise<boolean> {
    return this.withKeyLock(key, async () => {
      const dir = path.join(this.root, key);
      const trash = path.join(this.root, tempName('old'));
      try {
        await fs.rename(dir, trash);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
        throw err;
      }
      await fs.rm(trash, { recursive: true, force: true });
      return true;
    });
  }

  /**
   * Removes leftovers (entries moved aside as corrupt, temp dirs of dead processes) and, with
   * `keep`, every key but the `keep` most recently created ones.
   */
  async prune(keep?: number): Promise<{ removedKeys: string[]; removedLeftovers: string[] }> {
    const removedLeftovers: string[] = [];
    for (const name of await fs.readdir(this.root).catch(() => [] as string[])) {
      const m = /^\.(tmp|old|import)-(\d+)-[0-9a-f]+$/.exec(name);
      const ownerAlive = m ? isProcessAlive(Number(m[2])) : false;
      if (name === '.corrupt' || (m && !ownerAlive)) {
        await fs.rm(path.join(this.root, name), { recursive: true, force: true });
        removedLeftovers.push(name);
      }
    }
    const removedKeys: string[] = [];
    if (keep !== undefined) {
      const { entries } = await this.list();
      const newest = new Map<string, number>();
      for (const e of entries) {
        const t = Date.parse(e.manifest.created);
        newest.set(e.manifest.key, Math.max(newest.get(e.manifest.key) ?? 0, t));
      }
      const byAge = [...newest.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
      for (const [key] of byAge.slice(keep)) {
        if (await this.remove(key)) removedKeys.push(key);
      }
    }
    return { removedKeys, removedLeftovers };
  }
}
