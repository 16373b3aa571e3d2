import path from 'node:path';
import { assertSourceTree, writePatch } from '../adapters/source-tree.js';
import { decidePatch } from '../core/build-decision.js';
import { readTreeFacts } from '../build/prepare.js';
import type { TreePatch, Validities } from '../core/types.js';
import type { CommandIo } from '../core/command-io.js';
import { reporter } from '../core/progress.js';
import { describeValidity } from '../core/validity.js';
import { defineCommand } from './options.js';
import { commandSummaries } from './catalog.js';
import { runFunction } from './run.js';
import { resolveValidities, withValidityOptions, type ValidityArgs } from './validity-options.js';

/** What `patch` is asked: the tree, --check, and the validities. */
export interface PatchInput extends Partial<ValidityArgs> {
  dir: string;
  /** compute the diff and write nothing */
  check: boolean;
}

/** The `patch --json` document. */
export interface PatchResult {
  dir: string;
  check: boolean;
  validity: Validities;
  /** the files written (none with --check) */
  written: string[];
  files: { file: string; targets: string[] }[];
  changes: TreePatch['changes'];
  notes: string[];
  diff: string;
}

function changesText(result: PatchResult): string[] {
  return result.changes.map(
    (c) =>
      `  ${c.file}:${c.line} ${c.target}: ${c.before === c.after ? `already ${c.after}` : `${c.before} -> ${c.after}`}`,
  );
}

/**
 * The patch for people: with --check the diff alone (`git apply` takes it; the notes went to
 * stderr), else what was written and why.
 */
export function formatPatchResult(r: PatchResult): string {
  if (r.check) return r.diff || 'no change needed: the tree already has these validities\n';
  const head =
    r.files.length === 0
      ? `no change needed: ${r.dir} already has leaf ${describeValidity(r.validity.leaf)} and CA ${describeValidity(r.validity.ca)}`
      : `patched ${r.written.length} file(s) in ${r.dir} (leaf ${describeValidity(r.validity.leaf)}, CA ${describeValidity(r.validity.ca)}):`;
  return [head, ...changesText(r), ...r.notes.map((n) => `note: ${n}`)].join('\n');
}

/** `patch`: a Kubernetes source tree patched in place for long-lived certificates (--check: only the diff). */
export async function runPatch(input: PatchInput, io: CommandIo): Promise<PatchResult> {
  const out = reporter(io.progress);
  const validity = resolveValidities(input);
  const dir = path.resolve(String(input.dir));
  await assertSourceTree(dir);
  out.step(`computing the patch for ${dir}`);
  // the tree's own version governs (no target here): the one rule of core/build-decision.ts
  const result = decidePatch(await readTreeFacts(dir, { buildMode: false }), validity);
  let written: string[] = [];
  if (!input.check && result.files.length > 0) {
    out.step(`writing ${result.files.length} file(s)`);
    written = await writePatch(dir, result);
  }
  const notes = result.notes ?? [];
  // stdout stays a diff that `git apply` takes; the notes go to stderr
  if (input.check) for (const n of notes) out.info(`note: ${n}`);
  return {
    dir,
    check: input.check,
    validity,
    written,
    files: result.files.map((f) => ({ file: f.file, targets: f.targets })),
    changes: result.changes,
    notes,
    diff: result.diff,
  };
}

const command = defineCommand({
  ...commandSummaries.patch,
  builder: (y) =>
    withValidityOptions(y)
      .positional('dir', { type: 'string', demandOption: true, describe: 'the Kubernetes source tree' })
      .option('check', {
        type: 'boolean',
        default: false,
        describe: 'print the diff and write nothing',
      }),
  handler: (argv) => runFunction(argv, (io) => runPatch(argv, io), { human: formatPatchResult }),
});
export default command;
