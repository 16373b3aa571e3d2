import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { KfError, messageOf } from '../core/errors.js';

export const DEFAULT_OUT = './kubeadm-custom';

export interface ExtractedBinary {
  /** the complete binary under a temp name next to `finalPath` (verify runs it there) */
  tempPath: string;
  /** absolute path it gets by placeBinary */
  finalPath: string;
  sha256: string;
  size: number;
}

/**
 * Takes the one binary out of a getArchive tar stream and writes it, hashing it on the way, to
 * a temp name next to `out`, mode 0755. `out` itself is only touched by placeBinary (an atomic
 * rename), so a failed build or verify leaves nothing there.
 */
export async function extractBinary(
  tar: NodeJS.ReadableStream,
  fileName: string,
  out: string,
): Promise<ExtractedBinary> {
  const finalPath = path.resolve(out);
  const dir = path.dirname(finalPath);
  if (!fs.existsSync(dir)) {
    throw new KfError(
      `the directory of --out ${out} does not exist`,
      `create ${dir} first or pass another --out`,
    );
  }
  const tempPath = path.join(dir, `.${path.basename(finalPath)}.tmp-${process.pid}-${Date.now()}`);
  const hash = createHash('sha256');
  const file = fs.createWriteStream(tempPath, { mode: 0o700 });
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      if (file.write(chunk)) cb();
      else file.once('drain', () => cb());
    },
    final(cb) {
      file.end(() => cb());
    },
  });
  file.on('error', (err) => sink.destroy(err));
  try {
    // the tar reader is loaded only after a build, never for a cache hit
    const { takeOneFile } = await import('../adapters/archive.js');
    const size = await takeOneFile(tar, fileName, sink);
    if (size === 0)
      throw new KfError(
        `the build produced an empty ${fileName}`,
        'rerun with --verbose to see the build log',
      );
    fs.chmodSync(tempPath, 0o755);
    return { tempPath, finalPath, sha256: hash.digest('hex'), size };
  } catch (err) {
    fs.rmSync(tempPath, { force: true });
    if (err instanceof KfError) throw err;
    throw new KfError(
      `cannot write the binary next to ${out}: ${messageOf(err)}`,
      'check free space and permissions there, or pass another --out',
    );
  }
}

/** Renames the extracted binary into place (atomic on one file system). */
export function placeBinary(bin: ExtractedBinary): string {
  try {
    fs.renameSync(bin.tempPath, bin.finalPath);
  } catch (err) {
    fs.rmSync(bin.tempPath, { force: true });
    throw new KfError(
      `cannot write ${bin.finalPath}: ${messageOf(err)}`,
      'check that it is not a directory and that it is writable, or pass another --out',
    );
  }
  return bin.finalPath;
}

/** Removes the temp binary (failed verify, or an interrupted run). */
export function discardBinary(bin: ExtractedBinary): void {
  fs.rmSync(bin.tempPath, { force: true });
}

const BUILDINFO_MAGIC = Buffer.from('\xff Go buildinf:', 'latin1');

/**
 * The Go version a binary was built with, read from its embedded build info (present with
 * -s -w too; Go >= 1.18 layout: varint-prefixed strings after a 32-byte header). "" when the
 * binary has none, e.g. built by an older Go.
 */
export function goVersionOf(binary: string): string {
  const buf = fs.readFileSync(binary);
  const at = buf.indexOf(BUILDINFO_MAGIC);
  if (at < 0 || at + 33 > buf.length) return '';
  const flags = buf[at + 15] ?? 0;
  if ((flags & 0x2) === 0) return '';
  let pos = at + 32;
  let len = 0;
  let shift = 0;
  for (;;) {
    const b = buf[pos++];
    if (b === undefined) return '';
    len |= (b & 0x7f) << shift;
    if ((b & 0x80) === 0) break;
    shift += 7;
  }
  const v = buf.subarray(pos, pos + len).toString('utf8');
  return /^go\d/.test(v) ? v : '';
}
