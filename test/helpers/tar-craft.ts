import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
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
