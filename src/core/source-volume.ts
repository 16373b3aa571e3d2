import { sha256Hex } from './digest.js';
import type { TreePatch } from './types.js';
import type { SourceFiles } from './patch-targets.js';

/**
 * The per-source volume: the pristine files the build needs (package-closure.ts), streamed into a named Docker volume once per source
 * content, mounted at the plan's container source dir by every later build of that source
 * (other validities, other platforms). Each build writes only the patch target files over it.
 *
 * Why every patch target file is written by every build, patched or not: the volume keeps what
 * the previous build wrote, so a build whose validity leaves a file unchanged must still put the
 * pristine text back, or it would compile the previous build's patch.
 */

/**
 * Bumped when what a source volume holds changes (the selection of files, the marker), so old
 * ones are not reused. 2: only the package closure of the built command (package-closure.ts).
 * 3: directory sources named by content (not by a walk that saw nothing through a link), and
 * the marker records a digest of the files the volume was filled with.
 */
export const SOURCE_VOLUME_FORMAT = 3;
export const SOURCE_VOLUME_PREFIX = 'kubeadm-forever-src-';
/** Label on a source volume: the content id it holds (for `cache volumes`). */
export const SOURCE_VOLUME_LABEL = 'kubeadm-forever.source';
/** Written into the volume root after the whole tree arrived; absent or different: fill again. */
export const SOURCE_MARKER_FILE = '.kubeadm-forever-source.json';

/** What the source is, by content: the git commit and tree, the tarball's sha256, the directory's fingerprint. */
export interface SourceContent {
  kind: 'git' | 'tarball' | 'dir';
  commit?: string;
  tree?: string;
  sha256?: string;
  fingerprint?: string;
}

/**
 * A stable text naming what a volume holds: the source's content (never a host path: two hosts
 * share a volume name only for the same content) and the package whose closure was shipped.
 */
export function sourceContentId(s: SourceContent, pkg: string): string {
  return `${sourceContentText(s)} ${pkg}`;
}

/** The source's content as one text (also the cache key's source identity for tarballs and directories). */
export function sourceContentText(s: SourceContent): string {
  switch (s.kind) {
    case 'git':
      if (!s.commit) throw new Error('a git source needs its commit');
      return `git:${s.commit}:${s.tree ?? ''}`;
    case 'tarball':
      if (!s.sha256) throw new Error('a tarball source needs its sha256');
      return `tarball:sha256:${s.sha256}`;
    case 'dir':
      if (!s.fingerprint) throw new Error('a directory source needs its fingerprint');
      return `dir:${s.fingerprint}`;
  }
}

/** The volume's name: a prefix and 24 hex digits of sha256(format, content id). */
export function sourceVolumeName(contentId: string): string {
  const digest = sha256Hex(`kubeadm-forever source volume ${SOURCE_VOLUME_FORMAT}\n${contentId}`);
  return `${SOURCE_VOLUME_PREFIX}${digest.slice(0, 24)}`;
}

/** One file or link the volume is filled with: its path in the tree and what it holds. */
export type FilledEntry =
  | { path: string; kind: 'file'; mode: number; sha256: string }
  | { path: string; kind: 'symlink'; target: string };

/**
 * sha256 over what a volume is filled with: each entry's path, kind, permission bits and content
 * digest (files, pristine: the patch targets as the tree has them) or target (links), sorted.
 */
export function filledDigest(entries: readonly FilledEntry[]): string {
  const lines = entries
    .map((e) =>
      JSON.stringify(
        e.kind === 'file' ? [e.path, 'f', (e.mode & 0o777).toString(8), e.sha256] : [e.path, 'l', e.target],
      ),
    )
    .sort();
  return sha256Hex(lines.join('\n'));
}

/** What a volume's marker records: it is complete, for this content, filled with these files. */
export interface SourceMarker {
  format: number;
  content: string;
  files: string;
  count: number;
}

/** The marker's text: the volume is complete for this content, in this format, with these files. */
export function sourceMarker(contentId: string, files: string, count: number): string {
  return `${JSON.stringify({ format: SOURCE_VOLUME_FORMAT, content: contentId, files, count } satisfies SourceMarker)}\n`;
}

/**
 * What to do with a volume given its marker (read from the volume; undefined when absent):
 * - reuse: it holds this content and exactly these files;
 * - fill: no marker (new, or a fill cut short), or this content with other files (the
 *   selection of files changed): write the files (again), marker last;
 * - refuse: a marker of another content or format in the volume named for this one: never
 *   build one tree's binary from another's files, and never mix them.
 */
export type MarkerVerdict =
  { action: 'reuse' } | { action: 'fill'; reason: string } | { action: 'refuse'; reason: string };

export function checkMarker(text: string | undefined, contentId: string, files: string): MarkerVerdict {
  if (text === undefined) return { action: 'fill', reason: 'no marker' };
  let m: Partial<SourceMarker>;
  try {
    m = JSON.parse(text) as Partial<SourceMarker>;
  } catch {
    return { action: 'refuse', reason: 'its marker is not JSON' };
  }
  if (typeof m !== 'object' || m === null) return { action: 'refuse', reason: 'its marker is not an object' };
  if (m.format !== SOURCE_VOLUME_FORMAT)
    return {
      action: 'refuse',
      reason: `its marker has format ${JSON.stringify(m.format)}, not ${SOURCE_VOLUME_FORMAT}`,
    };
  if (m.content !== contentId)
    return {
      action: 'refuse',
      reason: `its marker names another source (${String(m.content).slice(0, 100)})`,
    };
  if (m.files !== files) return { action: 'fill', reason: 'it was filled with other files of this source' };
  return { action: 'reuse' };
}

/**
 * The files one build writes over the volume: every patch target the tree has, with the patched
 * text where the patch changed it and the pristine text otherwise (see the module comment).
 */
export function overlayFiles(sources: SourceFiles, patch: TreePatch): Map<string, string> {
  const patched = new Map(patch.files.map((f) => [f.file, f.after] as const));
  const files = new Map<string, string>();
  for (const [file, text] of Object.entries(sources)) {
    if (text === undefined) continue;
    files.set(file, patched.get(file) ?? text);
  }
  for (const [file, text] of patched) {
    if (!files.has(file)) throw new Error(`patched file ${file} is not among the patch sources`);
    files.set(file, text);
  }
  return files;
}
