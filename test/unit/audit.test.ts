import { describe, expect, it } from 'vitest';
import type { CacheManifest } from '../../src/cache/manifest.js';
import { changedRecordedInputs, rebuildDifferences } from '../../src/core/audit.js';
import { inputDigests } from '../../src/core/plan.js';

// audit's judgement (pure): which recorded input changed after the build, and what differs
// between a recorded build and its rebuild, from manifests written as the store writes them.

const y = (n: number) => ({ hours: n * 8760, text: `${n}y` });

function manifest(over: { leaf?: number; sha256?: string; imageId?: string; commit?: string } = {}): CacheManifest {
  const inputs: Record<string, unknown> = {
    version: { gitVersion: 'v1.20.2', gitCommit: 'faecb196815e248d3ecfb03c680a4507229c2a56' },
    validity: { leaf: y(199), ca: y(200) },
    image: 'local/golang:1.19.8',
    platform: 'linux/amd64',
    ldflags: '-s -w -buildid= -X a.b=c',
    env: { CGO_ENABLED: '0' },
    source: 'tarball:sha256:aa',
  };
  const patches = '--- a/x\n+++ b/x\n';
  return {
    schema: 1,
    key: 'k'.repeat(64),
    inputs,
    gitVersion: 'v1.20.2',
    gitCommit: 'faecb196815e248d3ecfb03c680a4507229c2a56',
    goVersion: 'go1.19.8',
    platform: 'linux/amd64',
    validity: y(199),
    caValidity: y(200),
    image: 'local/golang:1.19.8',
    imageId: over.imageId ?? 'sha256:11',
    patches,
    toolVersion: '0.1.0',
    sha256: over.sha256 ?? 'a'.repeat(64),
    size: 10,
    created: '2026-11-28T21:00:00Z',
    provenance: {
      source: { kind: 'tarball', sha256: 'aa', location: '/src/k.tgz' },
      buildDate: '2021-01-13T13:20:00Z',
      env: { CGO_ENABLED: '0', GOOS: 'linux' },
      args: ['go', 'build', '-tags=selinux,notest'],
      inputDigests: inputDigests({ ...inputs, patches }),
    },
  };
}

describe('changed recorded inputs', () => {
  it('none in a manifest as written', () => {
    expect(changedRecordedInputs(manifest())).toEqual([]);
  });

  it('names the validity when only the top-level copy was edited', () => {
    const m = manifest();
    m.validity = y(100);
    const d = changedRecordedInputs(m);
    expect(d.map((x) => x.name)).toEqual(['validity']);
    expect(d[0]!.text).toContain('100y');
  });

  it('names the validity when both copies were edited (the build-time digest disagrees)', () => {
    const m = manifest();
    m.validity = y(100);
    (m.inputs.validity as { leaf: unknown }).leaf = y(100);
    expect(changedRecordedInputs(m).map((x) => x.name)).toEqual(['validity']);
  });

  it('names an edited patch diff and an added input', () => {
    const m = manifest();
    m.patches += '+evil\n';
    m.inputs.extra = 1;
    expect(changedRecordedInputs(m).map((x) => x.name).sort()).toEqual(['extra', 'patches']);
  });
});

describe('rebuild differences', () => {
  it('none when everything matches', () => {
    expect(rebuildDifferences(manifest(), manifest())).toEqual([]);
  });

  it('an input: another source tarball', () => {
    const rebuilt = manifest({ sha256: 'b'.repeat(64) });
    rebuilt.inputs.source = 'tarball:sha256:bb';
    rebuilt.provenance!.source!.sha256 = 'bb';
    const d = rebuildDifferences(manifest(), rebuilt);
    expect(d.map((x) => `${x.kind} ${x.name}`)).toEqual(['input source', 'input source.sha256']);
  });

  it('the environment: another image id behind the same name', () => {
    const d = rebuildDifferences(manifest(), manifest({ imageId: 'sha256:22', sha256: 'b'.repeat(64) }));
    expect(d.map((x) => `${x.kind} ${x.name}`)).toEqual(['environment imageId']);
  });

  it('only the bytes: same inputs and environment, different sha256', () => {
    const d = rebuildDifferences(manifest(), manifest({ sha256: 'b'.repeat(64) }));
    expect(d).toHaveLength(1);
    expect(d[0]).toMatchObject({ kind: 'bytes', name: 'sha256' });
    expect(d[0]!.text).toContain('not reproducible');
  });
});
