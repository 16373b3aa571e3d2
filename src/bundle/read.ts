import crypto from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import type { Platform } from '../core/types.js';
import { wrongMachine } from '../cache/elf.js';
import { parseManifest, platformDir, platformText, type CacheManifest } from '../cache/manifest.js';
import { BINARY_NAME, MANIFEST_NAME } from '../cache/store.js';
import { classifyBundlePath, entryRel, SUMS_NAME } from './layout.js';

/**
 * Reads a bundle in one streaming pass and checks everything: member types and names (only the
 * layout's regular files, no duplicates), SHA256SUMS against every file, each manifest against
 * its binary (sha256, size, machine). With `extractTo`, binaries and manifests are written under
 * it as <key>/<os>-<arch>/<file> (names built from validated parts, never from the archive's
 * string); the caller discards that dir when this throws.
 */
export class BundleError extends Error {}

export interface BundleEntry {
  key: string;
  platform: Platform;
  manifest: CacheManifest;
  /** where it was extracted (with extractTo) */
  dir?: string;
}

export interface BundleContents {
  entries: BundleEntry[];
  /** number of files in the archive */
  files: number;
  readme: string;
}

const MAX_TEXT = 4 * 1024 * 1024;
const MAX_BINARY = 1024 * 1024 * 1024;
const MAX_FILES = 4096;
const HEAD_BYTES = 4096;

interface SeenFile {
  sha256: string;
  size: number;
  text?: string;
  head?: Buffer;
}

export async function readBundle(file: string, opts: { extractTo?: string } = {}): Promise<BundleContents> {
  const seen = new Map<string, SeenFile>();
  const extract = tar.extract();
  const done = pipeline(createReadStream(file), createGunzip(), extract);
  done.catch(() => undefined); // handled where it is awaited; avoids an unhandled rejection meanwhile
  try {
    for await (const entry of extract) {
      const h = entry.header;
      const where = JSON.stringify(h.name);
      if (h.type !== 'file') {
        const what =
          h.type === 'symlink' || h.type === 'link'
            ? `a ${h.type === 'link' ? 'hard ' : 'sym'}link to ${JSON.stringify(h.linkname)}`
            : `a ${h.type}`;
        throw new BundleError(`member ${where} is ${what}; only regular files are accepted`);
      }
      const cls = classifyBundlePath(h.name);
      if (typeof cls === 'string') throw new BundleError(`member ${where} is refused: ${cls}`);
      if (seen.has(cls.rel)) throw new BundleError(`member ${where} appears twice`);
      if (seen.size >= MAX_FILES) throw new BundleError(`more than ${MAX_FILES} members`);
      const isBinary = cls.kind === 'binary';
      const limit = isBinary ? MAX_BINARY : MAX_TEXT;
      if ((h.size ?? 0) > limit) throw new BundleError(`member ${where} is larger than ${limit} bytes`);

      let fh: fs.FileHandle | undefined;
      if (opts.extractTo && (cls.kind === 'binary' || cls.kind === 'manifest')) {
        const dir = path.join(opts.extractTo, cls.key, platformDir(cls.platform));
        await fs.mkdir(dir, { recursive: true });
        fh = await fs.open(
          path.join(dir, isBinary ? BINARY_NAME : MANIFEST_NAME),
          'wx',
          isBinary ? 0o755 : 0o644,
        );
      }
      const hash = crypto.createHash('sha256');
      const textChunks: Buffer[] = [];
      let size = 0;
      let head = Buffer.alloc(0);
      try {
        for await (const chunk of entry) {
          const buf = chunk as Buffer;
          size += buf.length;
          if (size > limit) throw new BundleError(`member ${where} is larger than ${limit} bytes`);
          hash.update(buf);
          if (isBinary) {
            if (head.length < HEAD_BYTES)
              head = Buffer.concat([head, buf.subarray(0, HEAD_BYTES - head.length)]);
          } else {
            textChunks.push(buf);
          }
          if (fh) await fh.write(buf);
        }
        if (fh) await fh.sync();
      } finally {
        await fh?.close();
      }
      seen.set(cls.rel, {
        sha256: hash.digest('hex'),
        size,
        ...(isBinary ? { head } : { text: Buffer.concat(textChunks).toString('utf8') }),
      });
    }
    await done;
  } catch (err) {
    extract.destroy();
    await done.catch(() => undefined);
    if (err instanceof BundleError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR') throw err;
    throw new BundleError(`not a readable tar.gz: ${(err as Error).message}`);
  }
  return checkContents(seen, opts.extractTo);
}

function parseSums(text: string): Map<string, string> {
  const sums = new Map<string, string>();
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  for (const [i, line] of lines.entries()) {
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (!m) throw new BundleError(`${SUMS_NAME} line ${i + 1} is not "<sha256>  <file>"`);
    const [, sha, name] = m as unknown as [string, string, string];
    if (sums.has(name)) throw new BundleError(`${SUMS_NAME} lists ${name} twice`);
    sums.set(name, sha);
  }
  return sums;
}

function checkContents(seen: Map<string, SeenFile>, extractTo: string | undefined): BundleContents {
  const sumsFile = seen.get(SUMS_NAME);
  if (!sumsFile?.text) throw new BundleError(`${SUMS_NAME} is missing`);
  const sums = parseSums(sumsFile.text);
  for (const [rel, f] of seen) {
    if (rel === SUMS_NAME) continue;
    const want = sums.get(rel);
    if (!want) throw new BundleError(`${rel} is not listed in ${SUMS_NAME}`);
    if (want !== f.sha256)
      throw new BundleError(`${rel}: sha256 ${f.sha256} differs from ${SUMS_NAME} (${want})`);
  }
  for (const rel of sums.keys()) {
    if (!seen.has(rel)) throw new BundleError(`${SUMS_NAME} lists ${rel}, which the bundle does not contain`);
  }
  const readme = seen.get('README.txt');
  if (readme?.text === undefined) throw new BundleError('README.txt is missing');

  const entries: BundleEntry[] = [];
  const entryDirs = new Set<string>();
  for (const rel of seen.keys()) {
    const m = /^binaries\/([^/]+)\/([^/]+)\//.exec(rel);
    if (m) entryDirs.add(`${m[1]}/${m[2]}`);
  }
  for (const kp of [...entryDirs].sort()) {
    const [key, platName] = kp.split('/') as [string, string];
    const binary = seen.get(entryRel(key, platName, BINARY_NAME));
    const manifestFile = seen.get(entryRel(key, platName, MANIFEST_NAME));
    if (!binary?.head) throw new BundleError(`binaries/${kp}/ has a manifest but no ${BINARY_NAME}`);
    if (manifestFile?.text === undefined)
      throw new BundleError(`binaries/${kp}/ has a ${BINARY_NAME} but no manifest.json`);
    let manifest: CacheManifest;
    try {
      manifest = parseManifest(manifestFile.text);
    } catch (err) {
      throw new BundleError(`binaries/${kp}/${(err as Error).message}`);
    }
    const [os, arch] = platName.split('-') as [string, string];
    const platform: Platform = { os, arch };
    if (manifest.key !== key)
      throw new BundleError(`binaries/${kp}/manifest.json is for key ${manifest.key}`);
    if (manifest.platform !== platformText(platform))
      throw new BundleError(`binaries/${kp}/manifest.json is for ${manifest.platform}`);
    if (manifest.sha256 !== binary.sha256) {
      throw new BundleError(
        `binaries/${kp}/${BINARY_NAME}: sha256 ${binary.sha256} differs from its manifest's ${manifest.sha256}`,
      );
    }
    if (manifest.size !== binary.size)
      throw new BundleError(
        `binaries/${kp}/${BINARY_NAME}: size ${binary.size} differs from its manifest's ${manifest.size}`,
      );
    const mismatch = wrongMachine(binary.head, platform);
    if (mismatch) throw new BundleError(`binaries/${kp}/${BINARY_NAME} is ${mismatch}`);
    entries.push({
      key,
      platform,
      manifest,
      ...(extractTo ? { dir: path.join(extractTo, key, platName) } : {}),
    });
  }
  if (entries.length === 0) throw new BundleError('the bundle contains no binaries');
  return { entries, files: seen.size, readme: readme.text };
}
