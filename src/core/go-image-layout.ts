import path from 'node:path/posix';
import { escapeControl, UsageError } from './errors.js';
import { goImageFor } from './plan.js';
import { normalizeGoVersion } from './version.js';

/**
 * The Go builder image made from a local toolchain (`kubeadm-forever image`): what goes in and
 * where, decided here without I/O; src/adapters/go-toolchain-files.ts reads the files, src/build/
 * go-image-to-engine.ts streams them to the engine.
 */

/** GOROOT inside the image (as in the official golang images). */
export const IMAGE_GOROOT = 'usr/local/go';
/** GOPATH inside the image: the build puts the tree at $GOPATH/src/k8s.io/kubernetes. */
export const IMAGE_GOPATH = 'go';

/**
 * busybox applets linked in /bin: `go build` itself needs none, but the build container's
 * clean-ups and the test suite's containers run `sh -c`, `true`, `sleep`, `test` and the
 * file tools (scripts/test-env.sh put the same ones in before this command existed).
 */
export const BUSYBOX_APPLETS = [
  'sh',
  'ls',
  'cat',
  'mkdir',
  'rm',
  'cp',
  'mv',
  'tar',
  'env',
  'sleep',
  'true',
  'test',
] as const;

/** The label naming the Go an image of this command holds (set by the import). */
export const GO_VERSION_LABEL = 'kubeadm-forever.go-version';

/** Dockerfile instructions applied by the import (the engine's `changes`). */
export function imageChanges(goVersion: string): string[] {
  return [
    `ENV PATH=/${IMAGE_GOROOT}/bin:/bin`,
    `ENV GOPATH=/${IMAGE_GOPATH}`,
    `LABEL ${GO_VERSION_LABEL}=${normalizeGoVersion(goVersion)}`,
  ];
}

/** Bounds on what one toolchain may bring (Debian's Go 1.19 is 13.6k files, 474 MB). */
export const GOROOT_LIMITS = { entries: 100_000, bytes: 2 * 1024 ** 3, fileBytes: 512 * 1024 ** 2 } as const;
/** Bound on one .deb before it is unpacked (golang-1.22-go is ~40 MB). */
export const DEB_MAX_BYTES = 1024 ** 3;
/**
 * A .deb's Installed-Size (KiB) against its own size: Debian's Go packages unpack to 4-7 times
 * their size (golang-1.22-go: 24.8 MB to 102.8 MB, golang-1.22-src: 18.9 MB to 126.8 MB); more
 * than this is refused before anything is unpacked.
 */
export const DEB_MAX_RATIO = 20;
/**
 * What unpacking may write beyond the Installed-Size a package declares (tar headers, sizes
 * rounded to KiB): golang-1.22-src's data is 1.6% above it. More stops the unpack.
 */
export function debUnpackLimit(installedKib: number): number {
  return Math.ceil(installedKib * 1024 * 1.25) + (1 << 20);
}

/** The Go version a GOROOT's VERSION file names (its first line, e.g. `go1.22.12`), or undefined. */
export function goVersionFromFile(text: string): string | undefined {
  const first = text.split('\n')[0]!.trim();
  try {
    return normalizeGoVersion(first);
  } catch {
    return undefined;
  }
}

/**
 * The Go version of the image: the toolchain's own (VERSION file); `--go-version`, when given,
 * must agree with it and is needed only where the toolchain names none.
 */
export function imageGoVersion(
  fromToolchain: string | undefined,
  flag: string | undefined,
  where: string,
): string {
  const given = flag === undefined ? undefined : normalizeGoVersion(flag, '--go-version');
  if (fromToolchain && given && fromToolchain !== given) {
    throw new UsageError(
      `--go-version ${given.slice(2)} does not match the toolchain in ${escapeControl(where)}, which is ${fromToolchain}`,
      'leave out --go-version (the toolchain names its version) or pass the matching toolchain',
    );
  }
  const version = fromToolchain ?? given;
  if (!version)
    throw new UsageError(
      `${escapeControl(where)} names no Go version (no VERSION file)`,
      'pass --go-version X.Y.Z',
    );
  return version;
}

// Docker's reference grammar, simplified: lowercase path components, optional host[:port], tag.
const REPO =
  /^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*(?::\d+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;

export interface ImageName {
  repo: string;
  tag: string;
}

/** Splits and validates `repo[:tag]` (tag `latest` when absent). */
export function parseImageName(text: string): ImageName {
  const slash = text.lastIndexOf('/');
  const colon = text.lastIndexOf(':');
  const [repo, tag] = colon > slash ? [text.slice(0, colon), text.slice(colon + 1)] : [text, 'latest'];
  if (!REPO.test(repo) || !TAG.test(tag) || text.length > 255) {
    throw new UsageError(
      `invalid image name ${JSON.stringify(text)}`,
      'pass --tag a name like golang:1.22.12-alpine or local/golang:1.22.12',
    );
  }
  return { repo, tag };
}

/** The names the image gets: --tag values, else the one `build` picks for that Go version. */
export function imageTags(goVersion: string, tags: readonly string[]): string[] {
  const names = tags.length > 0 ? tags : [goImageFor(normalizeGoVersion(goVersion))];
  for (const n of names) parseImageName(n);
  return [...new Set(names)];
}

export interface DebianGoPackage {
  /** e.g. "1.22" */
  series: string;
  part: 'go' | 'src';
}

/** Debian's Go packages are golang-1.NN-go (tools, pkg) and golang-1.NN-src (the standard library). */
export function parseDebianGoPackage(name: string): DebianGoPackage | undefined {
  const m = /^golang-(1\.\d{1,3})-(go|src)$/.exec(name);
  return m ? { series: m[1]!, part: m[2] as 'go' | 'src' } : undefined;
}

/**
 * Where Debian puts one series: GOROOT `usr/lib/go-1.NN`, whose src, api, misc and test are
 * relative links into `usr/share/go-1.NN`. Relative to the unpack root.
 */
export function debianGoroot(series: string): { goroot: string; share: string } {
  return { goroot: `usr/lib/go-${series}`, share: `usr/share/go-${series}` };
}

/**
 * The directories a GOROOT's links may lead into: the GOROOT itself and, for Debian's layout
 * (`<prefix>/lib/go-1.NN`), its `<prefix>/share/go-1.NN`. Absolute paths in, absolute out.
 */
export function gorootLinkRoots(goroot: string): string[] {
  const base = path.basename(goroot);
  const roots = [goroot];
  if (/^go-1\.\d+$/.test(base) && path.basename(path.dirname(goroot)) === 'lib') {
    roots.push(path.join(path.dirname(path.dirname(goroot)), 'share', base));
  }
  return roots;
}

/** The paths a dynamically linked binary needs, from `ldd` output (absolute paths only). */
export function parseLdd(output: string): string[] {
  const libs = new Set<string>();
  for (const line of output.split('\n')) {
    const m = /(?:=>\s*)?(\/[^\s:()]+)\s*\(0x[0-9a-f]+\)/.exec(line);
    if (m) libs.add(m[1]!);
  }
  return [...libs].sort();
}
