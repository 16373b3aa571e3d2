import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import type { Platform } from '../../core/types.js';
import { wrongMachine } from '../cache/elf.js';
import { parseManifest, type CacheManifest } from '../../core/cache-manifest.js';
import { formatPlatform, platformDir } from '../../core/platform.js';
import { BINARY_NAME, MANIFEST_NAME } from '../cache/store.js';
import { MAX_TOOL_SIZE, TOOL_NAME } from '../cache/tool.js';
import { isSystemError, withPath } from '../../core/errors.js';
import { classifyBundlePath, entryRel, SUMS_NAME, toolRel } from './layout.js';

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

/** The tool's own executable for a platform, when the bundle carries it. */
export interface BundleTool {
  platform: Platform;
  sha256: string;
  size: number;
  /** where it was extracted (with extractTo) */
  file?: string;
}

export interface BundleContents {
  entries: BundleEntry[];
  tools: BundleTool[];
  /** number of files in the archive */
  files: number;
  readme: string;
}

/**
 * Bounds, all applied before a byte is written or kept: the text members are read into memory
 * (each bounded, and all together); a binary's size is its manifest's, which must come first;
 * the tool's executable at most MAX_TOOL_SIZE;
 * every member must be listed in SHA256SUMS, which must come before the entries (so the member
 * count is bounded by it); and the whole unpacked stream may be at most MAX_EXPANSION times the
 * compressed file plus a slack (Go binaries compress about 3:1; a gzip bomb 1000:1).
 */
const MAX_README = 4 * 1024 * 1024;
const MAX_SUMS = 1024 * 1024;
const MAX_MANIFEST = 256 * 1024;
const MAX_TEXT_TOTAL = 32 * 1024 * 1024;
const MAX_BINARY = 1024 * 1024 * 1024;
const MAX_FILES = 4096;
const MAX_EXPANSION = 20;
const EXPANSION_SLACK = 64 * 1024 * 1024;
const MAX_UNPACKED = 16 * 1024 * 1024 * 1024;
const HEAD_BYTES = 4096;
const TAR_BLOCK = 512;

interface SeenFile {
  sha256: string;
  size: number;
  text?: string;
  head?: Buffer;
}

/** How many bytes the archive may unpack to, from its compressed size. */
export function unpackedLimit(compressedSize: number): number {
  return Math.min(MAX_UNPACKED, compressedSize * MAX_EXPANSION + EXPANSION_SLACK);
}

/** Counts the decompressed bytes and stops the stream when they pass `limit` (trailing data included). */
function byteBudget(limit: number): Transform {
  let total = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      total += chunk.length;
      if (total > limit)
        cb(
          new BundleError(
            `it unpacks to more than ${limit} bytes (over ${MAX_EXPANSION} times its compressed size)`,
          ),
        );
      else cb(null, chunk);
    },
  });
}

export async function readBundle(file: string, opts: { extractTo?: string } = {}): Promise<BundleContents> {
  const seen = new Map<string, SeenFile>();
  const input = await fs.open(file, 'r');
  const limit = unpackedLimit((await input.stat()).size);
  const extract = tar.extract();
  const done = pipeline(
    input.createReadStream({ autoClose: false }),
    createGunzip(),
    byteBudget(limit),
    extract,
  );
  done.catch(() => undefined); // handled where it is awaited; avoids an unhandled rejection meanwhile
  let sums: Map<string, string> | undefined;
  const manifests = new Map<string, CacheManifest>();
  let declared = 0;
  let textTotal = 0;
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
      const size = h.size ?? 0;
      // an executable: a kubeadm or the tool, streamed to disk after its header is checked
      const isBinary = cls.kind === 'binary' || cls.kind === 'tool';
      const isEntryFile = cls.kind === 'binary' || cls.kind === 'manifest' || cls.kind === 'tool';
      if (isEntryFile) {
        if (!sums)
          throw new BundleError(
            `member ${where} comes before ${SUMS_NAME} (missing or out of place: a bundle lists its members first; export it again with this version)`,
          );
        if (!sums.has(cls.rel)) throw new BundleError(`member ${where} is not listed in ${SUMS_NAME}`);
      }
      let wantSize: number;
      if (cls.kind === 'tool') {
        if (size > MAX_TOOL_SIZE)
          throw new BundleError(`member ${where} is larger than ${MAX_TOOL_SIZE} bytes`);
        wantSize = size;
      } else if (isBinary) {
        const manifest = manifests.get(manifestRelOf(cls.rel));
        if (!manifest)
          throw new BundleError(
            `member ${where} comes before its ${MANIFEST_NAME} (export the bundle again with this version)`,
          );
        if (manifest.size > MAX_BINARY)
          throw new BundleError(`member ${where} is larger than ${MAX_BINARY} bytes`);
        if (size !== manifest.size)
          throw new BundleError(`member ${where} is ${size} bytes; its manifest says ${manifest.size}`);
        wantSize = manifest.size;
      } else {
        wantSize = cls.kind === 'readme' ? MAX_README : cls.kind === 'sums' ? MAX_SUMS : MAX_MANIFEST;
        if (size > wantSize) throw new BundleError(`member ${where} is larger than ${wantSize} bytes`);
        textTotal += size;
        if (textTotal > MAX_TEXT_TOTAL)
          throw new BundleError(`its text members add up to more than ${MAX_TEXT_TOTAL} bytes`);
      }
      declared += size + TAR_BLOCK;
      if (declared > limit)
        throw new BundleError(
          `member ${where} would make it unpack to more than ${limit} bytes (over ${MAX_EXPANSION} times its compressed size)`,
        );

      const platform = isEntryFile ? (cls as { platform: Platform }).platform : undefined;
      const target =
        opts.extractTo && cls.kind === 'tool'
          ? path.join(opts.extractTo, 'tool', platformDir(platform!), TOOL_NAME)
          : opts.extractTo && isEntryFile
            ? path.join(
                opts.extractTo,
                (cls as { key: string }).key,
                platformDir(platform!),
                isBinary ? BINARY_NAME : MANIFEST_NAME,
              )
            : undefined;
      const hash = crypto.createHash('sha256');
      const textChunks: Buffer[] = [];
      let got = 0;
      let head = Buffer.alloc(0);
      let fh: fs.FileHandle | undefined;
      // a binary's header is checked before anything of it is written: a bomb of zeros, or the
      // wrong machine, stops at its first 4 KB
      const open = async () => {
        if (!target || fh) return;
        await fs.mkdir(path.dirname(target), { recursive: true });
        fh = await fs.open(target, 'wx', isBinary ? 0o755 : 0o644);
      };
      const checkHead = () => {
        const mismatch = wrongMachine(head, platform!);
        if (mismatch) throw new BundleError(`${cls.rel} is ${mismatch}`);
      };
      try {
        for await (const chunk of entry) {
          const buf = chunk as Buffer;
          got += buf.length;
          if (got > wantSize) throw new BundleError(`member ${where} is larger than ${wantSize} bytes`);
          hash.update(buf);
          if (!isBinary) {
            textChunks.push(buf);
            continue;
          }
          if (head.length < HEAD_BYTES) {
            head = Buffer.concat([head, buf]);
            if (head.length < HEAD_BYTES) continue;
            checkHead();
            await open();
            if (fh) await fh.write(head);
            head = head.subarray(0, HEAD_BYTES);
            continue;
          }
          if (fh) await fh.write(buf);
        }
        if (isBinary && got < HEAD_BYTES) {
          checkHead();
          await open();
          if (fh) await fh.write(head);
        }
        if (!isBinary && target) {
          await open();
          await fh!.write(Buffer.concat(textChunks));
        }
        if (fh) await fh.sync();
      } catch (err) {
        throw withPath(err, target);
      } finally {
        await fh?.close();
      }
      const sha256 = hash.digest('hex');
      if (sums?.has(cls.rel) && sums.get(cls.rel) !== sha256)
        throw new BundleError(
          `${cls.rel}: sha256 ${sha256} differs from ${SUMS_NAME} (${sums.get(cls.rel)})`,
        );
      const text = isBinary ? undefined : Buffer.concat(textChunks).toString('utf8');
      if (cls.kind === 'sums') sums = parseSums(text!);
      if (cls.kind === 'manifest') {
        try {
          manifests.set(cls.rel, parseManifest(text!));
        } catch (err) {
          throw new BundleError(`${cls.rel.replace(/manifest\.json$/, '')}${(err as Error).message}`);
        }
      }
      seen.set(cls.rel, { sha256, size: got, ...(isBinary ? { head } : { text }) });
    }
    await done;
  } catch (err) {
    extract.destroy();
    await done.catch(() => undefined);
    if (err instanceof BundleError) throw err;
    // an OS error (ENOSPC, EACCES… while reading the bundle or writing the staging dir) is
    // named as such by the caller's error mapping, never as a broken archive
    if (isSystemError(err)) throw err;
    throw new BundleError(`not a readable tar.gz: ${(err as Error).message}`);
  } finally {
    await input.close();
  }
  return checkContents(seen, opts.extractTo);
}

/** binaries/<key>/<plat>/kubeadm -> binaries/<key>/<plat>/manifest.json */
function manifestRelOf(binaryRel: string): string {
  return `${binaryRel.slice(0, binaryRel.length - BINARY_NAME.length)}${MANIFEST_NAME}`;
}

function parseSums(text: string): Map<string, string> {
  const sums = new Map<string, string>();
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  if (lines.length > MAX_FILES) throw new BundleError(`${SUMS_NAME} lists more than ${MAX_FILES} files`);
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

  const tools: BundleTool[] = [];
  for (const [rel, f] of seen) {
    const m = /^tool\/([^/]+)\//.exec(rel);
    if (!m || !f.head) continue;
    const [os, arch] = m[1]!.split('-') as [string, string];
    const platform: Platform = { os, arch };
    if (rel !== toolRel(platformDir(platform))) continue;
    tools.push({
      platform,
      sha256: f.sha256,
      size: f.size,
      ...(extractTo ? { file: path.join(extractTo, 'tool', platformDir(platform), TOOL_NAME) } : {}),
    });
  }
  tools.sort((a, b) => formatPlatform(a.platform).localeCompare(formatPlatform(b.platform)));

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
    if (manifest.platform !== formatPlatform(platform))
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
  return { entries, tools, files: seen.size, readme: readme.text };
}
