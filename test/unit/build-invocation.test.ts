import { describe, expect, it } from 'vitest';
import { createBuildPlan } from '../../src/core/plan.js';
import { resolveValidityPair } from '../../src/core/validity.js';
import { parseVersionOutput } from '../../src/core/version.js';
import { goBuildInvocation, GO_CACHE_DIR } from '../../src/core/go-invocation.js';
import { outputPath } from '../../src/build/index.js';
import { k8s1202 } from '../helpers/env.js';

const plan = (mode: 'gopath' | 'module') =>
  createBuildPlan({
    version: parseVersionOutput(k8s1202.versionJson).info,
    validity: resolveValidityPair('199y', '200y'),
    platforms: [
      { os: 'linux', arch: 'amd64' },
      { os: 'linux', arch: 'arm64' },
    ],
    buildMode: { mode, source: 'tree' },
  });

describe('goBuildInvocation', () => {
  it('is an argument array: -ldflags is one argument, whatever spaces it holds', () => {
    const p = plan('gopath');
    const go = goBuildInvocation(p, { os: 'linux', arch: 'arm64' });
    expect(go.cmd.slice(0, 2)).toEqual(['go', 'build']);
    const i = go.cmd.indexOf('-ldflags');
    expect(go.cmd[i + 1]).toBe(p.ldflags);
    expect(p.ldflags).toContain(
      '-X k8s.io/kubernetes/vendor/k8s.io/component-base/version.gitVersion=v1.20.2',
    );
    expect(go.cmd.at(-1)).toBe('./cmd/kubeadm');
    expect(go.cmd).not.toContain('-trimpath');
    expect(go.cmd[go.cmd.indexOf('-o') + 1]).toBe(go.output);
    expect(go.workingDir).toBe('/go/src/k8s.io/kubernetes');
  });

  it('sets GOOS/GOARCH per platform and the Go cache on the volume, keeping the plan env', () => {
    const gopath = goBuildInvocation(plan('gopath'), { os: 'linux', arch: 'arm64' });
    expect(gopath.env).toMatchObject({
      GOOS: 'linux',
      GOARCH: 'arm64',
      GOCACHE: GO_CACHE_DIR,
      GO111MODULE: 'off',
      CGO_ENABLED: '0',
    });
    const module = goBuildInvocation(plan('module'), { os: 'linux', arch: 'amd64' });
    expect(module.env).toMatchObject({
      GOOS: 'linux',
      GOARCH: 'amd64',
      GOFLAGS: '-mod=vendor',
      GOTOOLCHAIN: 'local',
    });
    expect(gopath.output).not.toBe(module.output);
  });
});

describe('outputPath', () => {
  it('is --out itself for one platform and --out-os-arch for several', () => {
    expect(outputPath('./kubeadm-custom', { os: 'linux', arch: 'amd64' }, 1)).toBe('./kubeadm-custom');
    expect(outputPath('./kubeadm-custom', { os: 'linux', arch: 'arm64' }, 2)).toBe(
      './kubeadm-custom-linux-arm64',
    );
  });
});
