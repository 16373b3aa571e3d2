import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/core/errors.js';
import {
  duplicateJsonKey,
  isYamlVersionOutput,
  normalizeGoVersion,
  parseKubeVersion,
  parsePlatform,
  parseVersionOutput as parseWith,
  versionInfoFromFlags,
} from '../../src/core/version.js';
import { yamlVersionReader } from '../../src/core/version-yaml.js';

/** As the adapter reads it (adapters/kubeadm-version.ts parseAnyVersionOutput): YAML with its reader. */
const parseVersionOutput = (text: string) => parseWith(text, yamlVersionReader);

import {
  COMMIT,
  V1202_YAML,
  V12415_DEFAULT,
  V12415_JSON,
  V1330_DEFAULT,
  V1330_JSON_EMPTY,
  V1330_JSON_OMITTED,
  V1330_YAML_EMPTY,
  V1330_YAML_OMITTED,
} from './fixtures/version-outputs.js';

function usageErrorOf(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return err as UsageError;
  }
  throw new Error('expected a UsageError');
}

describe('parseVersionOutput', () => {
  it('reads the default format of v1.24.15', () => {
    const { format, info } = parseVersionOutput(V12415_DEFAULT);
    expect(format).toBe('default');
    expect(info).toEqual({
      gitVersion: 'v1.24.15',
      gitCommit: COMMIT,
      gitTreeState: 'clean',
      buildDate: '2023-06-14T19:17:05Z',
      goVersion: 'go1.19.10',
      compiler: 'gc',
      platform: 'linux/amd64',
      major: '1',
      minor: '24',
    });
  });

  it('reads -o json to the same VersionInfo as the default format', () => {
    const json = parseVersionOutput(V12415_JSON);
    expect(json.format).toBe('json');
    expect(json.info).toEqual(parseVersionOutput(V12415_DEFAULT).info);
  });

  it('reads the 1.33+ default format with (empty) emulation fields', () => {
    const { info } = parseVersionOutput(V1330_DEFAULT);
    expect(info.gitVersion).toBe('v1.33.0');
    expect(info.platform).toBe('linux/arm64');
    expect(info.emulationMajor).toBe('');
    expect(info.minCompatibilityMinor).toBe('');
  });

  it.each([
    ['default', V1330_DEFAULT, 'default', true],
    ['json, empty strings', V1330_JSON_EMPTY, 'json', true],
    ['json, omitempty', V1330_JSON_OMITTED, 'json', false],
    ['yaml, empty strings', V1330_YAML_EMPTY, 'yaml', true],
    ['yaml, omitempty', V1330_YAML_OMITTED, 'yaml', false],
  ] as const)('reads 1.33+ %s to the same target', (_name, text, format, hasEmulation) => {
    const parsed = parseVersionOutput(text);
    expect(parsed.format).toBe(format);
    expect(parsed.info).toMatchObject({
      gitVersion: 'v1.33.0',
      gitCommit: '60a317eadfcb839692a68eab88b2096f4d708f4f',
      gitTreeState: 'clean',
      buildDate: '2025-04-23T13:05:48Z',
      goVersion: 'go1.24.2',
      compiler: 'gc',
      platform: 'linux/arm64',
      major: '1',
      minor: '33',
    });
    const emulation = [
      'emulationMajor',
      'emulationMinor',
      'minCompatibilityMajor',
      'minCompatibilityMinor',
    ] as const;
    // present (empty) when the output had them, absent when it left them out: verify compares only what was there
    for (const key of emulation) expect(parsed.info[key]).toBe(hasEmulation ? '' : undefined);
  });

  it('reads 1.33+ -o short as the version only', () => {
    expect(parseVersionOutput('v1.33.0\n').info).toMatchObject({
      gitVersion: 'v1.33.0',
      gitCommit: '',
      goVersion: '',
      minor: '33',
    });
  });

  it('refuses emulation fields that are not numbers, in every format', () => {
    const bad = V1330_DEFAULT.replace('EmulationMinor:""', 'EmulationMinor:"3x"');
    expect(usageErrorOf(() => parseVersionOutput(bad)).what).toBe(
      'invalid emulationMinor "3x": expected a number or empty',
    );
    const badYaml = V1330_YAML_EMPTY.replace('minCompatibilityMajor: ""', 'minCompatibilityMajor: "1;2"');
    expect(usageErrorOf(() => parseVersionOutput(badYaml)).what).toContain(
      'invalid minCompatibilityMajor "1;2"',
    );
  });

  it('reads filled emulation fields from json', () => {
    const doc = JSON.parse(V12415_JSON);
    Object.assign(doc.clientVersion, {
      emulationMajor: '1',
      emulationMinor: '33',
      minCompatibilityMajor: '1',
      minCompatibilityMinor: '32',
    });
    const { info } = parseVersionOutput(JSON.stringify(doc));
    expect([
      info.emulationMajor,
      info.emulationMinor,
      info.minCompatibilityMajor,
      info.minCompatibilityMinor,
    ]).toEqual(['1', '33', '1', '32']);
  });

  it('reads -o yaml', () => {
    const { format, info } = parseVersionOutput(V1202_YAML);
    expect(format).toBe('yaml');
    expect(info.gitVersion).toBe('v1.20.2');
    expect(info.gitCommit).toBe('faecb196815e248d3ecfb03c680a4507229c2a56');
    expect(info.goVersion).toBe('go1.15.5');
  });

  it('reads -o short as a version with unknown commit and Go version', () => {
    const { format, info } = parseVersionOutput('v1.24.15\n');
    expect(format).toBe('short');
    expect(info.gitVersion).toBe('v1.24.15');
    expect(info.gitCommit).toBe('');
    expect(info.goVersion).toBe('');
    expect(info.minor).toBe('24');
  });

  it('finds the version line among other output (e.g. warnings)', () => {
    const { info } = parseVersionOutput(`W0101 some warning\n${V12415_DEFAULT}`);
    expect(info.gitCommit).toBe(COMMIT);
  });

  it.each([
    ['gitVersion', V12415_DEFAULT.replace('v1.24.15', '1.24.15'), '"1.24.15"'],
    ['gitVersion', V12415_DEFAULT.replace('v1.24.15', 'v1.24.15+k3s1'), '"v1.24.15+k3s1"'],
    ['gitCommit', V12415_DEFAULT.replace(COMMIT, COMMIT.slice(0, 12)), `"${COMMIT.slice(0, 12)}"`],
    ['gitCommit', V12415_DEFAULT.replace(COMMIT, `${COMMIT.slice(0, 39)}g`), `${COMMIT.slice(0, 39)}g"`],
    ['goVersion', V12415_DEFAULT.replace('go1.19.10', 'go1.19.10; rm -rf /'), 'rm -rf'],
    ['goVersion', V12415_DEFAULT.replace('go1.19.10', '1.x'), '"1.x"'],
    ['platform', V12415_DEFAULT.replace('linux/amd64', 'linux'), '"linux"'],
    ['platform', V12415_DEFAULT.replace('linux/amd64', 'linux/amd64/v8'), 'linux/amd64/v8'],
    ['buildDate', V12415_DEFAULT.replace('2023-06-14T19:17:05Z', 'yesterday'), 'yesterday'],
  ])('refuses a bad %s, naming the field and value', (field, text, value) => {
    const err = usageErrorOf(() => parseVersionOutput(text));
    expect(err.what).toContain(field);
    expect(err.what).toContain(value);
  });

  it('refuses a default line with a missing field', () => {
    const err = usageErrorOf(() => parseVersionOutput(V12415_DEFAULT.replace(/GitCommit:"[^"]*", /, '')));
    expect(err.what).toBe('the kubeadm version output has no gitCommit');
  });

  it('refuses garbage, empty input, bad JSON and JSON without clientVersion', () => {
    expect(usageErrorOf(() => parseVersionOutput('hello\nworld')).what).toContain('first line: hello');
    expect(usageErrorOf(() => parseVersionOutput('  \n')).what).toContain('empty');
    expect(usageErrorOf(() => parseVersionOutput('{"clientVersion":')).what).toContain('not valid JSON');
    expect(usageErrorOf(() => parseVersionOutput('{"serverVersion":{}}')).what).toContain('no clientVersion');
    expect(usageErrorOf(() => parseVersionOutput('kubeadm version: &version.Info{Major:1}')).what).toContain(
      'near',
    );
  });
});

describe('field validators', () => {
  it('parses kube versions with pre-releases', () => {
    expect(parseKubeVersion('v1.31.0-rc.1')).toEqual({ major: 1, minor: 31, patch: 0, pre: 'rc.1' });
    expect(() => parseKubeVersion('v1.031.0')).toThrow(UsageError);
  });
  it('normalizes Go versions with or without the go prefix', () => {
    expect(normalizeGoVersion('1.19.10')).toBe('go1.19.10');
    expect(normalizeGoVersion('go1.15')).toBe('go1.15');
    expect(() => normalizeGoVersion('1.19.10-alpine')).toThrow(/goVersion "1.19.10-alpine"/);
  });
  it('parses platforms', () => {
    expect(parsePlatform('linux/arm64')).toEqual({ os: 'linux', arch: 'arm64' });
    expect(() => parsePlatform('Linux/AMD64', '--platform')).toThrow(/--platform "Linux\/AMD64"/);
  });
  it('builds a VersionInfo from flags, commit and Go optional', () => {
    const v = versionInfoFromFlags({
      kubernetesVersion: 'v1.24.15',
      commit: COMMIT.toUpperCase(),
      goVersion: '1.19.10',
    });
    expect(v.gitCommit).toBe(COMMIT);
    expect(v.goVersion).toBe('go1.19.10');
    expect(v.major).toBe('1');
    expect(v.minor).toBe('24');
    expect(versionInfoFromFlags({ kubernetesVersion: 'v1.24.15' }).gitCommit).toBe('');
    expect(() => versionInfoFromFlags({ kubernetesVersion: '1.24' })).toThrow(/--kubernetes-version "1.24"/);
    expect(() => versionInfoFromFlags({ kubernetesVersion: 'v1.24.15', commit: 'abc' })).toThrow(
      /--commit "abc"/,
    );
  });
});

describe('strict parsing: duplicate keys, impossible dates, empty flags, oversize input', () => {
  it('refuses a field given twice in every format, naming it (neither value wins)', () => {
    const dflt = V12415_DEFAULT.replace(
      'GitVersion:"v1.24.15",',
      'GitVersion:"v1.24.15", GitVersion:"v1.99.0",',
    );
    expect(usageErrorOf(() => parseVersionOutput(dflt)).what).toBe(
      'the default kubeadm version output has the field GitVersion twice',
    );
    const json = V12415_JSON.replace(
      '"gitVersion": "v1.24.15",',
      '"gitVersion": "v1.24.15", "gitVersion": "v1.99.0",',
    );
    expect(JSON.parse(json).clientVersion.gitVersion).toBe('v1.99.0'); // what JSON.parse alone would take
    expect(usageErrorOf(() => parseVersionOutput(json)).what).toBe(
      'the json kubeadm version output has the field clientVersion.gitVersion twice',
    );
    const yaml = V1202_YAML.replace(
      '  gitCommit:',
      '  gitCommit: 0000000000000000000000000000000000000000\n  gitCommit:',
    );
    expect(usageErrorOf(() => parseVersionOutput(yaml)).what).toBe(
      'the yaml kubeadm version output has the field clientVersion.gitCommit twice',
    );
    const top = `{"clientVersion": ${JSON.stringify(JSON.parse(V12415_JSON).clientVersion)}, "clientVersion": {}}`;
    expect(usageErrorOf(() => parseVersionOutput(top)).what).toMatch(/field clientVersion twice/);
  });

  it('refuses an impossible buildDate and accepts real ones (leap day, offsets, fractions)', () => {
    for (const bad of [
      '2023-02-29T10:00:00Z',
      '2023-13-01T10:00:00Z',
      '2023-04-31T10:00:00Z',
      '2023-06-14T24:00:00Z',
      '2023-06-14T19:60:05Z',
      '2023-06-14T19:17:61Z',
      '2023-06-14T19:17:05+25:00',
      '2023-00-10T19:17:05Z',
    ]) {
      const e = usageErrorOf(() => parseVersionOutput(V12415_DEFAULT.replace('2023-06-14T19:17:05Z', bad)));
      expect(e.what).toBe(
        `invalid buildDate "${bad}": expected an RFC 3339 time that exists, e.g. 2021-01-13T13:25:59Z`,
      );
    }
    for (const good of [
      '2024-02-29T10:00:00Z',
      '2023-06-14T19:17:05.123+02:00',
      '2023-12-31T23:59:59-05:30',
    ]) {
      expect(parseVersionOutput(V12415_DEFAULT.replace('2023-06-14T19:17:05Z', good)).info.buildDate).toBe(
        good,
      );
    }
  });

  it("refuses --commit '', --go-version '' and --platform '' naming the flag", () => {
    expect(usageErrorOf(() => versionInfoFromFlags({ kubernetesVersion: 'v1.20.2', commit: '' })).what).toBe(
      '--commit is empty',
    );
    expect(
      usageErrorOf(() => versionInfoFromFlags({ kubernetesVersion: 'v1.20.2', goVersion: ' ' })).what,
    ).toBe('--go-version is empty');
    expect(
      usageErrorOf(() => versionInfoFromFlags({ kubernetesVersion: 'v1.20.2', platform: '' })).what,
    ).toBe('--platform is empty');
    expect(versionInfoFromFlags({ kubernetesVersion: 'v1.20.2' }).gitCommit).toBe('');
  });

  it('refuses version text over 64 KB', () => {
    const big = V12415_JSON.replace('{', `{"pad": "${'x'.repeat(70_000)}",`);
    expect(usageErrorOf(() => parseVersionOutput(big)).what).toBe(
      'the kubeadm version output is larger than 65536 bytes',
    );
  });
});

describe('reading the formats without the YAML library', () => {
  it('JSON refuses a repeated key at any depth by its dotted path, as the YAML reader does', () => {
    const json = '{"clientVersion":{"gitCommit":"a","x":[{"gitCommit":"b"}],"gitCommit":"c"}}';
    expect(duplicateJsonKey(json)).toBe('clientVersion.gitCommit');
    expect(yamlVersionReader.duplicateKey(json)).toBe('clientVersion.gitCommit');
    expect(duplicateJsonKey('{"a":{"b":1},"c":{"b":2},"s":"{\\"a\\":1,\\"a\\":2}"}')).toBeUndefined();
    expect(duplicateJsonKey('{"a":[{"k":1},{"k":2}],"b":{"k\\u0041":1,"kA":2}}')).toBe('b.kA');
  });

  it('only -o yaml output needs the YAML reader; without it, it is not misread as another format', () => {
    expect(isYamlVersionOutput(V1202_YAML)).toBe(true);
    for (const text of [V12415_JSON, V1330_DEFAULT]) expect(isYamlVersionOutput(text)).toBe(false);
    expect(() => parseWith(V1202_YAML)).toThrow(/needs the YAML reader/);
    expect(parseWith(V12415_JSON).format).toBe('json');
  });
});
