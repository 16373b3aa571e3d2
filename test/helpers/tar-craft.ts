import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip, gzipSync } from 'node:zlib';
import tar, { type Header } from 'tar-stream';

/** One tar member as tar-stream writes it: any type, any name (hostile ones included). */
export interface CraftMember {
  name: string;
  type?: Header['type'];
  data?: Buffer | string;
  linkname?: string;
  mode?: number;
  devmajor?: number;
  devminor?: number;
}

/** Writes a gzip tar with exactly these members, in this order. */
export async function craftTarGz(file: string, members: CraftMember[]): Promise<void> {
  const pack = tar.pack();
  const writing = pipeline(pack, createGzip(), fs.createWriteStream(file));
  writing.catch(() => undefined); // handled where it is awaited; avoids an unhandled rejection meanwhile
  for (const m of members) {
    const data = m.data === undefined ? undefined : Buffer.from(m.data);
    const header = {
      name: m.name,
      type: m.type ?? 'file',
      mode: m.mode ?? 0o644,
      ...(m.linkname !== undefined ? { linkname: m.linkname } : {}),
      ...(m.devmajor !== undefined ? { devmajor: m.devmajor, devminor: m.devminor ?? 0 } : {}),
      ...(data ? { size: data.length } : {}),
    };
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null) => (err ? reject(err) : resolve());
      pack.entry(header, data ?? Buffer.alloc(0), done);
    });
  }
  pack.finalize();
  await writing;
}

/** Reads every member of a gzip tar (for re-packing a real bundle with changes). */
export async function readTarGz(file: string): Promise<CraftMember[]> {
  const extract = tar.extract();
  const done = pipeline(fs.createReadStream(file), createGunzip(), extract);
  done.catch(() => undefined); // handled where it is awaited; avoids an unhandled rejection meanwhile
  const members: CraftMember[] = [];
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    members.push({
      name: entry.header.name,
      type: entry.header.type,
      mode: entry.header.mode,
      data: Buffer.concat(chunks),
    });
  }
  await done;
  return members;
}

/** The uncompressed tar bytes of these members; without `end`, no end-of-archive blocks. */
async function rawTar(members: CraftMember[], end: boolean): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c) => chunks.push(c as Buffer));
  const ended = new Promise<void>((resolve) => pack.on('end', resolve));
  for (const m of members) {
    const data = Buffer.from(m.data ?? '');
    await new Promise<void>((resolve, reject) =>
      pack.entry(
        {
          name: m.name,
          type: m.type ?? 'file',
          mode: m.mode ?? 0o644,
          size: data.length,
          ...(m.linkname !== undefined ? { linkname: m.linkname } : {}),
        },
        data,
        (err) => (err ? reject(err) : resolve()),
      ),
    );
  }
  pack.finalize();
  await ended;
  const all = Buffer.concat(chunks);
  return end ? all : all.subarray(0, all.length - 1024);
}

/** The 512-byte tar header tar-stream writes for a regular file of `size` bytes. */
async function fileHeader(name: string, size: number, mode: number): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c) => chunks.push(c as Buffer));
  pack.entry({ name, size, mode });
  await new Promise((resolve) => setTimeout(resolve, 20));
  pack.destroy();
  return Buffer.concat(chunks).subarray(0, 512);
}

/**
 * A gzip bomb: `before`, then one member of `size` bytes (`head`, then zeros), then `after`,
 * written as concatenated gzip members (which gunzip reads as one stream) so that a 512 MB
 * member costs ~0.5 MB on disk and no time to make.
 */
export async function craftBombTarGz(
  file: string,
  before: CraftMember[],
  bomb: { name: string; size: number; head?: Buffer; mode?: number },
  after: CraftMember[] = [],
): Promise<void> {
  const out = fs.openSync(file, 'w');
  try {
    fs.writeSync(out, gzipSync(await rawTar(before, false)));
    const head = bomb.head ?? Buffer.alloc(0);
    fs.writeSync(
      out,
      gzipSync(Buffer.concat([await fileHeader(bomb.name, bomb.size, bomb.mode ?? 0o755), head])),
    );
    const MB = 1024 * 1024;
    const zerosMB = gzipSync(Buffer.alloc(MB), { level: 9 });
    let left = bomb.size - head.length;
    for (; left >= MB; left -= MB) fs.writeSync(out, zerosMB);
    const pad = (512 - (bomb.size % 512)) % 512;
    fs.writeSync(out, gzipSync(Buffer.alloc(left + pad)));
    fs.writeSync(out, gzipSync(await rawTar(after, true)));
  } finally {
    fs.closeSync(out);
  }
}
