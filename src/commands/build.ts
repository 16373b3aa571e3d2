import path from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { DEFAULT_GO_CACHE_VOLUME } from '../core/go-invocation.js';
import { formatPlatform } from '../core/platform.js';
import { UsageError } from '../core/errors.js';
import { DEFAULT_OUT } from '../build/extract.js';
import { runBuildPipeline, VerifyError, type BuildResult } from '../build/index.js';
import { describeVerify } from '../build/verify.js';
import type { Output } from '../ui/output.js';
import type { GlobalArgs } from './options.js';
import { runCommand } from './run.js';
import { BuildCache } from '../carry/cache/build-cache.js';
import {
  completeTargetFromSource,
  resolvePlatforms,
  resolveTarget,
  withSourceOptions,
  resolveValidities,
  withTargetOptions,
  withValidityOptions,
  type SourceArgs,
  type TargetArgs,
  type ValidityArgs,
} from './target-options.js';

interface BuildArgs extends GlobalArgs, TargetArgs, ValidityArgs, SourceArgs {
  image?: string;
  out: string;
  verify: boolean;
  cache: boolean;
  goCacheVolume: string;
  sourceVolume: boolean;
}

/** --go-cache-volume must be a Docker volume name (build and audit). */
export function assertVolumeName(name: string): void {
  if (!name || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) {
    throw new UsageError(
      `--go-cache-volume '${name}' is not a Docker volume name`,
      'use letters, digits, "_", "." and "-"',
    );
  }
}

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
  lines.push(`next: copy it to each control-plane node and run: sudo ${exe} certs renew all`);
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
        cache: new BuildCache(argv.cacheDir, {
          warn: (t) => out.warn(t),
          waiting: (t) => out.info(t),
        }),
        noCache: !argv.cache,
        sourceVolume: argv.sourceVolume,
        goVerbose: argv.verbose,
      },
      {
        step: (t) => out.step(t),
        line: (l) => out.detail(l),
        progress: (d) => out.progress(d),
        waiting: (t) => out.info(t),
        failureTail: (tail) => {
          out.fail();
          if (!out.verbose)
            out.info(`last ${tail.length} lines of the build:\n${tail.map((l) => `  ${l}`).join('\n')}`);
        },
      },
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

const command: CommandModule<GlobalArgs, BuildArgs> = {
  command: 'build',
  describe: 'build a kubeadm with long-lived certificates for the exact version (Docker)',
  builder: (y: Argv<GlobalArgs>) =>
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
      .option('go-cache-volume', {
        type: 'string',
        default: DEFAULT_GO_CACHE_VOLUME,
        describe: 'named Docker volume for the Go build cache',
      })
      .option('source-volume', {
        type: 'boolean',
        default: true,
        describe:
          'keep the tree in a Docker volume per source, reused by rebuilds (--no-source-volume streams it into each build)',
      }) as unknown as Argv<BuildArgs>,
  handler: (argv: ArgumentsCamelCase<BuildArgs>) => runCommand(argv, build),
};
export default command;
