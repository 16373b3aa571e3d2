import fs from 'node:fs';
import type { Argv, BuilderArguments } from 'yargs';
import { parseBinaryHeader, readBinaryHead } from '../carry/cache/elf.js';
import type { Platform } from '../core/types.js';
import { parsePlatform } from '../core/version.js';
import { KfError } from '../core/errors.js';
import { describeVerify, verifyBinary } from '../build/verify.js';
import type { Output } from '../ui/output.js';
import { defineCommand, type GlobalFlags } from './options.js';
import { commandSummaries } from './catalog.js';
import { runCommand } from './run.js';
import { emulatorOptions } from './build-options.js';
import { resolveTarget, withTargetOptions } from './target-options.js';
import { resolveValidities, withValidityOptions } from './validity-options.js';

type VerifyArgs = BuilderArguments<typeof builder>;

function targetGiven(argv: VerifyArgs): boolean {
  return argv.kubeadm !== undefined || argv.versionFile !== undefined || argv.kubernetesVersion !== undefined;
}

async function verify(argv: VerifyArgs, out: Output): Promise<number> {
  const validity = resolveValidities(argv);
  const target = targetGiven(argv) ? await resolveTarget(argv) : undefined;
  const platform =
    typeof argv.platform === 'string' && argv.platform
      ? parsePlatform(argv.platform, '--platform')
      : await platformOfBinary(argv.binary);
  out.step(`verifying ${argv.binary}`);
  const expected = target ? { gitVersion: target.gitVersion, gitCommit: target.gitCommit } : undefined;
  const report = await verifyBinary({
    binary: argv.binary,
    expected,
    validity,
    platform,
    emulator: argv.emulator,
  });
  out.succeed();
  const doc = { binary: argv.binary, expected: expected ?? null, validity, ...report };
  out.result(doc, describeVerify(report).join('\n'));
  if (!report.executed) return 0;
  if (!report.passed) {
    throw new KfError(
      `${argv.binary} failed verification: ${report.failures[0]}`,
      'build it again with kubeadm-forever build (check the version flags and the patch)',
    );
  }
  return 0;
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
  handler: (argv) => runCommand(argv, verify),
});
export default command;
