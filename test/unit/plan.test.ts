import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/core/errors.js';
import {
  assertBuildable,
  canonicalJson,
  createBuildPlan,
  inferBuildMode,
  parsePlatformList,
  platformCacheKey,
} from '../../src/core/plan.js';
import { resolveValidityPair } from '../../src/core/validity.js';
import { parseVersionOutput, versionInfoFromFlags } from '../../src/core/version.js';
import { V12415_DEFAULT } from './fixtures/version-outputs.js';

const v12415 = parseVersionOutput(V12415_DEFAULT).info;
const validity = resolveValidityPair('199y', '200y');

describe('createBuildPlan', () => {
  it('plans v1.24.15: image, platform, inferred GOPATH mode, env, flags', () => {
    const plan = createBuildPlan({ version: v12415, validity });
    expect(plan.image).toBe('golang:1.19.10-alpine');
    expect(plan.platforms).toEqual([{ os: 'linux', arch: 'amd64' }]);
    expect(plan.buildMode).toBe('gopath');
    expect(plan.buildModeSource).toBe('inferred');
    expect(plan.env).toMatchObject({ CGO_ENABLED: '0', GO111MODULE: 'off', GOTOOLCHAIN: 'local' });
    expect(plan.goFlags).toEqual(['-tags=selinux,notest']);
    expect(plan.ldflags).toContain(
      '-X k8s.io/kubernetes/vendor/k8s.io/component-base/version.gitCommit=2c67202dc0bb96a7a837cbfb8d72e1f34dfc2808',
    );
    expect(plan.package).toBe('./cmd/kubeadm');
    expect(plan.containerSourceDir).toBe('/go/src/k8s.io/kubernetes');
    expect(plan.cacheKey).toMatch(/^[0-9a-f]{64}$/);
    expect(plan.notes.some((n) => n.includes('inferred'))).toBe(true);
    expect(plan.notes.some((n) => n.includes('kubeadm-config'))).toBe(false);
  });

  it('uses the tree build mode when given, module mode with -mod=vendor', () => {
    const plan = createBuildPlan({
      version: v12415,
      validity,
      buildMode: { mode: 'module', source: 'tree' },
    });
    expect(plan.buildModeSource).toBe('tree');
    expect(plan.env).toMatchObject({ GO111MODULE: 'on', GOFLAGS: '-mod=vendor' });
    expect(plan.ldflags).not.toContain('/vendor/');
    expect(plan.notes.some((n) => n.includes('inferred'))).toBe(false);
  });

  it('infers module mode from 1.30', () => {
    expect(inferBuildMode({ major: 1, minor: 29, patch: 9, pre: '' })).toBe('gopath');
    expect(inferBuildMode({ major: 1, minor: 30, patch: 0, pre: '' })).toBe('module');
  });

  it('never adds -trimpath (the fixed container path keeps host paths out; old Go would rebuild std)', () => {
    const v = versionInfoFromFlags({
      kubernetesVersion: 'v1.15.0',
      commit: 'e8462b5b5dc2584fdcd18e6bcfe9f1e4d970a529',
      goVersion: '1.12.5',
    });
    expect(createBuildPlan({ version: v, validity }).goFlags).toEqual(['-tags=selinux,notest']);
  });

  it('warns about the kubeadm-config ConfigMap from 1.31, with the values to set', () => {
    const v = versionInfoFromFlags({
      kubernetesVersion: 'v1.31.0',
      commit: '9edcffcde5595e8a5b1a35f88c421764e575afce',
      goVersion: '1.22.5',
    });
    const note = createBuildPlan({ version: v, validity }).notes.find((n) => n.includes('kubeadm-config'));
    expect(note).toContain('certificateValidityPeriod: 1743240h0m0s');
    expect(note).toContain('caCertificateValidityPeriod: 1752000h0m0s');
    expect(note).toContain('--certificate-renewal=false');
  });

  it('says what is unknown with --kubernetes-version alone, and build refuses it', () => {
    const plan = createBuildPlan({
      version: versionInfoFromFlags({ kubernetesVersion: 'v1.24.15' }),
      validity,
    });
    expect(plan.image).toBe('');
    expect(plan.platforms).toEqual([{ os: 'linux', arch: 'amd64' }]);
    expect(plan.notes.join('\n')).toMatch(/commit unknown: build needs it/);
    expect(plan.notes.join('\n')).toMatch(/Go version unknown/);
    expect(() => assertBuildable(plan)).toThrow(/commit of v1.24.15 is unknown/);
    const noGo = createBuildPlan({
      version: versionInfoFromFlags({
        kubernetesVersion: 'v1.24.15',
        commit: '2c67202dc0bb96a7a837cbfb8d72e1f34dfc2808',
      }),
      validity,
    });
    expect(() => assertBuildable(noGo)).toThrow(/Go version of v1.24.15 is unknown/);
    expect(() => assertBuildable(createBuildPlan({ version: v12415, validity }))).not.toThrow();
  });

  it('refuses kubeadm <=1.14', () => {
    expect(() =>
      createBuildPlan({ version: versionInfoFromFlags({ kubernetesVersion: 'v1.14.10' }), validity }),
    ).toThrow(UsageError);
  });

  it('changes the cache key with every input that changes the binary, and only those', () => {
    const base = createBuildPlan({ version: v12415, validity }).cacheKey;
    expect(createBuildPlan({ version: v12415, validity }).cacheKey).toBe(base);
    const variants = [
      createBuildPlan({ version: v12415, validity: resolveValidityPair('198y', '200y') }),
      createBuildPlan({ version: v12415, validity: resolveValidityPair('199y', '201y') }),
      createBuildPlan({ version: { ...v12415, goVersion: 'go1.19.9' }, validity }),
      createBuildPlan({ version: { ...v12415, gitCommit: '0'.repeat(40) }, validity }),
      createBuildPlan({ version: v12415, validity, platforms: [{ os: 'linux', arch: 'arm64' }] }),
      createBuildPlan({ version: v12415, validity, buildMode: { mode: 'module', source: 'tree' } }),
      createBuildPlan({ version: v12415, validity, source: 'tarball:abc' }),
      createBuildPlan({ version: v12415, validity, image: 'local/golang:1.19.8' }),
    ].map((p) => p.cacheKey);
    expect(new Set([base, ...variants]).size).toBe(variants.length + 1);
    // Where the build mode came from does not change the binary.
    expect(
      createBuildPlan({ version: v12415, validity, buildMode: { mode: 'gopath', source: 'tree' } }).cacheKey,
    ).toBe(base);
  });

  it('gives each platform its own cache key', () => {
    const plan = createBuildPlan({
      version: v12415,
      validity,
      platforms: parsePlatformList('linux/amd64,linux/arm64'),
    });
    const a = platformCacheKey(plan, plan.platforms[0]!);
    const b = platformCacheKey(plan, plan.platforms[1]!);
    expect(a).not.toBe(b);
    expect(a).toBe(createBuildPlan({ version: v12415, validity }).cacheKey);
  });
});

describe('helpers', () => {
  it('parses platform lists, repeated and comma-separated, without duplicates', () => {
    expect(parsePlatformList(['linux/amd64,linux/arm64', 'linux/amd64'])).toEqual([
      { os: 'linux', arch: 'amd64' },
      { os: 'linux', arch: 'arm64' },
    ]);
    expect(() => parsePlatformList('linux')).toThrow(/--platform "linux"/);
  });
  it('writes canonical JSON with sorted keys', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: 'x' }], e: undefined })).toBe(
      '{"a":[{"c":"x","d":2}],"b":1}',
    );
  });
});
