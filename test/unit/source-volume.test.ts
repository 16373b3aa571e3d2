import { describe, expect, it } from 'vitest';
import {
  markerMatches,
  overlayFiles,
  sourceContentId,
  sourceMarker,
  sourceVolumeName,
  SOURCE_VOLUME_PREFIX,
} from '../../src/core/source-volume.js';
import { CLIENT_GO_CERT_FILE, CONSTANTS_FILE, KUBEADM_PKI_HELPERS_FILE } from '../../src/core/patch.js';
import type { PatchResult } from '../../src/core/types.js';

const commit = 'faecb196815e248d3ecfb03c680a4507229c2a56';

function patchOf(files: Array<{ file: string; after: string }>): PatchResult {
  return { files: files.map((f) => ({ ...f, targets: [], before: 'x' })), diff: '', changes: [] };
}

describe('source volume identity', () => {
  it('names the content, never a host path', () => {
    expect(sourceContentId({ kind: 'git', commit, tree: 'abc' }, './cmd/kubeadm')).toBe(`git:${commit}:abc ./cmd/kubeadm`);
    expect(sourceContentId({ kind: 'tarball', sha256: 'ff' }, './cmd/kubeadm')).toBe('tarball:sha256:ff ./cmd/kubeadm');
    expect(sourceContentId({ kind: 'dir', fingerprint: '12' }, './cmd/kubeadm')).toBe('dir:12 ./cmd/kubeadm');
  });

  it('refuses a source without the field that identifies it', () => {
    expect(() => sourceContentId({ kind: 'git' }, '.')).toThrow(/commit/);
    expect(() => sourceContentId({ kind: 'tarball' }, '.')).toThrow(/sha256/);
    expect(() => sourceContentId({ kind: 'dir' }, '.')).toThrow(/fingerprint/);
  });

  it('gives one stable, valid volume name per content, different for other content', () => {
    const a = sourceVolumeName(`git:${commit}:abc`);
    expect(a).toBe(sourceVolumeName(`git:${commit}:abc`));
    expect(a.startsWith(SOURCE_VOLUME_PREFIX)).toBe(true);
    // Docker's volume name rule
    expect(a).toMatch(/^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/);
    expect(a).toHaveLength(SOURCE_VOLUME_PREFIX.length + 24);
    expect(sourceVolumeName(`git:${commit}:abd`)).not.toBe(a);
    expect(sourceVolumeName('tarball:sha256:ff')).not.toBe(sourceVolumeName('dir:ff'));
  });
});

describe('source volume marker', () => {
  it('matches its own content only', () => {
    const m = sourceMarker('dir:1');
    expect(markerMatches(m, 'dir:1')).toBe(true);
    expect(markerMatches(m, 'dir:2')).toBe(false);
  });

  it('treats a missing, garbled or other-format marker as an unfilled volume', () => {
    expect(markerMatches(undefined, 'dir:1')).toBe(false);
    expect(markerMatches('', 'dir:1')).toBe(false);
    expect(markerMatches('{"content":"dir:1"', 'dir:1')).toBe(false);
    expect(markerMatches(JSON.stringify({ format: 0, content: 'dir:1' }), 'dir:1')).toBe(false);
    expect(markerMatches(JSON.stringify({ content: 'dir:1' }), 'dir:1')).toBe(false);
  });
});

describe('overlay files of one build', () => {
  const sources = { [CONSTANTS_FILE]: 'const pristine', [CLIENT_GO_CERT_FILE]: 'cert pristine', [KUBEADM_PKI_HELPERS_FILE]: undefined };

  it('writes every patch target the tree has: patched where patched, pristine otherwise', () => {
    const files = overlayFiles(sources, patchOf([{ file: CONSTANTS_FILE, after: 'const patched' }]));
    expect([...files.entries()]).toEqual([
      [CONSTANTS_FILE, 'const patched'],
      // unchanged by this patch, still written: the volume may hold an earlier build's patch
      [CLIENT_GO_CERT_FILE, 'cert pristine'],
    ]);
  });

  it('writes the pristine files back when the patch changes nothing', () => {
    const files = overlayFiles(sources, patchOf([]));
    expect(files.get(CONSTANTS_FILE)).toBe('const pristine');
    expect(files.get(CLIENT_GO_CERT_FILE)).toBe('cert pristine');
    expect(files.has(KUBEADM_PKI_HELPERS_FILE)).toBe(false);
  });

  it('refuses a patched file the sources do not have', () => {
    expect(() => overlayFiles(sources, patchOf([{ file: KUBEADM_PKI_HELPERS_FILE, after: 'x' }]))).toThrow(/not among the patch sources/);
  });
});
