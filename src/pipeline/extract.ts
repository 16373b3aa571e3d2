import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { takeOneFile } from '../adapters/archive.js';
import { KfError, messageOf } from '../errors.js';

export const DEFAULT_OUT = './kubeadm-custom';

export interface ExtractedBinary {
  /** absolute path of the written binary */
  path: string;
  sha256: string;
  size: number;
}

/**
 * Takes the one binary out of a getArchive tar stream, writes it to a temp name next to
 * `out` while hashing it, makes it 0755 and renames it into place (atomic: `out` is either
 * the old file or the complete new one, never half a binary).
 */
export async function extractBinary(tar: NodeJS.ReadableStream, fileName: string, out: string): Promise<ExtractedBinary> {
  const dest = path.resolve(out);
  const dir = path.dirname(dest);
  if (!fs.existsSync(dir)) {
    throw new KfError(`the directory of --out ${out} does not exist`, `create ${dir} first or pass another --out`);
  }
  const tmp = path.join(dir, `.${path.basename(dest)}.tmp-${process.pid}-${Date.now()}`);
  const hash = createHash('sha256');
  const file = fs.createWriteStream(tmp, { mode: 0o700 });
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
    const size = await takeOneFile(tar, fileName, sink);
    if (size === 0) throw new KfError(`the build produced an empty ${fileName}`, 'rerun with --verbose to see the build log');
    fs.chmodSync(tmp, 0o755);
    fs.renameSync(tmp, dest);
    return { path: dest, sha256: hash.digest('hex'), size };
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    if (err instanceof KfError) throw err;
    throw new KfError(`cannot write the binary to ${out}: ${messageOf(err)}`, 'check free space and permissions there, or pass another --out');
  }
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
