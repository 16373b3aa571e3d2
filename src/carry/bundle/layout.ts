import type { Platform } from '../../core/types.js';
import { isValidKey } from '../../core/cache-manifest.js';
import { parsePlatformDir } from '../../core/platform.js';
import { BINARY_NAME, MANIFEST_NAME } from '../cache/store.js';
import { TOOL_NAME } from '../cache/tool.js';

/**
 * The bundle's layout, the only names a bundle may contain (all regular files):
 *
 *   kubeadm-forever-bundle/README.txt
 *   kubeadm-forever-bundle/SHA256SUMS                          (sha256sum -c format)
 *   kubeadm-forever-bundle/binaries/<key>/<os>-<arch>/kubeadm
 *   kubeadm-forever-bundle/binaries/<key>/<os>-<arch>/manifest.json
 *   kubeadm-forever-bundle/tool/<os>-<arch>/kubeadm-forever       (the tool itself, optional)
 *
 * Accepting an exact list, rather than "anything under the root", is what makes traversal
 * (`..`, absolute paths, odd separators) impossible by construction.
 */
export const BUNDLE_ROOT = 'kubeadm-forever-bundle';
export const README_NAME = 'README.txt';
export const SUMS_NAME = 'SHA256SUMS';

export type BundlePath =
  | { kind: 'readme'; rel: string }
  | { kind: 'sums'; rel: string }
  | { kind: 'binary' | 'manifest'; rel: string; key: string; platform: Platform }
  | { kind: 'tool'; rel: string; platform: Platform };

/** The path of an entry file relative to the bundle root. */
export function entryRel(key: string, platformDirName: string, file: string): string {
  return `binaries/${key}/${platformDirName}/${file}`;
}

/** The path of the tool's executable for a platform relative to the bundle root. */
export function toolRel(platformDirName: string): string {
  return `tool/${platformDirName}/${TOOL_NAME}`;
}

/**
 * Classifies a tar member name. Returns the problem as text when the name is not one the layout
 * allows (so hostile names are reported by what is wrong with them).
 */
export function classifyBundlePath(name: string): BundlePath | string {
  if (name.includes('\0')) return 'a NUL byte in the name';
  if (name.includes('\\')) return 'a backslash in the name';
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) return 'an absolute path';
  const parts = name.split('/');
  if (parts.includes('..')) return 'a ".." component';
  if (parts.some((p) => p === '' || p === '.')) return 'an empty or "." component';
  if (parts[0] !== BUNDLE_ROOT) return `outside the bundle root ${BUNDLE_ROOT}/`;
  const rest = parts.slice(1);
  const rel = rest.join('/');
  if (rest.length === 1 && rest[0] === README_NAME) return { kind: 'readme', rel };
  if (rest.length === 1 && rest[0] === SUMS_NAME) return { kind: 'sums', rel };
  if (rest.length === 4 && rest[0] === 'binaries') {
    const [, key, platName, file] = rest as [string, string, string, string];
    const platform = parsePlatformDir(platName);
    if (isValidKey(key) && platform && (file === BINARY_NAME || file === MANIFEST_NAME)) {
      return { kind: file === BINARY_NAME ? 'binary' : 'manifest', rel, key, platform };
    }
  }
  if (rest.length === 3 && rest[0] === 'tool' && rest[2] === TOOL_NAME) {
    const platform = parsePlatformDir(rest[1]!);
    if (platform) return { kind: 'tool', rel, platform };
  }
  return 'not a file the bundle layout has';
}
