import { describe, expect, it } from 'vitest';
import { changedRecordedInputs, rebuildDifferences } from '../../src/core/audit.js';
import { auditManifest as manifest, years as y } from './fixtures/audit-manifest.js';

// audit's judgement (pure): which recorded input changed after the build, and what differs
// between a recorded build and its rebuild, from manifests written as the store writes them.

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
    expect(
      changedRecordedInputs(m)
        .map((x) => x.name)
        .sort(),
    ).toEqual(['extra', 'patches']);
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

  it('an input: the same directory path and version with other content is a changed source', () => {
    const dirSource = (fp: string) => {
      const m = manifest({ sha256: `${fp[0]!}`.repeat(64), location: '/src/current' });
      m.inputs.source = `dir:tree2:${fp}`;
      m.provenance!.source = { kind: 'dir', fingerprint: `tree2:${fp}`, location: '/src/current' };
      return m;
    };
    const d = rebuildDifferences(dirSource('a'.repeat(64)), dirSource('b'.repeat(64)));
    expect(d.map((x) => `${x.kind} ${x.name}`)).toEqual(['input source', 'input source.fingerprint']);
    expect(d[0]!.text).toMatch(
      /^source changed: the same path \/src\/current, other content \(recorded dir:tree2:a+/,
    );
    const elsewhere = dirSource('b'.repeat(64));
    elsewhere.provenance!.source!.location = '/src/other';
    expect(rebuildDifferences(dirSource('a'.repeat(64)), elsewhere)[0]!.text).toMatch(
      /^source changed: another source /,
    );
    // a manifest of the older path-and-mtime fingerprint: not comparable, and said so
    const old = dirSource('a'.repeat(64));
    old.inputs.source = 'dir:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
    expect(rebuildDifferences(old, dirSource('b'.repeat(64)))[0]!.text).toContain('older scheme');
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
