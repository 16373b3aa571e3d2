import path from 'node:path';
import type { Argv, BuilderArguments } from 'yargs';
import { formatPlatform } from '../core/platform.js';
import { DEFAULT_OUT } from '../build/extract.js';
import { runBuildPipeline, VerifyError, type BuildResult } from '../build/index.js';
import { describeVerify } from '../build/verify.js';
import type { Output } from '../ui/output.js';
import { defineCommand, type GlobalFlags } from './options.js';
import { commandSummaries } from './catalog.js';
import { runCommand } from './run.js';
import { nodeProcedureCommands } from './next-steps.js';
import { assertVolumeName, emulatorOptions, goCacheVolumeOptions } from './build-options.js';
import { BuildCache } from '../carry/cache/build-cache.js';
import {
  completeTargetFromSource,
  resolvePlatforms,
  resolveTarget,
  withSourceOptions,
  withTargetOptions,
} from './target-options.js';
import { resolveValidities, withValidityOptions } from './validity-options.js';

type BuildArgs = BuilderArguments<typeof builder>;

/** The --json document: the contract keys for the (first) binary, all of them under `binaries`. */
function resultDoc(r: BuildResult) {
  const first = r.binaries[0]!;
  const doc: Record<string, unknown> = {
    binary: first.path,
    sha256: first.sha256,
    gitVersion: r.plan.version.gitVersion,
    gitCommit: r.plan.version.gitCommit,
    goVersion: first.goVersion,
    image: r.image.name,
    imageId: r.image.id,
    platform: formatPlatform(first.platform),
    validity: r.plan.validity,
    verify: first.verify,
    cached: first.cached,
    manifest: first.manifest ?? null,
  };
  if (r.binaries.length > 1) {
    doc.binaries = r.binaries.map((b) => ({
      binary: b.path,
      sha256: b.sha256,
      goVersion: b.goVersion,
      platform: formatPlatform(b.platform),
      verify: b.verify,
      cached: b.cached,
      manifest: b.manifest ?? null,
    }));
  }
  return doc;
}

function humanSummary(r: BuildResult): string {
  const lines: string[] = [];
  for (const b of r.binaries) {
    lines.push(b.cached ? `${b.path} from the binary cache (no build needed)` : `built ${b.path}`);
    lines.push(
      `  kubeadm ${r.plan.version.gitVersion} (${r.plan.version.gitCommit.slice(0, 12)}) ${formatPlatform(b.platform)}, ${b.goVersion || 'go ?'} in ${r.image.name}`,
    );
    lines.push(`  sha256 ${b.sha256}`);
    lines.push(
      ...describeVerify(b.verify.executed ? b.verify : { ...b.verify, certificates: [], failures: [] }).map(
        (l) => `  ${l}`,
      ),
    );
  }
  lines.push(`  validity: leaf ${r.plan.validity.leaf.text}, CA ${r.plan.validity.ca.text}`);
  const notes = r.plan.notes.filter((n) => /ClusterConfiguration|kubelet|dirty/.test(n));
  const exe = `./${path.basename(r.binaries[0]!.path)}`;
  lines.push('');
  lines.push(
    `next: copy ${exe} to each control-plane node; there, in this order (README: "The air-gapped workflow"):`,
  );
  lines.push(...nodeProcedureCommands({ kubeadm: exe, validity: r.plan.validity }));
  for (const n of notes) lines.push(`note: ${n}`);
  return lines.join('\n');
}

async function build(argv: BuildArgs, out: Output): Promise<number> {
  const validity = resolveValidities(argv);
  const platforms = resolvePlatforms(argv);
  // --kubernetes-version alone: the commit from the repository's tag, the Go version from the tree
  const { version, source, resolved } = await completeTargetFromSource(argv, await resolveTarget(argv), out);
  for (const [what, r] of Object.entries(resolved)) out.info(`resolved ${what} ${r.value} from ${r.from}`);
  assertVolumeName(argv.goCacheVolume);
  try {
    const result = await runBuildPipeline(
      {
        version,
        validity,
        platforms,
        image: argv.image,
        source,
        out: argv.out,
        cacheDir: argv.cacheDir,
        goCacheVolume: argv.goCacheVolume,
        verify: argv.verify,
        cache: new BuildCache(argv.cacheDir, out),
        noCache: !argv.cache,
        sourceVolume: argv.sourceVolume,
        goVerbose: argv.verbose,
        emulator: argv.emulator,
      },
      out,
    );
    out.succeed();
    out.result(resultDoc(result), humanSummary(result));
    return 0;
  } catch (err) {
    if (err instanceof VerifyError) {
      out.fail();
      out.info(describeVerify(err.report).join('\n'));
    }
    throw err;
  }
}

const builder = (y: Argv<GlobalFlags>) =>
  withSourceOptions(withValidityOptions(withTargetOptions(y)))
    .option('image', { type: 'string', describe: 'Go build image to use instead of golang:<go>-alpine' })
    .option('out', {
      type: 'string',
      default: DEFAULT_OUT,
      describe: 'where to write the binary (with several platforms: <out>-<os>-<arch>)',
    })
    .option('verify', {
      type: 'boolean',
      default: true,
      describe: 'run the binary to check version and certificates (--no-verify skips)',
    })
    .option('cache', {
      type: 'boolean',
      default: true,
      describe: 'use the binary cache (--no-cache rebuilds)',
    })
    .options(emulatorOptions())
    .options(goCacheVolumeOptions())
    .option('source-volume', {
      type: 'boolean',
      default: true,
      describe:
        'keep the tree in a Docker volume per source, reused by rebuilds (--no-source-volume streams it into each build)',
    });

const command = defineCommand({
  ...commandSummaries.build,
  builder,
  handler: (argv) => runCommand(argv, build),
});
export default command;
