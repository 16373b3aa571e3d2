import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  debianGoroot,
  DEB_MAX_BYTES,
  DEB_MAX_RATIO,
  debUnpackLimit,
  GOROOT_LIMITS,
  gorootLinkRoots,
  parseDebianGoPackage,
  parseLdd,
} from '../core/go-image-layout.js';
import { KfError, messageOf, escapeControl, UsageError } from '../core/errors.js';
import type { TarEntry } from './archive.js';

const run = promisify(execFile);

/** OS errors named with the path (ENOSPC, EACCES, ENOTDIR, EPERM …), never "unexpected failure". */
function osError(err: unknown, what: string, file: string): KfError {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  return new KfError(
    `${what} ${escapeControl(file)}: ${code ? `${code} ` : ''}${messageOf(err).split('\n')[0]}`,
    'check the path and its permissions, then retry',
  );
}

function within(file: string, root: string): boolean {
  return file === root || file.startsWith(root + path.sep);
}

/** A Go toolchain on this host, ready to pack: the files under GOROOT with links followed. */
export interface Toolchain {
  goroot: string;
  /** the VERSION file's text, if any */
  versionFile?: string;
  /** GOROOT's entries relative to it ("/" separated), links resolved to what they lead to */
  entries: TarEntry[];
  bytes: number;
  /** bin/go and the pkg/tool binaries that are dynamically linked (they need `ldd`'s libraries) */
  dynamic: string[];
}

/**
 * Reads a GOROOT like `cp -aL` would, but bounded: a link is followed only when it leads inside
 * the GOROOT or Debian's `share/go-1.NN` beside it (core/go-image-layout.ts gorootLinkRoots), anything
 * else is refused; modes lose setuid/setgid and group/world write; entry count and bytes are
 * limited before anything is sent. A directory that is no Go root is refused with what is missing.
 * `inside`: the GOROOT and every directory its links may lead into must lie in it, links
 * resolved (unpacked packages: a package's own link must not bring in a host directory).
 */
export function readToolchain(gorootArg: string, hint: string, inside?: string): Toolchain {
  let goroot: string;
  try {
    goroot = fs.realpathSync(gorootArg);
    if (!fs.statSync(goroot).isDirectory())
      throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR')
      throw new UsageError(`${escapeControl(gorootArg)} is no directory`, hint);
    throw osError(err, 'cannot read', gorootArg);
  }
  const roots = gorootLinkRoots(goroot)
    .filter((r) => fs.existsSync(r))
    .map((r) => fs.realpathSync(r));
  if (inside !== undefined) {
    const box = fs.realpathSync(inside);
    const leaves = [goroot, ...roots].find((r) => !within(r, box));
    if (leaves !== undefined)
      throw new UsageError(
        `${escapeControl(gorootArg)} leads outside the unpacked packages (to ${escapeControl(leaves)}): a link, not Debian's Go`,
        hint,
      );
  }
  const goBin = path.join(goroot, 'bin', 'go');
  if (!isFile(goBin))
    throw new UsageError(`${escapeControl(gorootArg)} is no Go root: bin/go is missing`, hint);
  if (!isDir(path.join(goroot, 'src', 'runtime'))) {
    throw new UsageError(
      `${escapeControl(gorootArg)} has no Go standard library source (src/runtime is missing)`,
      `${hint}; from Debian's packages pass golang-1.NN-src with golang-1.NN-go`,
    );
  }
  const entries: TarEntry[] = [];
  let bytes = 0;
  const add = (e: TarEntry) => {
    entries.push(e);
    if (entries.length > GOROOT_LIMITS.entries) {
      throw new UsageError(
        `${escapeControl(gorootArg)} has more than ${GOROOT_LIMITS.entries} entries: not a Go toolchain`,
        hint,
      );
    }
  };
  const walk = (dir: string, rel: string, chain: Set<string>) => {
    let names: string[];
    try {
      names = fs.readdirSync(dir).sort();
    } catch (err) {
      throw osError(err, 'cannot read', dir);
    }
    for (const name of names) {
      const abs = path.join(dir, name);
      const relName = rel ? `${rel}/${name}` : name;
      let real = abs;
      let st = fs.lstatSync(abs);
      if (st.isSymbolicLink()) {
        try {
          real = fs.realpathSync(abs);
        } catch {
          throw new UsageError(
            `${escapeControl(relName)} in ${escapeControl(gorootArg)} is a link to nothing (${escapeControl(fs.readlinkSync(abs))})`,
            hint,
          );
        }
        if (!roots.some((r) => within(real, r))) {
          throw new UsageError(
            `${escapeControl(relName)} in ${escapeControl(gorootArg)} links outside the Go root (${escapeControl(fs.readlinkSync(abs))})`,
            hint,
          );
        }
        st = fs.statSync(real);
      }
      if (st.isDirectory()) {
        if (chain.has(real))
          throw new UsageError(
            `${escapeControl(relName)} in ${escapeControl(gorootArg)} is a link loop`,
            hint,
          );
        add({ name: relName, type: 'directory', mode: 0o755 });
        walk(real, relName, new Set([...chain, real]));
      } else if (st.isFile()) {
        if (st.size > GOROOT_LIMITS.fileBytes)
          throw new UsageError(
            `${escapeControl(relName)} in ${escapeControl(gorootArg)} is larger than ${GOROOT_LIMITS.fileBytes} bytes`,
            hint,
          );
        bytes += st.size;
        if (bytes > GOROOT_LIMITS.bytes)
          throw new UsageError(
            `${escapeControl(gorootArg)} holds more than ${GOROOT_LIMITS.bytes} bytes: not a Go toolchain`,
            hint,
          );
        // executables stay executable; no setuid/setgid/sticky, no group/world write
        add({ name: relName, type: 'file', mode: st.mode & 0o755, size: st.size, source: real });
      }
      // sockets, fifos, devices: nothing a toolchain needs, left out
    }
  };
  walk(goroot, '', new Set([goroot]));
  const versionPath = path.join(goroot, 'VERSION');
  const versionFile = isFile(versionPath) ? fs.readFileSync(versionPath, 'utf8').slice(0, 4096) : undefined;
  const dynamic = entries
    .filter(
      (e) =>
        e.type === 'file' &&
        (e.name === 'bin/go' || e.name === 'bin/gofmt' || /^pkg\/tool\/[^/]+\/[^/]+$/.test(e.name)),
    )
    .filter((e) => (e.mode & 0o111) !== 0 && Boolean(elfInterpreter(e.source!)))
    .map((e) => e.source!);
  return { goroot, versionFile, entries, bytes, dynamic };
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The ELF program interpreter (PT_INTERP) of a binary, "" for a static ELF, undefined for a
 * file that is no ELF. Read from the headers, never by running the file.
 */
export function elfInterpreter(file: string): string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const head = Buffer.alloc(64);
    if (fs.readSync(fd, head, 0, 64, 0) < 52 || head.toString('latin1', 0, 4) !== '\x7fELF') return undefined;
    const is64 = head[4] === 2;
    const le = head[5] === 1;
    const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const u64 = (b: Buffer, o: number) => Number(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o));
    const phoff = is64 ? u64(head, 0x20) : u32(head, 0x1c);
    const phentsize = u16(head, is64 ? 0x36 : 0x2a);
    const phnum = Math.min(u16(head, is64 ? 0x38 : 0x2c), 256);
    const ph = Buffer.alloc(phentsize);
    for (let i = 0; i < phnum; i++) {
      if (fs.readSync(fd, ph, 0, phentsize, phoff + i * phentsize) < phentsize) break;
      if (u32(ph, 0) !== 3) continue; // PT_INTERP
      const offset = is64 ? u64(ph, 8) : u32(ph, 4);
      const size = Math.min(is64 ? u64(ph, 32) : u32(ph, 16), 4096);
      const name = Buffer.alloc(size);
      fs.readSync(fd, name, 0, size, offset);
      return name.toString('latin1').replace(/\0.*$/s, '') || 'unknown';
    }
    return '';
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The shared libraries (and the loader) that dynamically linked binaries need, as
 * image path → host file: `ldd` names them (argument array), links are resolved to the files.
 */
export async function sharedLibraries(binaries: readonly string[]): Promise<TarEntry[]> {
  const libs = new Set<string>();
  for (const bin of binaries) {
    let stdout: string;
    try {
      ({ stdout } = await run('ldd', [bin], { timeout: 30_000 }));
    } catch (err) {
      throw new KfError(
        `ldd cannot list the libraries of ${escapeControl(bin)}: ${messageOf(err).split('\n')[0]}`,
        'install libc-bin (ldd), or use a statically linked Go (Debian 1.21 and later, or the official tarball)',
      );
    }
    for (const lib of parseLdd(stdout)) libs.add(lib);
  }
  const out: TarEntry[] = [];
  for (const lib of [...libs].sort()) {
    try {
      const real = fs.realpathSync(lib);
      const st = fs.statSync(real);
      out.push({
        name: lib.replace(/^\/+/, ''),
        type: 'file',
        mode: st.mode & 0o755,
        size: st.size,
        source: real,
      });
    } catch (err) {
      throw osError(err, 'cannot read shared library', lib);
    }
  }
  return out;
}

/** A busybox that runs in an empty image: a static ELF. */
export function readBusybox(file: string): TarEntry {
  const interp = elfInterpreter(file);
  if (interp === undefined)
    throw new UsageError(
      `${escapeControl(file)} is no busybox binary (not an ELF file)`,
      "install Debian's busybox-static or pass --busybox PATH",
    );
  if (interp !== '')
    throw new UsageError(
      `${escapeControl(file)} is dynamically linked: it would not run in the image`,
      "install Debian's busybox-static (a static busybox) or pass --busybox PATH",
    );
  const st = fs.statSync(file);
  return { name: 'bin/busybox', type: 'file', mode: 0o755, size: st.size, source: fs.realpathSync(file) };
}

export interface UnpackedDebs {
  /** the GOROOT inside `dir` */
  goroot: string;
  series: string;
  dir: string;
  dispose(): void;
}

/**
 * Debian's golang-1.NN-go and golang-1.NN-src packages unpacked into a temp dir with
 * `dpkg-deb -x` (argument arrays): each file's Package field is read first, so a .deb that is
 * not Debian's Go, two series mixed or a missing golang-1.NN-go is refused before unpacking.
 */
export async function unpackGoDebs(files: readonly string[], tmpParent: string): Promise<UnpackedDebs> {
  const hint =
    "pass Debian's golang-1.NN-go and golang-1.NN-src .deb files (apt-get download golang-1.22-go golang-1.22-src)";
  const seen: { file: string; series: string; part: 'go' | 'src'; installedKib: number }[] = [];
  for (const file of files) {
    let st: fs.Stats;
    try {
      st = fs.statSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        throw new UsageError(`--deb ${escapeControl(file)}: no such file`, hint);
      throw osError(err, 'cannot read', file);
    }
    if (!st.isFile()) throw new UsageError(`--deb ${escapeControl(file)} is not a file`, hint);
    if (st.size > DEB_MAX_BYTES)
      throw new UsageError(
        `--deb ${escapeControl(file)} is larger than ${DEB_MAX_BYTES} bytes: not a Go package`,
        hint,
      );
    let name: string;
    try {
      name = (await run('dpkg-deb', ['--field', file, 'Package'], { timeout: 60_000 })).stdout.trim();
    } catch (err) {
      const detail = ((err as { stderr?: string }).stderr ?? messageOf(err)).trim().split('\n')[0] ?? '';
      throw new UsageError(
        `--deb ${escapeControl(file)} is not a Debian package (${escapeControl(detail)})`,
        hint,
      );
    }
    const pkg = parseDebianGoPackage(name);
    if (!pkg)
      throw new UsageError(
        `--deb ${escapeControl(file)} is package ${escapeControl(name)}, not Debian's Go (golang-1.NN-go or golang-1.NN-src)`,
        hint,
      );
    seen.push({ file, ...pkg, installedKib: await installedKib(file, st.size, hint) });
  }
  const series = [...new Set(seen.map((s) => s.series))];
  if (series.length !== 1)
    throw new UsageError(
      `--deb files of different Go series (${series.join(', ')})`,
      'pass golang-1.NN-go and golang-1.NN-src of one series',
    );
  if (!seen.some((s) => s.part === 'go'))
    throw new UsageError(
      `no golang-${series[0]}-go among the --deb files (only the standard library source was given)`,
      hint,
    );
  if (!seen.some((s) => s.part === 'src'))
    throw new UsageError(
      `no golang-${series[0]}-src among the --deb files: the image would have no standard library source`,
      hint,
    );
  let dir: string;
  try {
    dir = fs.mkdtempSync(path.join(tmpParent, 'kubeadm-forever-go-'));
  } catch (err) {
    throw osError(err, 'cannot make a temp dir in', tmpParent);
  }
  const dispose = () => fs.rmSync(dir, { recursive: true, force: true });
  try {
    for (const s of seen) await unpackBounded(s.file, dir, debUnpackLimit(s.installedKib), hint);
    assertRealGoroot(dir, series[0]!, hint);
  } catch (err) {
    dispose();
    throw err;
  }
  return { goroot: path.join(dir, debianGoroot(series[0]!).goroot), series: series[0]!, dir, dispose };
}

/** The Installed-Size (KiB) a .deb declares, checked against its own size before unpacking. */
async function installedKib(file: string, size: number, hint: string): Promise<number> {
  let text = '';
  try {
    text = (await run('dpkg-deb', ['--field', file, 'Installed-Size'], { timeout: 60_000 })).stdout.trim();
  } catch {
    /* refused below */
  }
  const kib = /^\d{1,12}$/.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(kib) || kib === 0)
    throw new UsageError(`--deb ${escapeControl(file)} declares no Installed-Size: not Debian's Go`, hint);
  const bytes = kib * 1024;
  // the ratio from 16 MiB on: a small package's Installed-Size is rounded up per file
  if (bytes > GOROOT_LIMITS.bytes || bytes > Math.max(size * DEB_MAX_RATIO, 16 << 20))
    throw new UsageError(
      `--deb ${escapeControl(file)} declares ${bytes} bytes installed from ${size} bytes (more than ${GOROOT_LIMITS.bytes} bytes or ${DEB_MAX_RATIO} times its size): not Debian's Go`,
      hint,
    );
  return kib;
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.on('error', () => resolve(-1));
    child.on('close', (code) => resolve(code));
  });
}

/**
 * `dpkg-deb --fsys-tarfile FILE | tar -x -C DIR` with the tar stream counted between them: more
 * than `limit` bytes (the Installed-Size the package declares, with headroom) kills both, so
 * the temp space used stays bounded whatever the package holds.
 */
async function unpackBounded(file: string, dir: string, limit: number, hint: string): Promise<void> {
  const dpkg = spawn('dpkg-deb', ['--fsys-tarfile', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const tar = spawn('tar', ['-x', '-f', '-', '-C', dir, '--no-same-owner'], {
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let stderr = '';
  const keep = (d: Buffer) => {
    if (stderr.length < 4096) stderr += d.toString('utf8');
  };
  dpkg.stderr.on('data', keep);
  tar.stderr.on('data', keep);
  tar.stdin.on('error', () => undefined); // EPIPE when tar stops first: its exit code tells
  let count = 0;
  let over = false;
  dpkg.stdout.on('data', (chunk: Buffer) => {
    count += chunk.length;
    if (count > limit && !over) {
      over = true;
      dpkg.kill('SIGKILL');
      tar.kill('SIGKILL');
    }
  });
  dpkg.stdout.pipe(tar.stdin);
  const [a, b] = await Promise.all([exited(dpkg), exited(tar)]);
  if (over)
    throw new UsageError(
      `--deb ${escapeControl(file)} unpacks to more than ${limit} bytes, beyond the Installed-Size it declares: not Debian's Go`,
      hint,
    );
  if (a !== 0 || b !== 0)
    throw new KfError(
      `cannot unpack ${escapeControl(file)}: ${escapeControl(stderr.trim().split('\n')[0] ?? '')}`,
      'check free space in the temp dir (TMPDIR) and that the file is complete',
    );
}

/** usr/lib/go-1.NN (and usr/share/go-1.NN when present) are directories of the packages, not links. */
function assertRealGoroot(dir: string, series: string, hint: string): void {
  const { goroot, share } = debianGoroot(series);
  for (const [rel, required] of [
    [goroot, true],
    [share, false],
  ] as const) {
    let p = dir;
    for (const part of rel.split('/')) {
      p = path.join(p, part);
      const st = fs.lstatSync(p, { throwIfNoEntry: false });
      if (!st && !required) break;
      if (st?.isSymbolicLink())
        throw new UsageError(
          `the packages' ${escapeControl(path.relative(dir, p))} is a link (to ${escapeControl(fs.readlinkSync(p))}), not a directory: not Debian's Go`,
          hint,
        );
      if (!st?.isDirectory())
        throw new UsageError(`the packages have no directory ${escapeControl(rel)}: not Debian's Go`, hint);
    }
  }
}
