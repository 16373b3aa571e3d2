import { UsageError } from './errors.js';
import { formatPlatform, platformFromText } from './platform.js';
import type { KubeVersion, Platform, VersionInfo } from './types.js';

/**
 * resolve: every `kubeadm version` output format into a validated VersionInfo. Pure: callers
 * bring the text (from running kubeadm, a file or stdin).
 */

const GIT_VERSION = /^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z]+(?:[.-][0-9A-Za-z]+)*))?$/;
const GIT_COMMIT = /^[0-9a-f]{40}$/i;
const GO_VERSION = /^go(0|[1-9]\d*)\.(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?$/;
const NUMBER_FIELD = /^\d{1,4}\+?$/;
const TREE_STATE = /^(clean|dirty|archive)?$/;
const SIMPLE_FIELD = /^[0-9A-Za-z._+-]{0,64}$/;

/** `kubeadm version` prints a few hundred bytes; anything past this is not its output. */
export const MAX_VERSION_OUTPUT = 64 * 1024;

/** The output formats `kubeadm version` knows (`-o short|json|yaml`, default otherwise). */
export type VersionFormat = 'default' | 'short' | 'json' | 'yaml';

export interface ParsedVersion {
  format: VersionFormat;
  info: VersionInfo;
}

function refuse(field: string, value: string, expected: string): never {
  throw new UsageError(
    `invalid ${field} ${JSON.stringify(value)}: expected ${expected}`,
    `check the kubeadm version output or the flag that gave ${field}`,
  );
}

/** Validates a gitVersion (`vX.Y.Z[-pre]`) and returns its parts. */
export function parseKubeVersion(gitVersion: string, field = 'gitVersion'): KubeVersion {
  const m = GIT_VERSION.exec(gitVersion);
  if (!m) refuse(field, gitVersion, 'vX.Y.Z or vX.Y.Z-pre, e.g. v1.24.15');
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), pre: m[4] ?? '' };
}

/** Validates a git commit (40 hex digits) and returns it in lowercase. */
export function validateCommit(commit: string, field = 'gitCommit'): string {
  if (!GIT_COMMIT.test(commit)) refuse(field, commit, 'a full commit id of 40 hex digits');
  return commit.toLowerCase();
}

/** Validates a Go version; accepts `go1.19.10` or `1.19.10` and returns the `go` form. */
export function normalizeGoVersion(goVersion: string, field = 'goVersion'): string {
  const withPrefix = goVersion.startsWith('go') ? goVersion : `go${goVersion}`;
  if (!GO_VERSION.test(withPrefix)) refuse(field, goVersion, 'goX.Y or goX.Y.Z, e.g. go1.19.10');
  return withPrefix;
}

/** The numeric parts of a `goX.Y[.Z]` version. */
export function goVersionParts(goVersion: string): { major: number; minor: number; patch: number } {
  const m = GO_VERSION.exec(normalizeGoVersion(goVersion));
  return { major: Number(m![1]), minor: Number(m![2]), patch: Number(m![3] ?? 0) };
}

/** True when Go version `a` (goX.Y[.Z]) is at least X.Y. */
export function goAtLeast(goVersion: string, major: number, minor: number): boolean {
  const v = goVersionParts(goVersion);
  return v.major > major || (v.major === major && v.minor >= minor);
}

/** Validates `os/arch`, e.g. `linux/amd64`. */
export function parsePlatform(text: string, field = 'platform'): Platform {
  const platform = platformFromText(text.trim());
  if (!platform) refuse(field, text, 'os/arch, e.g. linux/amd64');
  return platform;
}

/** kubeadm version as `1.24` etc., for messages. */
export function kubeMinorText(k: KubeVersion): string {
  return `${k.major}.${k.minor}`;
}

/** True when `k` is at least major.minor. */
export function kubeAtLeast(k: KubeVersion, major: number, minor: number): boolean {
  return k.major > major || (k.major === major && k.minor >= minor);
}

type RawFields = Record<string, unknown>;

/** The fields of version.Info kubeadm 1.33+ adds: optional numbers (a target may lack them). */
export const EMULATION_VERSION_FIELDS = [
  'emulationMajor',
  'emulationMinor',
  'minCompatibilityMajor',
  'minCompatibilityMinor',
] as const;

/** The number fields of version.Info, as `version -o json` spells them. */
export const VERSION_NUMBER_FIELDS = ['major', 'minor', ...EMULATION_VERSION_FIELDS] as const;

// Keys of kubeadm's version.Info in the JSON/YAML spelling; the default format uses the Go
// field names, which are the same with the first letter in upper case.
const KNOWN_KEYS = [
  ...VERSION_NUMBER_FIELDS,
  'gitVersion',
  'gitCommit',
  'gitTreeState',
  'buildDate',
  'goVersion',
  'compiler',
  'platform',
] as const;

function str(raw: RawFields, key: string): string {
  const v = raw[key];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') refuse(key, String(v), 'a string');
  return v.trim();
}

/**
 * Validates the fields of a version.Info (JSON spelling of keys) into a VersionInfo. gitVersion,
 * gitCommit, goVersion and platform are required: the build needs every one of them.
 */
export function versionInfoFromFields(raw: RawFields): VersionInfo {
  for (const key of ['gitVersion', 'gitCommit', 'goVersion', 'platform']) {
    if (str(raw, key) === '') {
      throw new UsageError(
        `the kubeadm version output has no ${key}`,
        'give the complete output of `kubeadm version` (default, -o json or -o yaml)',
      );
    }
  }
  const gitVersion = str(raw, 'gitVersion');
  const kube = parseKubeVersion(gitVersion);
  const gitCommit = validateCommit(str(raw, 'gitCommit'));
  const goVersion = normalizeGoVersion(str(raw, 'goVersion'));
  const platform = formatPlatform(parsePlatform(str(raw, 'platform')));
  const major = str(raw, 'major') || String(kube.major);
  const minor = str(raw, 'minor') || String(kube.minor);
  if (!NUMBER_FIELD.test(major)) refuse('major', major, 'a number, e.g. 1');
  if (!NUMBER_FIELD.test(minor)) refuse('minor', minor, 'a number, e.g. 24 (or 24+)');
  const gitTreeState = str(raw, 'gitTreeState');
  if (!TREE_STATE.test(gitTreeState)) refuse('gitTreeState', gitTreeState, 'clean, dirty or archive');
  const buildDate = str(raw, 'buildDate');
  if (buildDate !== '' && !isRealRfc3339(buildDate))
    refuse('buildDate', buildDate, 'an RFC 3339 time that exists, e.g. 2021-01-13T13:25:59Z');
  const compiler = str(raw, 'compiler');
  if (!SIMPLE_FIELD.test(compiler)) refuse('compiler', compiler, 'a compiler name such as gc');
  const info: VersionInfo = {
    gitVersion,
    gitCommit,
    gitTreeState,
    buildDate,
    goVersion,
    compiler,
    platform,
    major,
    minor,
  };
  for (const key of EMULATION_VERSION_FIELDS) {
    if (!(key in raw)) continue;
    const v = str(raw, key);
    if (v !== '' && !NUMBER_FIELD.test(v)) refuse(key, v, 'a number or empty');
    info[key] = v;
  }
  return info;
}

/**
 * An RFC 3339 time that exists: the shape, and a month, day (leap years included), hour,
 * minute, second and offset in range. Go's time.Parse refuses the rest, and so do we, before it
 * goes into the ldflags.
 */
export function isRealRfc3339(text: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:Z|[+-](\d{2}):(\d{2}))$/.exec(text);
  if (!m) return false;
  const [y, mo, d, h, mi, sec, oh, om] = m.slice(1).map((x) => (x === undefined ? 0 : Number(x))) as number[];
  const daysIn = new Date(Date.UTC(y!, mo!, 0)).getUTCDate();
  return (
    mo! >= 1 &&
    mo! <= 12 &&
    d! >= 1 &&
    d! <= daysIn &&
    h! <= 23 &&
    mi! <= 59 &&
    sec! <= 59 &&
    oh! <= 23 &&
    om! <= 59
  );
}

function refuseDuplicate(field: string, format: string): never {
  throw new UsageError(
    `the ${format} kubeadm version output has the field ${field} twice`,
    'give the output of `kubeadm version` unedited: a field given twice is ambiguous, so neither value is used',
  );
}

/**
 * The first key that a JSON text (already known to parse) repeats within one object, as a
 * dotted path of object keys (arrays add nothing), if any. JSON.parse keeps the last value of a
 * repeated key silently; a version field given twice must be refused instead.
 */
export function duplicateJsonKey(text: string): string | undefined {
  /** one per open object or array: the keys seen so far (objects) and the key now open */
  const open: Array<{ keys?: Set<string>; key?: string }> = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const top = open[open.length - 1];
      if (expectKey && top?.keys) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key))
          return [
            ...open.slice(0, -1).flatMap((f) => (f.keys && f.key !== undefined ? [f.key] : [])),
            key,
          ].join('.');
        top.keys.add(key);
        top.key = key;
        expectKey = false;
      }
      i = j;
    } else if (c === '{') {
      open.push({ keys: new Set() });
      expectKey = true;
    } else if (c === '[') open.push({});
    else if (c === '}' || c === ']') open.pop();
    else if (c === ',') expectKey = open[open.length - 1]?.keys !== undefined;
  }
  return undefined;
}

/** How YAML output is read (core/version-yaml.ts): loaded only for that format. */
export interface YamlVersionReader {
  /** the first key repeated within one mapping (dotted path), if any */
  duplicateKey(text: string): string | undefined;
  /** the document; throws on invalid YAML */
  parse(text: string): unknown;
}

/** Whether a `kubeadm version` output is the `-o yaml` format (the one that needs a YAML reader). */
export function isYamlVersionOutput(text: string): boolean {
  const trimmed = text.replace(/^\uFEFF/, '').trim();
  if (trimmed.startsWith('{')) return false;
  const lines = trimmed.split(/\r?\n/);
  return !lines.some((l) => l.includes('&version.Info{')) && lines.some((l) => /^clientVersion:\s*$/.test(l));
}

/** Go's `%#v` string literal body (`\"`, `\\`, `\n`...) decoded. */
function unquoteGo(body: string): string {
  try {
    return JSON.parse(`"${body}"`) as string;
  } catch {
    return body;
  }
}

function parseDefaultFormat(line: string): RawFields {
  const start = line.indexOf('&version.Info{');
  const end = line.lastIndexOf('}');
  if (start < 0 || end < start) {
    throw new UsageError(
      `cannot parse the kubeadm version line: ${line.trim().slice(0, 200)}`,
      'give the complete output of `kubeadm version`',
    );
  }
  const body = line.slice(start + '&version.Info{'.length, end);
  const raw: RawFields = {};
  const field = /\s*([A-Za-z]+):"((?:[^"\\]|\\.)*)"\s*(?:,|$)/y;
  let pos = 0;
  while (pos < body.length) {
    field.lastIndex = pos;
    const m = field.exec(body);
    if (!m) {
      throw new UsageError(
        `cannot parse the kubeadm version line near ${JSON.stringify(body.slice(pos, pos + 40))}: ${line.trim().slice(0, 200)}`,
        'give the complete, unedited output of `kubeadm version`',
      );
    }
    const key = m[1]!.charAt(0).toLowerCase() + m[1]!.slice(1);
    if (key in raw) refuseDuplicate(m[1]!, 'default');
    raw[key] = unquoteGo(m[2]!);
    pos = field.lastIndex;
  }
  return raw;
}

function clientVersionOf(doc: unknown, format: 'json' | 'yaml'): RawFields {
  if (doc && typeof doc === 'object' && !Array.isArray(doc)) {
    const obj = doc as RawFields;
    const inner = obj.clientVersion;
    if (inner && typeof inner === 'object' && !Array.isArray(inner)) return inner as RawFields;
    if (KNOWN_KEYS.some((k) => k in obj)) return obj;
  }
  throw new UsageError(
    `the ${format} kubeadm version output has no clientVersion object`,
    `give the output of \`kubeadm version -o ${format}\` unedited`,
  );
}

/**
 * Parses `kubeadm version` output in any of its formats: default (`kubeadm version:
 * &version.Info{...}`, with the 1.33+ emulation fields), `-o short`, `-o json`, `-o yaml`.
 * Short output carries only the gitVersion: commit and Go version are then "" (unknown), as with
 * --kubernetes-version alone; plan says so and build refuses.
 */
export function parseVersionOutput(text: string, yaml?: YamlVersionReader): ParsedVersion {
  if (text.length > MAX_VERSION_OUTPUT) {
    throw new UsageError(
      `the kubeadm version output is larger than ${MAX_VERSION_OUTPUT} bytes`,
      'give the output of `kubeadm version -o json` unedited',
    );
  }
  const trimmed = text.replace(/^\uFEFF/, '').trim();
  if (trimmed === '') {
    throw new UsageError(
      'the kubeadm version output is empty',
      'give the output of `kubeadm version -o json`',
    );
  }
  if (trimmed.startsWith('{')) {
    let doc: unknown;
    try {
      doc = JSON.parse(trimmed);
    } catch (err) {
      throw new UsageError(
        `the kubeadm version output is not valid JSON: ${(err as Error).message.split('\n')[0]}`,
        'give the output of `kubeadm version -o json` unedited',
      );
    }
    const dup = duplicateJsonKey(trimmed);
    if (dup !== undefined) refuseDuplicate(dup, 'json');
    return { format: 'json', info: versionInfoFromFields(clientVersionOf(doc, 'json')) };
  }
  const lines = trimmed.split(/\r?\n/);
  const infoLine = lines.find((l) => l.includes('&version.Info{'));
  if (infoLine !== undefined)
    return { format: 'default', info: versionInfoFromFields(parseDefaultFormat(infoLine)) };
  if (isYamlVersionOutput(trimmed)) {
    // the caller loads the YAML reader for this format only (isYamlVersionOutput): it is the
    // largest library a cache hit would otherwise load
    if (!yaml) throw new Error('a YAML kubeadm version output needs the YAML reader (core/version-yaml.ts)');
    const dup = yaml.duplicateKey(trimmed);
    if (dup !== undefined) refuseDuplicate(dup, 'yaml');
    let doc: unknown;
    try {
      doc = yaml.parse(trimmed);
    } catch (err) {
      throw new UsageError(
        `the kubeadm version output is not valid YAML: ${(err as Error).message.split('\n')[0]}`,
        'give the output of `kubeadm version -o yaml` unedited',
      );
    }
    return { format: 'yaml', info: versionInfoFromFields(clientVersionOf(doc, 'yaml')) };
  }
  if (lines.length === 1) {
    const v = lines[0]!.replace(/^kubeadm version:\s*/, '').trim();
    if (/^v\d/.test(v))
      return { format: 'short', info: versionInfoFromFlags({ kubernetesVersion: v }, 'gitVersion') };
  }
  throw new UsageError(
    `cannot parse the kubeadm version output; first line: ${lines[0]!.slice(0, 200)}`,
    'give the output of `kubeadm version` (default, -o json or -o yaml)',
  );
}

export interface VersionFlags {
  kubernetesVersion: string;
  commit?: string | undefined;
  goVersion?: string | undefined;
  platform?: string | undefined;
}

/**
 * A VersionInfo from `--kubernetes-version vX.Y.Z [--commit SHA] [--go-version X.Y.Z]`.
 * Commit and Go version stay "" when not given (plan says so; build refuses).
 */
export function versionInfoFromFlags(flags: VersionFlags, field = '--kubernetes-version'): VersionInfo {
  for (const [flag, v, example] of [
    ['--commit', flags.commit, 'SHA (the 40-hex git commit)'],
    ['--go-version', flags.goVersion, 'X.Y.Z (e.g. 1.19.10)'],
    ['--platform', flags.platform, 'os/arch (e.g. linux/amd64)'],
  ] as const) {
    if (v !== undefined && v.trim() === '')
      throw new UsageError(`${flag} is empty`, `pass ${flag} ${example}, or leave the flag out`);
  }
  const kube = parseKubeVersion(flags.kubernetesVersion.trim(), field);
  return {
    gitVersion: flags.kubernetesVersion.trim(),
    gitCommit: flags.commit !== undefined ? validateCommit(flags.commit.trim(), '--commit') : '',
    gitTreeState: flags.commit !== undefined ? 'clean' : '',
    buildDate: '',
    goVersion:
      flags.goVersion !== undefined ? normalizeGoVersion(flags.goVersion.trim(), '--go-version') : '',
    compiler: 'gc',
    platform: flags.platform !== undefined ? formatPlatform(parsePlatform(flags.platform, '--platform')) : '',
    major: String(kube.major),
    minor: String(kube.minor),
  };
}
