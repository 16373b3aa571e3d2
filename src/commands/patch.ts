import path from 'node:path';
import { assertSourceTree, writePatch } from '../adapters/source-tree.js';
import { decidePatch } from '../core/build-decision.js';
import { readTreeFacts } from '../build/prepare.js';
import type { PatchResult } from '../core/types.js';
import { describeValidity } from '../core/validity.js';
import { defineCommand } from './options.js';
import { commandSummaries } from './catalog.js';
import { runCommand } from './run.js';
import { resolveValidities, withValidityOptions } from './validity-options.js';

function changesText(result: PatchResult): string[] {
  return result.changes.map(
    (c) =>
      `  ${c.file}:${c.line} ${c.target}: ${c.before === c.after ? `already ${c.after}` : `${c.before} -> ${c.after}`}`,
  );
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
  handler: (argv) =>
    runCommand(argv, async (args, out) => {
      const validity = resolveValidities(args);
      const dir = path.resolve(String(args.dir));
      await assertSourceTree(dir);
      out.step(`computing the patch for ${dir}`);
      // the tree's own version governs (no target here): the one rule of core/build-decision.ts
      const result = decidePatch(await readTreeFacts(dir, { buildMode: false }), validity);
      let written: string[] = [];
      if (!args.check && result.files.length > 0) {
        out.step(`writing ${result.files.length} file(s)`);
        written = await writePatch(dir, result);
      }
      const doc = {
        dir,
        check: args.check,
        validity,
        written,
        files: result.files.map((f) => ({ file: f.file, targets: f.targets })),
        changes: result.changes,
        notes: result.notes ?? [],
        diff: result.diff,
      };
      let human: string;
      const notes = (result.notes ?? []).map((n) => `note: ${n}`);
      if (args.check) {
        // stdout stays a diff that `git apply` takes; the notes go to stderr
        for (const n of notes) out.info(n);
        human = result.diff || 'no change needed: the tree already has these validities\n';
      } else {
        const head =
          result.files.length === 0
            ? `no change needed: ${dir} already has leaf ${describeValidity(validity.leaf)} and CA ${describeValidity(validity.ca)}`
            : `patched ${written.length} file(s) in ${dir} (leaf ${describeValidity(validity.leaf)}, CA ${describeValidity(validity.ca)}):`;
        human = [head, ...changesText(result), ...notes].join('\n');
      }
      out.result(doc, human);
    }),
});
export default command;
