import os from 'node:os';
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { packEntries, type TarEntry } from '../adapters/archive.js';
import { readBusybox, readToolchain, sharedLibraries, unpackGoDebs } from '../adapters/go-toolchain-files.js';
import {
  BUSYBOX_APPLETS,
  GO_VERSION_LABEL,
  goVersionFromFile,
  IMAGE_GOPATH,
  IMAGE_GOROOT,
  imageChanges,
  imageGoVersion,
  imageTags,
  parseImageName,
} from '../core/go-image-layout.js';
import { KfError, messageOf, UsageError } from '../core/errors.js';
import { reporter, type Progress } from '../core/progress.js';

/** Where the toolchain comes from: a GOROOT on this host, or Debian's .deb files. */
export type ToolchainSource = { kind: 'goroot'; dir: string } | { kind: 'debs'; files: string[] };

export interface GoImageInput {
  source: ToolchainSource;
  /** --go-version: must match the toolchain's VERSION file; needed only without one */
  goVersion?: string;
  /** --tag values; none: golang:<go>-alpine, the name `build` picks */
  tags: string[];
  busybox: string;
  /** an image already tagged so is kept: nothing is made (for idempotent set-up scripts) */
  keepExisting: boolean;
  /** its steps (reading the toolchain, importing, tagging) */
  progress?: Progress;
}

export interface GoImageResult {
  /** "" when --keep-existing found the named tags without reading the toolchain */
  goVersion: string;
  tags: string[];
  id: string;
  /** false when --keep-existing found every tag present */
  created: boolean;
  files: number;
  bytes: number;
  libraries: string[];
}

const GOROOT_HINT =
  'pass --goroot the directory `go env GOROOT` prints (e.g. /usr/lib/go-1.19), or --deb with golang-1.NN-go and golang-1.NN-src';

async function inspectImage(
  docker: Docker,
  name: string,
): Promise<{ id: string; goVersion?: string } | undefined> {
  try {
    const info = await docker.getImage(name).inspect();
    return { id: info.Id, goVersion: info.Config?.Labels?.[GO_VERSION_LABEL] };
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return undefined;
    throw new KfError(
      `cannot inspect image ${name}: ${messageOf(err).split('\n')[0]}`,
      'check that the Docker engine is healthy and retry',
    );
  }
}

/**
 * --keep-existing: the image every tag names, or, when only some are there and all name one
 * image this command made from the same Go (its label), that image with the missing tags added.
 * Undefined when a new image must be made.
 */
async function keptImage(docker: Docker, tags: string[], goVersion: string): Promise<string | undefined> {
  const found = await Promise.all(tags.map((t) => inspectImage(docker, t)));
  const existing = found.filter((f) => f !== undefined);
  const ids = new Set(existing.map((f) => f.id));
  if (existing.length === 0 || ids.size !== 1 || !existing.every((f) => f.goVersion === goVersion))
    return undefined;
  const id = existing[0]!.id;
  for (const [i, t] of tags.entries()) if (!found[i]) await tagImage(docker, id, t, tags[0]!);
  return id;
}

async function tagImage(docker: Docker, id: string, name: string, madeAs: string): Promise<void> {
  const n = parseImageName(name);
  try {
    await docker.getImage(id).tag({ repo: n.repo, tag: n.tag });
  } catch (err) {
    throw new KfError(
      `image ${id.slice(7, 19)} (${madeAs}) could not be tagged ${name}: ${messageOf(err).split('\n')[0]}`,
      `tag it yourself: docker tag ${madeAs} ${name}`,
    );
  }
}

/** The image's file system: busybox and its applets, the GOROOT, the libraries, /etc, /tmp, GOPATH. */
function imageEntries(goroot: TarEntry[], busybox: TarEntry, libs: TarEntry[]): TarEntry[] {
  const dirs = new Set<string>(['bin', 'etc', 'tmp', 'root', IMAGE_GOPATH, `${IMAGE_GOPATH}/src`]);
  const addParents = (p: string) => {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  };
  addParents(`${IMAGE_GOROOT}/x`);
  for (const l of libs) addParents(l.name);
  const entries: TarEntry[] = [...dirs]
    .sort()
    .map((name) => ({ name, type: 'directory' as const, mode: name === 'tmp' ? 0o1777 : 0o755 }));
  entries.push(busybox);
  for (const a of BUSYBOX_APPLETS)
    entries.push({ name: `bin/${a}`, type: 'symlink', mode: 0o777, linkname: 'busybox' });
  for (const e of goroot) entries.push({ ...e, name: `${IMAGE_GOROOT}/${e.name}` });
  entries.push(...libs);
  entries.push({
    name: 'etc/passwd',
    type: 'file',
    mode: 0o644,
    content: Buffer.from('root:x:0:0:root:/root:/bin/sh\n'),
  });
  entries.push({ name: 'etc/group', type: 'file', mode: 0o644, content: Buffer.from('root:x:0:\n') });
  return entries;
}

/** Reads the engine's answer to an import: the new image's id, or the error it reports. */
async function followImport(docker: Docker, stream: Readable): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (
        err: Error | null,
        output: Array<{ status?: string; error?: string; errorDetail?: { message?: string } }>,
      ) => {
        const failed = output?.find((e) => e.error || e.errorDetail);
        if (err) return reject(err);
        if (failed) return reject(new Error(failed.errorDetail?.message ?? failed.error));
        const id = [...(output ?? [])]
          .reverse()
          .find((e) => /^sha256:[0-9a-f]{64}$/.test(e.status ?? ''))?.status;
        if (!id) return reject(new Error('the engine reported no image id'));
        resolve(id);
      },
    );
  });
}

/**
 * image: a Go builder image from a local toolchain, through the Docker API (importImage, the
 * file system streamed as one tar built here; no shell, no registry). Everything is read and
 * checked before the import starts, so bad input creates no image; the first tag is set by
 * the import itself, the others afterwards.
 */
export async function makeGoImage(docker: Docker, input: GoImageInput): Promise<GoImageResult> {
  const { step } = reporter(input.progress);
  // names first: a bad --tag is refused before anything is unpacked
  for (const t of input.tags) parseImageName(t);
  const present = async (tags: string[]) => {
    const found = await Promise.all(tags.map((t) => inspectImage(docker, t)));
    return found.every((f) => f !== undefined) ? found[0]!.id : undefined;
  };
  // named tags already there: nothing to read or unpack at all (set-up scripts run this often)
  const early = input.keepExisting && input.tags.length > 0 ? await present(input.tags) : undefined;
  if (early)
    return {
      goVersion: '',
      tags: [...new Set(input.tags)],
      id: early,
      created: false,
      files: 0,
      bytes: 0,
      libraries: [],
    };
  let dispose = () => undefined as void;
  try {
    let gorootDir: string;
    let where: string;
    let inside: string | undefined;
    if (input.source.kind === 'goroot') {
      gorootDir = input.source.dir;
      where = input.source.dir;
    } else {
      if (input.source.files.length === 0) throw new UsageError('no --deb file given', GOROOT_HINT);
      step(`unpacking ${input.source.files.length} Debian package(s)`);
      const debs = await unpackGoDebs(input.source.files, os.tmpdir());
      dispose = debs.dispose;
      gorootDir = debs.goroot;
      inside = debs.dir;
      where = `golang-${debs.series}-go`;
    }
    step(`reading the Go toolchain in ${where}`);
    const toolchain = readToolchain(gorootDir, GOROOT_HINT, inside);
    const goVersion = imageGoVersion(
      toolchain.versionFile ? goVersionFromFile(toolchain.versionFile) : undefined,
      input.goVersion,
      where,
    );
    const tags = imageTags(goVersion, input.tags);
    if (input.keepExisting) {
      const kept = await keptImage(docker, tags, goVersion);
      if (kept)
        return {
          goVersion,
          tags,
          id: kept,
          created: false,
          files: toolchain.entries.length,
          bytes: toolchain.bytes,
          libraries: [],
        };
    }
    const busybox = readBusybox(input.busybox);
    const libs = await sharedLibraries(toolchain.dynamic);
    const entries = imageEntries(toolchain.entries, busybox, libs);
    const first = parseImageName(tags[0]!);
    step(
      `importing ${toolchain.entries.length} files (${Math.round(toolchain.bytes / 1e6)} MB) as ${tags.join(', ')}`,
    );
    let id: string;
    try {
      const tar = packEntries(entries);
      const response = (await docker.importImage(tar, {
        repo: first.repo,
        tag: first.tag,
        changes: imageChanges(goVersion),
      })) as unknown as Readable;
      id = await followImport(docker, response);
    } catch (err) {
      throw new KfError(
        `the engine did not import the Go image: ${messageOf(err).split('\n')[0]}`,
        'check free space on the Docker engine and retry',
      );
    }
    for (const t of tags.slice(1)) await tagImage(docker, id, t, tags[0]!);
    return {
      goVersion,
      tags,
      id,
      created: true,
      files: toolchain.entries.length,
      bytes: toolchain.bytes,
      libraries: libs.map((l) => `/${l.name}`),
    };
  } finally {
    dispose();
  }
}
