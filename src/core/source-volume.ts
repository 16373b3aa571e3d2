import { createHash } from 'node:crypto';
import type { PatchResult } from './types.js';
import type { SourceFiles } from './patch.js';

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
 */
export const SOURCE_VOLUME_FORMAT = 2;
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
  return `${contentOf(s)} ${pkg}`;
}

function contentOf(s: SourceContent): string {
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
  const digest = createHash('sha256').update(`kubeadm-forever source volume ${SOURCE_VOLUME_FORMAT}\n${contentId}`).digest('hex');
  return `${SOURCE_VOLUME_PREFIX}${digest.slice(0, 24)}`;
}

/** The marker's text: the volume is complete for this content, in this format. */
export function sourceMarker(contentId: string): string {
  return `${JSON.stringify({ format: SOURCE_VOLUME_FORMAT, content: contentId })}\n`;
}

/** Whether a marker read from a volume says it holds the whole of this content. */
export function markerMatches(text: string | undefined, contentId: string): boolean {
  if (text === undefined) return false;
  try {
    const m = JSON.parse(text) as { format?: unknown; content?: unknown };
    return m.format === SOURCE_VOLUME_FORMAT && m.content === contentId;
  } catch {
    return false;
  }
}

/**
 * The files one build writes over the volume: every patch target the tree has, with the patched
 * text where the patch changed it and the pristine text otherwise (see the module comment).
 */
export function overlayFiles(sources: SourceFiles, patch: PatchResult): Map<string, string> {
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
