import type { Readable } from 'node:stream';
import fs from 'node:fs';
import { KfError, messageOf } from '../core/errors.js';

/**
 * Files on a node are untrusted input: where a certificate should be there may be a FIFO (an
 * open for reading waits for a writer forever), a link to /dev/zero (a read never ends), or a
 * sparse file of a gigabyte (read whole, it takes a gigabyte of memory). Every PKI, kubeconfig
 * and manifest read goes through readBoundedFile: the file is opened without blocking, the
 * opened descriptor is checked to be a regular file of at most the limit for its kind, and the
 * read itself stops one byte past the limit, so a file that grows meanwhile is refused too.
 */

const MiB = 1024 * 1024;

/** What each kind of file may weigh: far above anything real (a CA bundle of hundreds of CAs fits). */
export const READ_LIMITS = {
  certificate: MiB,
  key: MiB,
  kubeconfig: 4 * MiB,
  manifest: MiB,
  config: MiB,
} as const;

export type ReadKind = keyof typeof READ_LIMITS;

const NOUNS: Record<ReadKind, string> = {
  certificate: 'certificate',
  key: 'private key',
  kubeconfig: 'kubeconfig',
  manifest: 'static pod manifest',
  config: 'configuration file',
};

/** A file refused for what it is (not a regular file, too big), or one that could not be opened or read. */
export class FileReadError extends KfError {
  readonly file: string;
  /** the reason alone, without the path: "a FIFO, not a regular file" */
  readonly reason: string;
  /** true when the file is there but is not something this tool reads (kind or size) */
  readonly refused: boolean;

  constructor(file: string, noun: string, reason: string, refused: boolean) {
    super(
      `cannot read ${noun} ${file}: ${reason}`,
      refused
        ? `replace ${file} with the real ${noun} (a regular file), or move it away; nothing was written`
        : `check the path and its permissions; nothing was written`,
    );
    this.name = 'FileReadError';
    this.file = file;
    this.reason = reason;
    this.refused = refused;
  }
}

export function isFileReadError(err: unknown): err is FileReadError {
  return err instanceof FileReadError;
}

/** What a non-regular file is, in words. */
export function fileTypeName(st: fs.Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isDirectory()) return 'a directory';
  if (st.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

function sizeText(bytes: number): string {
  return bytes >= MiB ? `${(bytes / MiB).toFixed(1)} MiB` : `${bytes} bytes`;
}

export interface BoundedReadOptions {
  /** refuse a symbolic link at `file` itself (default: links are followed, as kubelet's are) */
  noFollow?: boolean;
  /** a different limit than the kind's (tests, callers that know better) */
  maxBytes?: number;
  /** how the file is named in errors (default: by its kind, e.g. "certificate") */
  what?: string;
}

/**
 * The bytes of `file`, a regular file of at most READ_LIMITS[kind] bytes. FIFOs, sockets,
 * devices and directories are refused before any byte is read, and so is a file over the
 * limit; the checks are made on the opened descriptor (fstat), so a file swapped between a
 * check and the open cannot slip through. Throws FileReadError naming the file.
 */
export function readBoundedFile(file: string, kind: ReadKind, opts: BoundedReadOptions = {}): Buffer {
  const noun = opts.what ?? NOUNS[kind];
  const max = opts.maxBytes ?? READ_LIMITS[kind];
  // a device is refused before it is even opened (opening some has effects of its own)
  let pre: fs.Stats;
  try {
    pre = opts.noFollow ? fs.lstatSync(file) : fs.statSync(file);
  } catch (err) {
    throw new FileReadError(file, noun, messageOf(err), false);
  }
  if (!pre.isFile()) throw new FileReadError(file, noun, `${fileTypeName(pre)}, not a regular file`, true);
  let fd: number;
  try {
    // O_NONBLOCK: should a FIFO be swapped in after the stat, its open returns instead of waiting
    const flags =
      fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | (opts.noFollow ? fs.constants.O_NOFOLLOW : 0);
    fd = fs.openSync(file, flags);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (opts.noFollow && code === 'ELOOP')
      throw new FileReadError(file, noun, 'a symbolic link, not a regular file', true);
    throw new FileReadError(file, noun, messageOf(err), false);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new FileReadError(file, noun, `${fileTypeName(st)}, not a regular file`, true);
    if (st.size > max)
      throw new FileReadError(file, noun, `${sizeText(st.size)}, over the limit of ${sizeText(max)}`, true);
    // one byte more than allowed is read, so growth during the read shows
    let buf = Buffer.alloc(Math.min(st.size, max) + 1);
    let total = 0;
    for (;;) {
      if (total === buf.length) {
        if (total > max)
          throw new FileReadError(file, noun, `grew past the limit of ${sizeText(max)} while read`, true);
        // it grew since fstat: a bigger buffer, still at most the limit + 1
        const next = Buffer.alloc(Math.min(buf.length * 2, max + 1));
        buf.copy(next, 0, 0, total);
        buf = next;
      }
      const n = fs.readSync(fd, buf, total, buf.length - total, null);
      if (n === 0) return buf.subarray(0, total);
      total += n;
    }
  } catch (err) {
    if (isFileReadError(err)) throw err;
    throw new FileReadError(file, noun, messageOf(err), false);
  } finally {
    fs.closeSync(fd);
  }
}

/** readBoundedFile as UTF-8 text. */
export function readBoundedText(file: string, kind: ReadKind, opts: BoundedReadOptions = {}): string {
  return readBoundedFile(file, kind, opts).toString('utf8');
}

/**
 * Reads a stream up to `limit` bytes; more is refused (`tooLarge`) as soon as it arrives (stdin may be
 * /dev/zero or a pipe that never ends; a file may be a device).
 */
export async function readBoundedStream(
  input: NodeJS.ReadableStream,
  limit: number,
  tooLarge: () => KfError,
): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of input) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buf.length;
    if (size > limit) {
      (input as Readable).destroy?.();
      throw tooLarge();
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}
