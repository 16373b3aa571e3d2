import { describe, expect, it } from 'vitest';
import { buildLdflags, versionPackagePaths, versionXFlags } from '../../src/core/ldflags.js';
import { parseKubeVersion, parseVersionOutput } from '../../src/core/version.js';
import { k8s1202 } from '../helpers/env.js';

const v1202 = parseVersionOutput(k8s1202.versionJson).info;
const kube = parseKubeVersion(v1202.gitVersion);

describe('ldflags', () => {
  it('sets the vendored paths in GOPATH mode (plain ones are ignored by the linker there)', () => {
    const paths = versionPackagePaths('gopath');
    expect(paths).toContain('k8s.io/kubernetes/vendor/k8s.io/component-base/version');
    expect(paths).toContain('k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version');
    expect(paths).toContain('k8s.io/kubernetes/pkg/version');
    expect(paths).not.toContain('k8s.io/kubernetes/vendor/k8s.io/kubernetes/pkg/version');
  });

  it('sets the plain import paths in module mode', () => {
    expect(versionPackagePaths('module')).toEqual([
      'k8s.io/component-base/version',
      'k8s.io/client-go/pkg/version',
      'k8s.io/kubernetes/pkg/version',
    ]);
  });

  it('reports exactly the original version, commit, major, minor, tree state and build date', () => {
    const flags = versionXFlags(v1202, kube, 'gopath');
    for (const [name, value] of [
      ['gitVersion', 'v1.20.2'],
      ['gitCommit', k8s1202.gitCommit],
      ['gitMajor', '1'],
      ['gitMinor', '20'],
      ['gitTreeState', 'clean'],
      ['buildDate', '2021-01-13T13:25:59Z'],
    ]) {
      expect(flags).toContain(`-X k8s.io/kubernetes/vendor/k8s.io/component-base/version.${name}=${value}`);
      expect(flags).toContain(`-X k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version.${name}=${value}`);
    }
    expect(flags).toHaveLength(5 * 6);
  });

  it('strips with -s -w and leaves out unknown values', () => {
    const ld = buildLdflags({ ...v1202, buildDate: '', gitTreeState: '' }, kube, 'module');
    expect(ld.startsWith('-s -w -buildid= -X k8s.io/component-base/version.gitVersion=v1.20.2 ')).toBe(true);
    expect(ld).not.toContain('buildDate');
    expect(ld).toContain('gitTreeState=clean');
    expect(buildLdflags(v1202, kube, 'module', { strip: false }).startsWith('-buildid= -X ')).toBe(true);
  });

  it('always empties the build id (reproducible bytes), as one whole argument', () => {
    for (const strip of [true, false]) {
      const args = buildLdflags(v1202, kube, 'gopath', { strip }).split(' ');
      expect(args.filter((a) => a === '-buildid=')).toHaveLength(1);
    }
  });
});
