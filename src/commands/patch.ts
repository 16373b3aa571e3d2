import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import {
  assertSourceTree,
  readPatchInputs,
  readTreeVersion,
  recoverPatchTargets,
  writePatch,
} from '../adapters/source-tree.js';
import { describeRecovery } from '../adapters/file-transaction.js';
import { computePatch } from '../core/patch.js';
import { assertPatchableKube } from '../core/patch-targets.js';
import type { PatchResult } from '../core/types.js';
import { describeValidity } from '../core/validity.js';
import type { GlobalArgs } from './options.js';
import { runCommand } from './run.js';
import { resolveValidities, withValidityOptions, type ValidityArgs } from './target-options.js';

interface PatchArgs extends GlobalArgs, ValidityArgs {
  dir: string;
  check: boolean;
}

function changesText(result: PatchResult): string[] {
  return result.changes.map(
    (c) =>
      `  ${c.file}:${c.line} ${c.target}: ${c.before === c.after ? `already ${c.after}` : `${c.before} -> ${c.after}`}`,
  );
}

const command: CommandModule<GlobalArgs, PatchArgs> = {
  command: 'patch <dir>',
  describe:
    'patch a Kubernetes source tree in place for long-lived certificates (--check: print the diff, write nothing)',
  builder: (y) =>
    withValidityOptions(y as Argv<GlobalArgs>)
      .positional('dir', { type: 'string', demandOption: true, describe: 'the Kubernetes source tree' })
      .option('check', {
        type: 'boolean',
        default: false,
        describe: 'print the diff and write nothing',
      }) as unknown as Argv<PatchArgs>,
  handler: (argv) =>
    runCommand(argv, async (args, out) => {
      const validity = resolveValidities(args);
      const dir = path.resolve(String(args.dir));
      await assertSourceTree(dir);
      const treeVersion = await readTreeVersion(dir);
      if (treeVersion) assertPatchableKube(treeVersion);
      if (!args.check) for (const line of describeRecovery(await recoverPatchTargets(dir))) out.info(line);
      out.step(`computing the patch for ${dir}`);
      const inputs = await readPatchInputs(dir);
      const result = computePatch(inputs.files, validity, { clientGoCertFile: inputs.clientGoCertFile });
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
};
export default command;
