import path from 'node:path';
import type { Argv, BuilderArguments } from 'yargs';
import { formatPlatform } from '../core/platform.js';
import { DEFAULT_OUT } from '../build/extract.js';
import { runBuildPipeline, VerifyError, type BuildPipelineResult } from '../build/index.js';
import { describeVerify } from '../build/verify.js';
import type { CommandIo } from '../core/command-io.js';
import { reporter } from '../core/progress.js';
import type { Validities } from '../core/types.js';
import type { BuiltBinary } from '../build/types.js';
import { defineCommand, type CamelFlags, type GlobalFlags } from './options.js';
import { commandSummaries } from './catalog.js';
import { runFunction } from './run.js';
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

/** What `build` is asked: its flags (camel-case), as yargs gives them. */
export type BuildInput = Omit<CamelFlags<BuildArgs>, 'json'>;

/** One built (or cached) binary, as the --json document lists it. */
export interface BuiltBinaryDocument {
  binary: string;
  sha256: string;
  goVersion: string;
  platform: string;
  verify: BuiltBinary['verify'];
  cached: boolean;
  manifest: string | null;
}

/** The `build --json` document: the contract keys for the (first) binary, all of them under `binaries`. */
export interface BuildResult {
  binary: string;
  sha256: string;
  gitVersion: string;
  gitCommit: string;
  goVersion: string;
  image: string;
  imageId: string;
  platform: string;
  validity: Validities;
  verify: BuiltBinary['verify'];
  cached: boolean;
  manifest: string | null;
  /** with more than one platform only */
  binaries?: BuiltBinaryDocument[];
}

function resultDoc(r: BuildPipelineResult): BuildResult {
  const first = r.binaries[0]!;
  const doc: BuildResult = {
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

/** The build for people: each binary, its checks, and the node procedure that comes next. */
export function formatBuildResult(r: BuildResult): string {
  const lines: string[] = [];
  const binaries: BuiltBinaryDocument[] = r.binaries ?? [r];
  for (const b of binaries) {
    lines.push(b.cached ? `${b.binary} from the binary cache (no build needed)` : `built ${b.binary}`);
    lines.push(
      `  kubeadm ${r.gitVersion} (${r.gitCommit.slice(0, 12)}) ${b.platform}, ${b.goVersion || 'go ?'} in ${r.image}`,
    );
    lines.push(`  sha256 ${b.sha256}`);
    lines.push(
      ...describeVerify(b.verify.executed ? b.verify : { ...b.verify, certificates: [], failures: [] }).map(
        (l) => `  ${l}`,
      ),
    );
  }
  lines.push(`  validity: leaf ${r.validity.leaf.text}, CA ${r.validity.ca.text}`);
  const exe = `./${path.basename(r.binary)}`;
  lines.push('');
  lines.push(
    `next: copy ${exe} to each control-plane node; there, in this order (README: "The air-gapped workflow"):`,
  );
  lines.push(...nodeProcedureCommands({ kubeadm: exe, validity: r.validity }));
  return lines.join('\n');
}

/**
 * `build`: the custom kubeadm for the exact version, in Docker (or from the binary cache). The
 * plan's notes for the cluster (ClusterConfiguration, kubelet, a dirty tree) are told on the way.
 */
export async function runBuild(input: BuildInput, io: CommandIo): Promise<BuildResult> {
  const out = reporter(io.progress);
  const validity = resolveValidities(input);
  const platforms = resolvePlatforms(input);
  // --kubernetes-version alone: the commit from the repository's tag, the Go version from the tree
  const { version, source, resolved } = await completeTargetFromSource(
    input,
    await resolveTarget(input, io),
    out,
  );
  for (const [what, r] of Object.entries(resolved)) out.info(`resolved ${what} ${r.value} from ${r.from}`);
  assertVolumeName(input.goCacheVolume);
  try {
    const result = await runBuildPipeline(
      {
        version,
        validity,
        platforms,
        image: input.image,
        source,
        out: input.out,
        cacheDir: input.cacheDir,
        goCacheVolume: input.goCacheVolume,
        verify: input.verify,
        env: io.env,
        cache: new BuildCache(input.cacheDir, io.progress),
        noCache: !input.cache,
        sourceVolume: input.sourceVolume,
        goVerbose: input.verbose,
        emulator: input.emulator,
      },
      io.progress,
    );
    for (const n of result.plan.notes.filter((n) => /ClusterConfiguration|kubelet|dirty/.test(n)))
      out.info(`note: ${n}`);
    return resultDoc(result);
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
  handler: (argv) => runFunction(argv, (io) => runBuild(argv, io), { human: formatBuildResult }),
});
export default command;
