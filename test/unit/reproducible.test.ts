import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/core/errors.js';
import { createBuildPlan, inputDigests } from '../../src/core/plan.js';
import {
  formatBuildDate,
  goVersionOfImageName,
  reproducibilityOf,
  selectBuildDate,
} from '../../src/core/reproducible.js';
import { resolveValidityPair } from '../../src/core/validity.js';
import { parseVersionOutput, versionInfoFromFlags } from '../../src/core/version.js';
import { V12415_DEFAULT } from './fixtures/version-outputs.js';

const v12415 = parseVersionOutput(V12415_DEFAULT).info;
const validity = resolveValidityPair('199y', '200y');

describe('buildDate selection', () => {
  it('formats like hack/lib/version.sh (UTC, seconds, Z)', () => {
    expect(formatBuildDate(1610544000)).toBe('2021-01-13T13:20:00Z');
    expect(formatBuildDate(0)).toBe('1970-01-01T00:00:00Z');
  });

  it('takes the source time when SOURCE_DATE_EPOCH is unset or empty', () => {
    for (const sde of [undefined, '', '  ']) {
      expect(
        selectBuildDate({ sourceDateEpoch: sde, sourceTime: 1610544000.7, sourceOrigin: 'git commit time' }),
      ).toEqual({
        buildDate: '2021-01-13T13:20:00Z',
        epoch: 1610544000,
        origin: 'git commit time',
      });
    }
  });

  it('SOURCE_DATE_EPOCH wins over the source', () => {
    const d = selectBuildDate({
      sourceDateEpoch: '1700000000',
      sourceTime: 1610544000,
      sourceOrigin: 'newest tarball entry',
    });
    expect(d).toEqual({ buildDate: '2023-11-14T22:13:20Z', epoch: 1700000000, origin: 'SOURCE_DATE_EPOCH' });
  });

  it('refuses a SOURCE_DATE_EPOCH that is not whole seconds', () => {
    for (const bad of ['-1', '1.5', 'yesterday', '2021-01-13']) {
      expect(() =>
        selectBuildDate({
          sourceDateEpoch: bad,
          sourceTime: 0,
          sourceOrigin: 'newest file in the directory',
        }),
      ).toThrow(UsageError);
    }
  });

  it("the plan writes the selected buildDate into every version package instead of the version's own", () => {
    const plan = createBuildPlan({
      version: { ...v12415, buildDate: '2023-06-14T09:47:03Z' },
      validity,
      buildDate: '2021-01-13T13:20:00Z',
    });
    expect(plan.ldflags).toContain(
      '-X k8s.io/kubernetes/vendor/k8s.io/component-base/version.buildDate=2021-01-13T13:20:00Z',
    );
    expect(plan.ldflags).not.toContain('2023-06-14T09:47:03Z');
    expect(plan.ldflags.split(' ')).toContain('-buildid=');
    // and it changes the cache key
    const other = createBuildPlan({ version: v12415, validity, buildDate: '2021-01-13T13:20:01Z' });
    expect(other.cacheKey).not.toBe(plan.cacheKey);
  });
});

describe('the Go that really builds', () => {
  it('reads the Go version from an image tag', () => {
    expect(goVersionOfImageName('golang:1.19.8-alpine')).toBe('go1.19.8');
    expect(goVersionOfImageName('local/golang:1.19.8')).toBe('go1.19.8');
    expect(goVersionOfImageName('registry.local:5000/golang:1.22')).toBe('go1.22');
    expect(goVersionOfImageName('registry.local:5000/golang')).toBe('');
    expect(goVersionOfImageName('golang:latest')).toBe('');
    expect(goVersionOfImageName('golang@sha256:abcd')).toBe('');
  });

  it("judges reproducibility by the --image Go, not the target's", () => {
    const v115 = versionInfoFromFlags({
      kubernetesVersion: 'v1.15.0',
      commit: 'e8462b5b5dc2584fdcd18e6bcfe9f1e4d970a529',
      goVersion: '1.12.5',
    });
    const hasNote = (p: { notes: string[] }) => p.notes.some((n) => n.startsWith('reproducibility:'));
    expect(hasNote(createBuildPlan({ version: v115, validity }))).toBe(true);
    const withImage = createBuildPlan({ version: v115, validity, image: 'local/golang:1.19.8' });
    expect(hasNote(withImage)).toBe(false);
    expect(withImage.buildGoVersion).toBe('go1.19.8');
    // an image without a version in its tag: the target's Go decides
    expect(hasNote(createBuildPlan({ version: v115, validity, image: 'mygo:latest' }))).toBe(true);
    expect(hasNote(createBuildPlan({ version: v12415, validity, image: 'local/golang:1.12.5' }))).toBe(true);
    expect(createBuildPlan({ version: v115, validity, image: 'local/golang:1.19.8' }).goFlags).not.toContain(
      '-trimpath',
    );
  });

  it('says where a Go cannot promise identical bytes instead of claiming it', () => {
    expect(reproducibilityOf('go1.19.8')).toEqual({ reproducible: true, notes: [] });
    const old = reproducibilityOf('go1.12.5');
    expect(old.reproducible).toBe(false);
    expect(old.notes[0]).toContain('older than Go 1.13');
    expect(reproducibilityOf('').reproducible).toBe(false);
    const v115 = versionInfoFromFlags({
      kubernetesVersion: 'v1.15.0',
      commit: 'e8462b5b5dc2584fdcd18e6bcfe9f1e4d970a529',
      goVersion: '1.12.5',
    });
    expect(
      createBuildPlan({ version: v115, validity }).notes.some((n) => n.startsWith('reproducibility:')),
    ).toBe(true);
  });
});

describe('input digests', () => {
  it('change for exactly the input that changed, whatever the key order', () => {
    const a = inputDigests({ validity: { leaf: 1, ca: 2 }, image: 'x' });
    const b = inputDigests({ image: 'x', validity: { ca: 2, leaf: 1 } });
    expect(a).toEqual(b);
    const c = inputDigests({ image: 'x', validity: { ca: 2, leaf: 3 } });
    expect(c.image).toBe(a.image);
    expect(c.validity).not.toBe(a.validity);
  });
});
