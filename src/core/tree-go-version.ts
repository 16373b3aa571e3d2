import { parse as parseYaml } from 'yaml';
import { KfError } from './errors.js';
import type { SourceFiles } from './patch-targets.js';

/**
 * The Go version a Kubernetes tree was released with, read from the tree itself (pure: the
 * adapters bring the file contents). Where it stands, newest layout first:
 * - `.go-version` (1.27+): `1.20.11`;
 * - `build/build-image/cross/VERSION`: the kube-cross image tag, `v1.15.5-1` (Go 1.15.5) up to
 *   ~1.22, `v1.26.0-go1.19.5-bullseye.0` (Go 1.19.5) later;
 * - the kube-cross tag written in `build/common.sh` (`KUBE_BUILD_IMAGE_CROSS_TAG=v1.12.5-1`);
 * - the kube-cross entry of `build/dependencies.yaml`.
 * Everything read is validated: a file that is there but says something else is an error naming
 * it, never a guess.
 */

export const GO_VERSION_FILE = '.go-version';
export const CROSS_VERSION_FILE = 'build/build-image/cross/VERSION';
export const BUILD_COMMON_FILE = 'build/common.sh';
export const DEPENDENCIES_FILE = 'build/dependencies.yaml';
/** Every file the Go version may come from, in order of precedence. */
export const TREE_GO_VERSION_FILES = [
  GO_VERSION_FILE,
  CROSS_VERSION_FILE,
  BUILD_COMMON_FILE,
  DEPENDENCIES_FILE,
] as const;

export interface TreeGoVersion {
  /** `go1.15.5` */
  goVersion: string;
  /** the file it came from, and what it said there, e.g. `build/build-image/cross/VERSION "v1.15.5-1"` */
  from: string;
}

const GO_NUMBER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?$/;

/** A value from a file, shown safely in a message: quoted, control characters escaped, short. */
function shown(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

function unreadable(file: string, value: string, expected: string): KfError {
  return new KfError(
    `${file} in the source tree says ${shown(value)}: expected ${expected}`,
    'check the source tree, or pass --go-version X.Y.Z (GoVersion of `kubeadm version` on the cluster)',
  );
}

/**
 * The Go version in a kube-cross image tag: `v1.15.5-1` → go1.15.5, `v1.26.0-go1.19.5-bullseye.0`
 * → go1.19.5 (there the leading version is Kubernetes', not Go's). Undefined when the tag has
 * neither form.
 */
export function goVersionOfCrossTag(tag: string): string | undefined {
  const withGo =
    /^v\d+\.\d+\.\d+-go((?:0|[1-9]\d*)\.(?:0|[1-9]\d*)(?:\.(?:0|[1-9]\d*))?)(?:-[0-9A-Za-z.-]+)?$/.exec(tag);
  if (withGo) return `go${withGo[1]}`;
  const plain = /^v((?:0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*))-\d+$/.exec(tag);
  return plain ? `go${plain[1]}` : undefined;
}

function fromCrossTag(file: string, tag: string): TreeGoVersion {
  const goVersion = goVersionOfCrossTag(tag);
  if (!goVersion)
    throw unreadable(file, tag, 'a kube-cross tag such as v1.15.5-1 or v1.26.0-go1.19.5-bullseye.0');
  return { goVersion, from: `${file} ${shown(tag)}` };
}

/** The kube-cross tag of build/dependencies.yaml (`name: "...kube-cross..."`, `version: v1.15.5-1`). */
function crossTagOfDependencies(text: string): string | undefined {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new KfError(
      `${DEPENDENCIES_FILE} in the source tree is not valid YAML: ${(err as Error).message.split('\n')[0]}`,
      'check the source tree, or pass --go-version X.Y.Z',
    );
  }
  const deps = doc && typeof doc === 'object' ? (doc as { dependencies?: unknown }).dependencies : undefined;
  if (!Array.isArray(deps)) return undefined;
  for (const d of deps) {
    if (!d || typeof d !== 'object') continue;
    const { name, version } = d as { name?: unknown; version?: unknown };
    if (typeof name === 'string' && /kube-cross/.test(name) && version !== undefined)
      return String(version).trim();
  }
  return undefined;
}

/** The Go version of a tree from the first of TREE_GO_VERSION_FILES that names one; undefined when none does. */
export function goVersionFromTree(files: SourceFiles): TreeGoVersion | undefined {
  const goVersionFile = files[GO_VERSION_FILE];
  if (goVersionFile !== undefined) {
    const v = goVersionFile.trim().replace(/^go/, '');
    if (!GO_NUMBER.test(v))
      throw unreadable(GO_VERSION_FILE, goVersionFile.trim(), 'a Go version such as 1.20.11');
    return { goVersion: `go${v}`, from: `${GO_VERSION_FILE} ${shown(v)}` };
  }
  const cross = files[CROSS_VERSION_FILE];
  if (cross !== undefined) return fromCrossTag(CROSS_VERSION_FILE, cross.trim());
  const common = files[BUILD_COMMON_FILE];
  const literal =
    common &&
    /^[ \t]*(?:readonly[ \t]+)?KUBE_BUILD_IMAGE_CROSS_TAG=["']?(v[^"'\s)]*)["']?[ \t]*$/m.exec(common);
  if (literal) return fromCrossTag(BUILD_COMMON_FILE, literal[1]!);
  const deps = files[DEPENDENCIES_FILE];
  const tag = deps === undefined ? undefined : crossTagOfDependencies(deps);
  if (tag !== undefined) return fromCrossTag(DEPENDENCIES_FILE, tag);
  return undefined;
}
