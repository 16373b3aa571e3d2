import { describe, expect, it } from 'vitest';
import {
  BUILD_COMMON_FILE,
  CROSS_VERSION_FILE,
  DEPENDENCIES_FILE,
  GO_VERSION_FILE,
  goVersionFromTree,
  goVersionOfCrossTag,
} from '../../src/core/tree-go-version.js';
import { KfError } from '../../src/core/errors.js';

// The Go version of a tree, read from the files the release itself names it in (.go-version,
// the kube-cross image tag, build/common.sh, build/dependencies.yaml), never guessed.

const deps1202 = `dependencies:
  - name: "golang: upstream version"
    version: 1.15.5
    refPaths:
    - path: build/build-image/cross/VERSION
  - name: "k8s.gcr.io/kube-cross: dependents"
    version: v1.15.5-1
    refPaths:
    - path: build/build-image/cross/VERSION
`;

describe('goVersionOfCrossTag', () => {
  it.each([
    ['v1.15.5-1', 'go1.15.5'],
    ['v1.12.5-1', 'go1.12.5'],
    ['v1.26.0-go1.19.5-bullseye.0', 'go1.19.5'],
    ['v1.28.0-go1.20.11-bullseye.0', 'go1.20.11'],
    ['v1.23.0-go1.17', 'go1.17'],
  ])('%s -> %s', (tag, go) => expect(goVersionOfCrossTag(tag)).toBe(go));

  it.each(['latest', 'v1.15.5', '1.15.5-1', 'v1.15.5-1; rm -rf /', 'v01.15.5-1'])(
    '%s is no kube-cross tag',
    (tag) => expect(goVersionOfCrossTag(tag)).toBeUndefined(),
  );
});

describe('goVersionFromTree', () => {
  it('.go-version first (1.27+)', () => {
    expect(
      goVersionFromTree({
        [GO_VERSION_FILE]: '1.20.11\n',
        [CROSS_VERSION_FILE]: 'v1.28.0-go1.20.10-bullseye.0\n',
      }),
    ).toEqual({
      goVersion: 'go1.20.11',
      from: '.go-version "1.20.11"',
    });
  });

  it("Debian's 1.20.2 layout: cross/VERSION v1.15.5-1 is Go 1.15.5", () => {
    expect(goVersionFromTree({ [CROSS_VERSION_FILE]: 'v1.15.5-1\n', [DEPENDENCIES_FILE]: deps1202 })).toEqual(
      {
        goVersion: 'go1.15.5',
        from: 'build/build-image/cross/VERSION "v1.15.5-1"',
      },
    );
  });

  it('a literal kube-cross tag in build/common.sh', () => {
    const common =
      '#!/usr/bin/env bash\nKUBE_BUILD_IMAGE_CROSS_TAG=v1.12.5-1\nreadonly KUBE_BUILD_IMAGE_VERSION_BASE=0.1\n';
    expect(goVersionFromTree({ [BUILD_COMMON_FILE]: common })?.goVersion).toBe('go1.12.5');
    const quoted = 'readonly KUBE_BUILD_IMAGE_CROSS_TAG="v1.13.4-1"\n';
    expect(goVersionFromTree({ [BUILD_COMMON_FILE]: quoted })?.from).toBe('build/common.sh "v1.13.4-1"');
  });

  it('common.sh reading the tag from cross/VERSION says nothing; dependencies.yaml then does', () => {
    const common =
      'readonly KUBE_BUILD_IMAGE_CROSS_TAG="$(cat "${KUBE_ROOT}/build/build-image/cross/VERSION")"\n';
    expect(goVersionFromTree({ [BUILD_COMMON_FILE]: common })).toBeUndefined();
    expect(goVersionFromTree({ [BUILD_COMMON_FILE]: common, [DEPENDENCIES_FILE]: deps1202 })).toEqual({
      goVersion: 'go1.15.5',
      from: 'build/dependencies.yaml "v1.15.5-1"',
    });
  });

  it('nothing to go by: undefined (plan says unknown, build asks for --go-version)', () => {
    expect(goVersionFromTree({})).toBeUndefined();
    expect(goVersionFromTree({ [DEPENDENCIES_FILE]: 'dependencies: []\n' })).toBeUndefined();
  });

  it.each([
    [
      GO_VERSION_FILE,
      'latest\n',
      '.go-version in the source tree says "latest": expected a Go version such as 1.20.11',
    ],
    [GO_VERSION_FILE, '1.20.11\x1b[2J\n', '.go-version in the source tree says "1.20.11\\u001b[2J"'],
    [
      CROSS_VERSION_FILE,
      'v1.15.5\n',
      'build/build-image/cross/VERSION in the source tree says "v1.15.5": expected a kube-cross tag',
    ],
    [DEPENDENCIES_FILE, 'dependencies: [\n', 'build/dependencies.yaml in the source tree is not valid YAML'],
  ])('refuses %s that says %j, naming the file, control characters escaped', (file, text, what) => {
    let err: unknown;
    try {
      goVersionFromTree({ [file]: text });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KfError);
    expect((err as KfError).what).toContain(what);
    expect([...(err as KfError).what].some((c) => c.charCodeAt(0) < 0x20)).toBe(false);
    expect((err as KfError).next).toContain('--go-version');
  });
});
