import crypto from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';
import type { Platform } from '../../core/types.js';
import { type CacheManifest, serializeManifest } from '../../core/cache-manifest.js';
import { formatPlatform, platformDir } from '../../core/platform.js';
import {
  BINARY_NAME,
  checkEntryDir,
  MANIFEST_NAME,
  type BinaryCache,
  type CacheEntry,
} from '../cache/store.js';
import { sha256File } from '../../adapters/fs.js';
import { sha256Hex } from '../../core/digest.js';
import type { ToolFile } from '../cache/tool.js';
import { BUNDLE_ROOT, entryRel, README_NAME, SUMS_NAME, toolRel } from './layout.js';
import { bundleReadme } from './readme.js';

export interface ExportSelection {
  /** only this gitVersion, e.g. "v1.20.2" */
  version?: string;
  /** only these platforms */
  platforms?: Platform[];
  /** only these keys */
  keys?: string[];
}

export interface ExportResult {
  out: string;
  sha256: string;
  size: number;
  entries: { key: string; platform: string; gitVersion: string; sha256: string }[];
  tools: { platform: string; sha256: string; size: number }[];
}

/** The tool's executable for a platform, checked (checkToolFile) by the caller. */
export type ExportTool = ToolFile & { platform: Platform };

/** The cache entries a selection picks, each checked (sha256, machine) before it may be shipped. */
export async function selectEntries(
  cache: BinaryCache,
  sel: ExportSelection,
): Promise<{ entries: CacheEntry[]; corrupt: string[] }> {
  const { entries } = await cache.list();
  const wanted = entries.filter(
    (e) =>
      (!sel.version || e.manifest.gitVersion === sel.version) &&
      (!sel.keys?.length || sel.keys.includes(e.manifest.key)) &&
      (!sel.platforms?.length || sel.platforms.some((p) => formatPlatform(p) === e.manifest.platform)),
  );
  const good: CacheEntry[] = [];
  const corrupt: string[] = [];
  for (const e of wanted) {
    const [os, arch] = e.manifest.platform.split('/') as [string, string];
    const checked = await checkEntryDir(e.dir, e.manifest.key, { os, arch });
    if ('entry' in checked) good.push(checked.entry);
    else corrupt.push(`${e.dir}: ${checked.problem}`);
  }
  return { entries: good, corrupt };
}

/**
 * Writes the bundle: a gzip tar of the layout in layout.ts, members sorted, owner root, fixed
 * modes and one mtime (SOURCE_DATE_EPOCH, else the newest manifest's created) so the same
 * entries give the same bytes. Written to a temp name beside `out`, then renamed.
 */
export async function exportBundle(
  entries: CacheEntry[],
  out: string,
  toolVersion: string,
  tools: ExportTool[] = [],
): Promise<ExportResult> {
  const toolsSorted = [...tools].sort((a, b) =>
    formatPlatform(a.platform).localeCompare(formatPlatform(b.platform)),
  );
  const sorted = [...entries].sort((a, b) =>
    `${a.manifest.key}/${a.manifest.platform}`.localeCompare(`${b.manifest.key}/${b.manifest.platform}`),
  );
  const manifests: CacheManifest[] = sorted.map((e) => e.manifest);
  const epoch = Number(process.env.SOURCE_DATE_EPOCH);
  const mtime =
    Number.isSafeInteger(epoch) && epoch > 0
      ? new Date(epoch * 1000)
      : new Date(Math.max(...manifests.map((m) => Date.parse(m.created))));

  const readme = bundleReadme(
    manifests,
    toolVersion,
    toolsSorted.map((t) => ({
      platform: formatPlatform(t.platform),
      rel: toolRel(platformDir(t.platform)),
      sha256: t.sha256,
    })),
  );
  const sums: string[] = [`${sha256Hex(readme)}  ${README_NAME}`];
  type Member = { rel: string; mode: number } & ({ file: string; size: number } | { data: Buffer });
  const members: Member[] = [{ rel: README_NAME, mode: 0o644, data: Buffer.from(readme) }];
  for (const e of sorted) {
    const [os, arch] = e.manifest.platform.split('/') as [string, string];
    const dir = platformDir({ os, arch });
    const manifestText = Buffer.from(serializeManifest(e.manifest));
    const binRel = entryRel(e.manifest.key, dir, BINARY_NAME);
    const manRel = entryRel(e.manifest.key, dir, MANIFEST_NAME);
    // the manifest before its binary: a reader then knows the binary's size before writing it
    members.push({ rel: manRel, mode: 0o644, data: manifestText });
    members.push({ rel: binRel, mode: 0o755, file: e.binary, size: e.manifest.size });
    sums.push(`${e.manifest.sha256}  ${binRel}`, `${sha256Hex(manifestText)}  ${manRel}`);
  }
  for (const t of toolsSorted) {
    const rel = toolRel(platformDir(t.platform));
    members.push({ rel, mode: 0o755, file: t.file, size: t.size });
    sums.push(`${t.sha256}  ${rel}`);
  }
  // SHA256SUMS right after the README: it bounds which members (and how many) may follow
  members.splice(1, 0, { rel: SUMS_NAME, mode: 0o644, data: Buffer.from(`${sums.join('\n')}\n`) });

  const absOut = path.resolve(out);
  const tmp = path.join(
    path.dirname(absOut),
    `.${path.basename(absOut)}.kf-${process.pid}-${crypto.randomBytes(4).toString('hex')}`,
  );
  const pack = tar.pack();
  const writing = pipeline(pack, createGzip({ level: 9 }), createWriteStream(tmp, { mode: 0o644 }));
  writing.catch(() => undefined); // handled where it is awaited; avoids an unhandled rejection meanwhile
  try {
    for (const m of members) {
      const header = {
        name: `${BUNDLE_ROOT}/${m.rel}`,
        mode: m.mode,
        mtime,
        uid: 0,
        gid: 0,
        uname: 'root',
        gname: 'root',
        type: 'file' as const,
      };
      if ('data' in m) {
        await new Promise<void>((resolve, reject) =>
          pack.entry({ ...header, size: m.data.length }, m.data, (err) => (err ? reject(err) : resolve())),
        );
      } else {
        const sink = pack.entry({ ...header, size: m.size });
        // the entry was checked by the caller; a file that changed size since fails here
        await pipeline(createReadStream(m.file), sink);
      }
    }
    pack.finalize();
    await writing;
    const size = (await fs.stat(tmp)).size;
    const digest = await sha256File(tmp);
    await fs.rename(tmp, absOut);
    return {
      out: absOut,
      sha256: digest,
      size,
      entries: sorted.map((e) => ({
        key: e.manifest.key,
        platform: e.manifest.platform,
        gitVersion: e.manifest.gitVersion,
        sha256: e.manifest.sha256,
      })),
      tools: toolsSorted.map((t) => ({
        platform: formatPlatform(t.platform),
        sha256: t.sha256,
        size: t.size,
      })),
    };
  } catch (err) {
    pack.destroy();
    await writing.catch(() => undefined);
    throw err;
  } finally {
    await fs.rm(tmp, { force: true });
  }
}
