import fs from 'node:fs/promises';
import path from 'node:path';
import { formatPlatform } from '../../core/platform.js';
import { checkEntryDir, tempName, type BinaryCache } from '../cache/store.js';
import { makeDirs, sha256File } from '../../adapters/fs.js';
import { toolExecutablePath } from '../cache/tool.js';
import { readBundle } from './read.js';

export type ImportStatus = 'imported' | 'kept' | 'replaced';

export interface ImportResult {
  entries: {
    key: string;
    platform: string;
    gitVersion: string;
    sha256: string;
    status: ImportStatus;
    path: string;
  }[];
  /** the tool's executables it carried, installed at toolExecutablePath */
  tools: { platform: string; sha256: string; status: ImportStatus; path: string }[];
}

/**
 * Imports a bundle into the cache. Everything is extracted into a temp dir inside the cache dir
 * and checked (readBundle) before any entry is renamed into place, so a bad bundle leaves the
 * cache as it was. A sound existing entry is kept unless `force`.
 */
export async function importBundle(
  file: string,
  cache: BinaryCache,
  opts: { force: boolean },
): Promise<ImportResult> {
  const createdRoot = await makeDirs(cache.root);
  const staging = path.join(cache.root, tempName('import'));
  await fs.mkdir(staging, { mode: 0o700 });
  let ok = false;
  try {
    const contents = await readBundle(file, { extractTo: staging });
    const result: ImportResult = { entries: [], tools: [] };
    for (const e of contents.entries) {
      const src = e.dir as string;
      const status = await cache.withKeyLock(e.key, async (): Promise<ImportStatus> => {
        const target = cache.entryDir(e.key, e.platform);
        const existing = await checkEntryDir(target, e.key, e.platform).catch(() => ({
          problem: 'unreadable',
        }));
        const had = await fs.lstat(target).then(
          () => true,
          () => false,
        );
        if ('entry' in existing && !opts.force) return 'kept';
        await cache.installDir(src, e.key, e.platform, { replace: true });
        return had ? 'replaced' : 'imported';
      });
      result.entries.push({
        key: e.key,
        platform: formatPlatform(e.platform),
        gitVersion: e.manifest.gitVersion,
        sha256: e.manifest.sha256,
        status,
        path: path.join(cache.entryDir(e.key, e.platform), 'kubeadm'),
      });
    }
    for (const t of contents.tools) {
      const target = toolExecutablePath(cache.cacheDir, t.platform);
      const had = await sha256File(target).catch(() => undefined);
      let status: ImportStatus = 'kept';
      if (had !== t.sha256) {
        await fs.mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
        // checked in staging (sha256 against SHA256SUMS, machine); renamed over any other bytes
        await fs.chmod(t.file!, 0o755);
        await fs.rename(t.file!, target);
        status = had === undefined ? 'imported' : 'replaced';
      }
      result.tools.push({ platform: formatPlatform(t.platform), sha256: t.sha256, status, path: target });
    }
    ok = true;
    return result;
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
    // a refused bundle leaves no trace, not even the directories made for it
    if (!ok && createdRoot) await removeEmptyDirs(cache.root, createdRoot);
  }
}

/** rmdir `dir` and its parents up to `top` while they are empty (never anything with content). */
async function removeEmptyDirs(dir: string, top: string): Promise<void> {
  for (let d = dir; d.length >= top.length; d = path.dirname(d)) {
    try {
      await fs.rmdir(d);
    } catch {
      return;
    }
    if (d === top) return;
  }
}
