import { platformFromText } from './platform.js';
import type { Validity } from './types.js';

/**
 * The record kept next to every cached binary (manifest.json) and shipped in bundles. It says
 * what was built from what, so a hit can be trusted and a reviewer can audit it.
 *
 * Reading is forward compatible: unknown fields are kept, so later tool versions can add
 * provenance (source identity, build environment, reproducibility) without breaking
 * older readers; `provenance` is the reserved place for it.
 */
export interface CacheManifest {
  /** manifest format; bump on incompatible changes */
  schema: 1;
  /** the plan's cacheKey: a stable hash of every input that changes the binary */
  key: string;
  /** the plan's inputs as the build used them (version, validities, image, ldflags, env, ...) */
  inputs: Record<string, unknown>;
  gitVersion: string;
  gitCommit: string;
  /** the Go of the image that built it, e.g. "go1.15.5" */
  goVersion: string;
  /** "os/arch" */
  platform: string;
  validity: Validity;
  caValidity: Validity;
  image: string;
  /** the image id (sha256:...) the build ran in; "" when unknown */
  imageId: string;
  /** the unified diff applied to the source */
  patches: string;
  /** kubeadm-forever version that built it */
  toolVersion: string;
  /** of the binary, lowercase hex */
  sha256: string;
  /** of the binary, bytes */
  size: number;
  /** RFC 3339 */
  created: string;
  /** source identity, environment and flags of the build, reproducibility notes */
  provenance?: BuildProvenance;
  /** how verify ran the binary before it was stored (absent in manifests of older tool versions) */
  verification?: Verification;
}

/**
 * How a stored binary was verified: run on the build host ("native"), through a user-mode
 * emulator ("emulated", naming it), or not run at all ("not executed", with the reason: no
 * emulator for a foreign platform, or --no-verify).
 */
export interface Verification {
  how: 'native' | 'emulated' | 'not executed';
  emulator?: string;
  /** wall time of verify's runs */
  seconds?: number;
  passed?: boolean;
  reason?: string;
}

const VERIFICATION_HOWS: readonly string[] = ['native', 'emulated', 'not executed'];

/** "verified natively", "verified under /usr/bin/qemu-aarch64-static", "not executed (…)" */
export function describeVerification(v: Verification | undefined): string {
  if (!v) return 'verified';
  if (v.how === 'native') return 'verified natively';
  if (v.how === 'emulated') return `verified under ${v.emulator ?? 'an emulator'}`;
  return `not executed${v.reason ? ` (${v.reason})` : ''}`;
}

/** Provenance of one build. Every field is optional so it can be filled as known. */
export interface BuildProvenance {
  source?: {
    kind: 'git' | 'tarball' | 'dir';
    /** git: the commit and tree id */
    commit?: string;
    tree?: string;
    /** tarball: its sha256 */
    sha256?: string;
    /** dir: sha256 over every entry's path, size, mode and mtime */
    fingerprint?: string;
    /** what the user gave (URL, path); informational */
    location?: string;
  };
  /** the buildDate written into the binary, and where it came from (never the clock) */
  buildDate?: string;
  buildDateOrigin?: string;
  /** sha256 of each of `inputs`' values (canonical JSON) when built: a later edit shows which input changed */
  inputDigests?: Record<string, string>;
  /** the full environment of `go build` inside the container */
  env?: Record<string, string>;
  /** the full `go build` argument list */
  args?: string[];
  /** seconds since the epoch used as buildDate (SOURCE_DATE_EPOCH) */
  sourceDateEpoch?: number;
  /** whether the same inputs are expected to give the same bytes, and why not when false */
  reproducible?: boolean;
  notes?: string[];
  [extra: string]: unknown;
}

/** The fields the caller provides; sha256, size and created are measured by the store. */
export type ManifestInput = Omit<CacheManifest, 'schema' | 'sha256' | 'size' | 'created'>;

// Keys become directory names (platforms too: core/platform.ts): allow only what cannot escape or collide.
const KEY_RE = /^[a-z0-9][a-z0-9_-]{7,127}$/;
const SHA256_RE = /^[0-9a-f]{64}$/;

export function isValidKey(key: string): boolean {
  return KEY_RE.test(key);
}

export function isSha256(s: string): boolean {
  return SHA256_RE.test(s);
}

function isValidity(v: unknown): v is Validity {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return (
    typeof o.hours === 'number' && Number.isInteger(o.hours) && o.hours > 0 && typeof o.text === 'string'
  );
}

/**
 * Validates a parsed manifest.json. Returns the problem as text, or null when it is sound.
 * Checks types and the fields the cache relies on (key, platform, sha256, size).
 */
export function manifestProblem(doc: unknown): string | null {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return 'not a JSON object';
  const m = doc as Record<string, unknown>;
  if (m.schema !== 1) return `unsupported schema ${JSON.stringify(m.schema)} (this tool reads 1)`;
  if (typeof m.key !== 'string' || !isValidKey(m.key)) return `bad key ${JSON.stringify(m.key)}`;
  if (typeof m.platform !== 'string' || !platformFromText(m.platform))
    return `bad platform ${JSON.stringify(m.platform)}`;
  if (typeof m.sha256 !== 'string' || !isSha256(m.sha256)) return `bad sha256 ${JSON.stringify(m.sha256)}`;
  if (typeof m.size !== 'number' || !Number.isSafeInteger(m.size) || m.size <= 0)
    return `bad size ${JSON.stringify(m.size)}`;
  for (const f of [
    'gitVersion',
    'gitCommit',
    'goVersion',
    'image',
    'imageId',
    'patches',
    'toolVersion',
    'created',
  ]) {
    if (typeof m[f] !== 'string') return `field ${f} missing or not a string`;
  }
  if (Number.isNaN(Date.parse(m.created as string))) return `bad created time ${JSON.stringify(m.created)}`;
  if (typeof m.inputs !== 'object' || m.inputs === null || Array.isArray(m.inputs))
    return 'field inputs missing or not an object';
  if (!isValidity(m.validity)) return 'field validity missing or malformed';
  if (!isValidity(m.caValidity)) return 'field caValidity missing or malformed';
  if (m.provenance !== undefined && (typeof m.provenance !== 'object' || m.provenance === null)) {
    return 'field provenance is not an object';
  }
  if (m.verification !== undefined) {
    const v = m.verification as Record<string, unknown> | null;
    if (typeof v !== 'object' || v === null || !VERIFICATION_HOWS.includes(v.how as string))
      return `bad verification ${JSON.stringify(m.verification)}`;
  }
  return null;
}

/** Parses manifest.json text; throws an Error naming the problem. */
export function parseManifest(text: string): CacheManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`manifest.json is not JSON: ${(err as Error).message}`);
  }
  const problem = manifestProblem(doc);
  if (problem) throw new Error(`manifest.json: ${problem}`);
  return doc as CacheManifest;
}

/** Stable, readable serialisation (2-space JSON, trailing newline). */
export function serializeManifest(m: CacheManifest): string {
  return `${JSON.stringify(m, null, 2)}\n`;
}
