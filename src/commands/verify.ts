import fs from 'node:fs';
import type { Argv, BuilderArguments } from 'yargs';
import { parseBinaryHeader, readBinaryHead } from '../carry/cache/elf.js';
import type { Platform } from '../core/types.js';
import { parsePlatform } from '../core/version.js';
import { KfError } from '../core/errors.js';
import { describeVerify, verifyBinary, type VerifyReport } from '../build/verify.js';
import type { CommandIo } from '../core/command-io.js';
import { reporter } from '../core/progress.js';
import type { Validities } from '../core/types.js';
import { defineCommand, type CamelFlags, type GlobalFlags } from './options.js';
import { commandSummaries } from './catalog.js';
import { runFunction } from './run.js';
import { emulatorOptions } from './build-options.js';
import { resolveTarget, withTargetOptions } from './target-options.js';
import { resolveValidities, withValidityOptions } from './validity-options.js';

type VerifyArgs = BuilderArguments<typeof builder>;

/** What `verify` is asked: its flags (camel-case), as yargs gives them. */
export type VerifyInput = Omit<CamelFlags<VerifyArgs>, 'json' | 'verbose'>;

/** The `verify --json` document: what was run, what was expected, and the report. */
export type VerifyResult = {
  binary: string;
  expected: { gitVersion: string; gitCommit: string } | null;
  validity: Validities;
} & VerifyReport;

function targetGiven(input: VerifyInput): boolean {
  return (
    input.kubeadm !== undefined || input.versionFile !== undefined || input.kubernetesVersion !== undefined
  );
}

/** The verification for people, line by line. */
export function formatVerifyResult(r: VerifyResult): string {
  return describeVerify(r).join('\n');
}

/** A binary that was run and failed: the error to give after its report. */
export function verifyFailure(r: VerifyResult): KfError | undefined {
  if (!r.executed || r.passed) return undefined;
  return new KfError(
    `${r.binary} failed verification: ${r.failures[0]}`,
    'build it again with kubeadm-forever build (check the version flags and the patch)',
  );
}

/**
 * `verify`: a kubeadm run (natively or in an emulator): its version against the target, and
 * `init phase certs all`'s certificates against the validities. A failed check is in the result
 * (verifyFailure says it), not thrown: the report is the answer either way.
 */
export async function runVerify(input: VerifyInput, io: CommandIo): Promise<VerifyResult> {
  const validity = resolveValidities(input);
  const target = targetGiven(input) ? await resolveTarget(input, io) : undefined;
  const platform =
    typeof input.platform === 'string' && input.platform
      ? parsePlatform(input.platform, '--platform')
      : await platformOfBinary(input.binary);
  reporter(io.progress).step(`verifying ${input.binary}`);
  const expected = target ? { gitVersion: target.gitVersion, gitCommit: target.gitCommit } : undefined;
  const report = await verifyBinary({
    binary: input.binary,
    expected,
    validity,
    platform,
    emulator: input.emulator,
  });
  return { binary: input.binary, expected: expected ?? null, validity, ...report };
}

/**
 * The platform a binary's header names (ELF: linux/<arch>, PE: windows/<arch>), so a foreign
 * binary given without --platform goes to an emulator instead of failing as "exec format
 * error"; undefined (this host's) when the header says nothing Go builds, or for what is not a
 * regular file (verify then reports it).
 */
async function platformOfBinary(file: string): Promise<Platform | undefined> {
  try {
    if (!fs.statSync(file).isFile()) return undefined;
    const m = parseBinaryHeader(await readBinaryHead(file));
    if (!m || !m.goArch) return undefined;
    return { os: m.format === 'pe' ? 'windows' : 'linux', arch: m.goArch };
  } catch {
    return undefined;
  }
}

const builder = (y: Argv<GlobalFlags>) =>
  withValidityOptions(withTargetOptions(y)).options(emulatorOptions()).positional('binary', {
    type: 'string',
    demandOption: true,
    describe: 'the kubeadm binary',
  });

const command = defineCommand({
  ...commandSummaries.verify,
  builder,
  handler: (argv) =>
    runFunction(argv, (io) => runVerify(argv, io), { human: formatVerifyResult, failure: verifyFailure }),
});
export default command;
