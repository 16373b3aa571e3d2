import type { CacheManifest } from './cache-manifest.js';
import { canonicalJson, inputDigests } from './plan.js';

/**
 * audit (pure): what a manifest says about itself, and what differs between a recorded build and
 * its rebuild. Each difference is one line a reviewer can act on, grouped as an input (what was
 * built), the environment (what it was built with) or the bytes alone.
 */

export type DifferenceKind = 'input' | 'environment' | 'bytes';

export interface Difference {
  kind: DifferenceKind;
  /** the input or environment item, e.g. "validity", "imageId" */
  name: string;
  text: string;
}

function short(value: unknown): string {
  const text = typeof value === 'string' ? value : canonicalJson(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/**
 * Recorded inputs that no longer match the manifest's own record of them: the per-input digests
 * taken at build time, and the top-level copies (validity, image, platform, version) of inputs.
 * A rebuild from such a manifest proves nothing, so audit stops here.
 */
export function changedRecordedInputs(m: CacheManifest): Difference[] {
  const out: Difference[] = [];
  const inputs = m.inputs;
  const validity = inputs.validity as
    { leaf?: { hours?: number; text?: string }; ca?: { hours?: number; text?: string } } | undefined;
  if (validity?.leaf?.hours !== m.validity.hours) {
    out.push({
      kind: 'input',
      name: 'validity',
      text: `validity: the manifest says ${m.validity.text} but the build's inputs say ${validity?.leaf?.text ?? 'nothing'}`,
    });
  }
  if (validity?.ca?.hours !== m.caValidity.hours) {
    out.push({
      kind: 'input',
      name: 'caValidity',
      text: `caValidity: the manifest says ${m.caValidity.text} but the build's inputs say ${validity?.ca?.text ?? 'nothing'}`,
    });
  }
  const pairs: Array<[string, unknown, unknown]> = [
    ['image', m.image, inputs.image],
    ['platform', m.platform, inputs.platform],
    ['gitVersion', m.gitVersion, (inputs.version as { gitVersion?: string } | undefined)?.gitVersion],
    ['gitCommit', m.gitCommit, (inputs.version as { gitCommit?: string } | undefined)?.gitCommit],
  ];
  for (const [name, top, inner] of pairs) {
    if (top !== inner)
      out.push({
        kind: 'input',
        name,
        text: `${name}: the manifest says ${short(top)} but the build's inputs say ${short(inner)}`,
      });
  }
  const recorded = m.provenance?.inputDigests;
  if (recorded) {
    const now = inputDigests({ ...inputs, patches: m.patches });
    for (const name of [...new Set([...Object.keys(recorded), ...Object.keys(now)])].sort()) {
      if (recorded[name] === now[name] || out.some((d) => d.name === name)) continue;
      const what =
        recorded[name] === undefined
          ? 'was added'
          : now[name] === undefined
            ? 'was removed'
            : `was changed to ${short(name === 'patches' ? '(a different diff)' : inputs[name])}`;
      out.push({
        kind: 'input',
        name,
        text: `${name} ${what} after the build (its recorded digest no longer matches)`,
      });
    }
  }
  return out;
}

/**
 * The source's identity is its content (carry/cache/source-identity.ts), so a different identity is a
 * changed source even where the path and the version are the same: say so in those words.
 */
function sourceChange(recorded: CacheManifest, rebuilt: CacheManifest): string {
  const a = recorded.inputs.source;
  const b = rebuilt.inputs.source;
  const at = recorded.provenance?.source?.location;
  const where =
    at !== undefined && at === rebuilt.provenance?.source?.location
      ? `the same path ${at}, other content`
      : 'another source';
  const old =
    typeof a === 'string' && a.startsWith('dir:') && !a.startsWith('dir:tree2:')
      ? '; the recorded directory fingerprint is an older scheme (names, sizes, mtimes) that cannot be compared: audit a binary built by this version'
      : '';
  return `source changed: ${where} (recorded ${short(a)}, given ${short(b)})${old}`;
}

/** Differences between the recorded build and its rebuild; empty only when nothing differs but possibly the bytes. */
export function rebuildDifferences(recorded: CacheManifest, rebuilt: CacheManifest): Difference[] {
  const out: Difference[] = [];
  for (const name of [...new Set([...Object.keys(recorded.inputs), ...Object.keys(rebuilt.inputs)])].sort()) {
    const a = recorded.inputs[name];
    const b = rebuilt.inputs[name];
    if (canonicalJson(a ?? null) !== canonicalJson(b ?? null)) {
      const text =
        name === 'source'
          ? sourceChange(recorded, rebuilt)
          : `${name}: recorded ${short(a)}, rebuilt with ${short(b)}`;
      out.push({ kind: 'input', name, text });
    }
  }
  if (recorded.patches !== rebuilt.patches)
    out.push({
      kind: 'input',
      name: 'patches',
      text: 'patches: the rebuild applied a different diff to the source',
    });
  const rs: Record<string, unknown> = { ...recorded.provenance?.source };
  const bs: Record<string, unknown> = { ...rebuilt.provenance?.source };
  for (const k of ['commit', 'tree', 'sha256', 'fingerprint'] as const) {
    if (rs[k] !== undefined && rs[k] !== bs[k])
      out.push({
        kind: 'input',
        name: `source.${k}`,
        text: `source ${k}: recorded ${short(rs[k])}, given ${short(bs[k] ?? 'none')}`,
      });
  }
  if (recorded.provenance?.buildDate !== rebuilt.provenance?.buildDate) {
    out.push({
      kind: 'input',
      name: 'buildDate',
      text: `buildDate: recorded ${recorded.provenance?.buildDate ?? 'none'}, rebuilt ${rebuilt.provenance?.buildDate ?? 'none'}`,
    });
  }
  const env: Array<[string, unknown, unknown]> = [
    ['imageId', recorded.imageId, rebuilt.imageId],
    ['goVersion', recorded.goVersion, rebuilt.goVersion],
    ['toolVersion', recorded.toolVersion, rebuilt.toolVersion],
    ['env', recorded.provenance?.env, rebuilt.provenance?.env],
    ['args', recorded.provenance?.args, rebuilt.provenance?.args],
  ];
  for (const [name, a, b] of env) {
    if (a !== undefined && canonicalJson(a) !== canonicalJson(b ?? null)) {
      out.push({
        kind: 'environment',
        name,
        text: `${name}: recorded ${short(a)}, rebuilt with ${short(b)}`,
      });
    }
  }
  if (recorded.sha256 !== rebuilt.sha256 && out.length === 0) {
    out.push({
      kind: 'bytes',
      name: 'sha256',
      text: `same inputs and environment, different bytes (${recorded.sha256.slice(0, 16)}... vs ${rebuilt.sha256.slice(0, 16)}...): the build is not reproducible here`,
    });
  }
  return out;
}
