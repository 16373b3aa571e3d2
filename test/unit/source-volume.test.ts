import { describe, expect, it } from 'vitest';
import {
  checkMarker,
  filledDigest,
  overlayFiles,
  sourceContentId,
  sourceMarker,
  sourceVolumeName,
  SOURCE_VOLUME_FORMAT,
  SOURCE_VOLUME_PREFIX,
} from '../../src/core/source-volume.js';
import {
  CLIENT_GO_CERT_FILE,
  CONSTANTS_FILE,
  KUBEADM_PKI_HELPERS_FILE,
} from '../../src/core/patch-targets.js';
import type { TreePatch } from '../../src/core/types.js';

const commit = 'faecb196815e248d3ecfb03c680a4507229c2a56';

function patchOf(files: Array<{ file: string; after: string }>): TreePatch {
  return { files: files.map((f) => ({ ...f, targets: [], before: 'x' })), diff: '', changes: [] };
}

describe('source volume identity', () => {
  it('names the content, never a host path', () => {
    expect(sourceContentId({ kind: 'git', commit, tree: 'abc' }, './cmd/kubeadm')).toBe(
      `git:${commit}:abc ./cmd/kubeadm`,
    );
    expect(sourceContentId({ kind: 'tarball', sha256: 'ff' }, './cmd/kubeadm')).toBe(
      'tarball:sha256:ff ./cmd/kubeadm',
    );
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
  const files = filledDigest([
    { path: 'cmd/kubeadm/kubeadm.go', kind: 'file', mode: 0o100644, sha256: 'a'.repeat(64) },
    { path: 'vendor/k8s.io/api', kind: 'symlink', target: '../../staging/src/k8s.io/api' },
  ]);

  it("records the content and the digest of the filled files; reused only when both are this build's", () => {
    const m = sourceMarker('dir:1', files, 2);
    expect(JSON.parse(m)).toEqual({ format: SOURCE_VOLUME_FORMAT, content: 'dir:1', files, count: 2 });
    expect(checkMarker(m, 'dir:1', files)).toEqual({ action: 'reuse' });
  });

  it('fills a volume without a marker (new, or a fill cut short), and refills one of this content filled with other files', () => {
    expect(checkMarker(undefined, 'dir:1', files)).toEqual({ action: 'fill', reason: 'no marker' });
    expect(checkMarker(sourceMarker('dir:1', 'b'.repeat(64), 2), 'dir:1', files)).toMatchObject({
      action: 'fill',
    });
  });

  it('refuses a volume whose marker names another source, another format, or cannot be read', () => {
    expect(checkMarker(sourceMarker('dir:2', files, 2), 'dir:1', files)).toMatchObject({
      action: 'refuse',
      reason: expect.stringContaining('another source (dir:2)'),
    });
    for (const text of [
      '',
      '{"content":"dir:1"',
      'null',
      JSON.stringify({ format: 2, content: 'dir:1' }),
      JSON.stringify({ content: 'dir:1', files }),
    ]) {
      expect({ text, verdict: checkMarker(text, 'dir:1', files).action }).toEqual({
        text,
        verdict: 'refuse',
      });
    }
  });

  it('the files digest changes with a path, a mode, a content digest or a link target, not with the order', () => {
    const file = { path: 'a.go', kind: 'file' as const, mode: 0o644, sha256: 'a'.repeat(64) };
    const link = { path: 'l', kind: 'symlink' as const, target: 'x' };
    const d = filledDigest([file, link]);
    expect(filledDigest([link, file])).toBe(d);
    expect(filledDigest([{ ...file, path: 'b.go' }, link])).not.toBe(d);
    expect(filledDigest([{ ...file, mode: 0o755 }, link])).not.toBe(d);
    expect(filledDigest([{ ...file, sha256: 'b'.repeat(64) }, link])).not.toBe(d);
    expect(filledDigest([file, { ...link, target: 'y' }])).not.toBe(d);
  });
});

describe('overlay files of one build', () => {
  const sources = {
    [CONSTANTS_FILE]: 'const pristine',
    [CLIENT_GO_CERT_FILE]: 'cert pristine',
    [KUBEADM_PKI_HELPERS_FILE]: undefined,
  };

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
    expect(() => overlayFiles(sources, patchOf([{ file: KUBEADM_PKI_HELPERS_FILE, after: 'x' }]))).toThrow(
      /not among the patch sources/,
    );
  });
});
