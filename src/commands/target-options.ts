import type { Argv, BuilderArguments } from 'yargs';
import { UsageError } from '../core/errors.js';
import { readKubeadmVersion, readVersionFile } from '../adapters/kubeadm-version.js';
import { parsePlatformList } from '../core/plan.js';
import type { Platform, VersionInfo } from '../core/types.js';
import { versionInfoFromFlags } from '../core/version.js';
import { completeTarget, type CompletedTarget } from '../build/resolve.js';
import { DEFAULT_REPO } from '../build/source.js';
import type { SourceSpec } from '../core/types.js';
import type { CommandIo } from '../core/command-io.js';
import { reporter, type Progress } from '../core/progress.js';
import { singleFlagValue, type CamelFlags } from './options.js';

// The target and source flag groups, each defined once (the validity group, which node commands
// share, is in validity-options.ts: they need not load the build modules; --go-cache-volume of
// build and audit in build-options.ts). A command adds a group with withXOptions(y) and its
// handler gets the group's flags typed from it (yargs' BuilderArguments); the functions that
// read a group take exactly what the group defines.

/** The target-selection flags (`plan`, `build`, `verify`). */
export type TargetArgs = CamelFlags<BuilderArguments<typeof withTargetOptions<object>>>;

/** Adds --kubeadm, --version-file, --kubernetes-version, --commit, --go-version and --platform. */
export function withTargetOptions<T>(y: Argv<T>) {
  return y
    .option('kubeadm', {
      type: 'string',
      describe: 'kubeadm binary to read the version from (runs `version -o json`); default: kubeadm on PATH',
    })
    .option('version-file', {
      type: 'string',
      nargs: 1,
      describe: 'saved output of `kubeadm version` in any format; - reads stdin',
    })
    .option('kubernetes-version', {
      type: 'string',
      describe: 'target version vX.Y.Z instead of asking a kubeadm',
    })
    .option('commit', {
      type: 'string',
      describe: 'with --kubernetes-version: its 40-hex git commit (default: the tag vX.Y.Z of --repo)',
    })
    .option('go-version', {
      type: 'string',
      describe:
        'with --kubernetes-version: the Go version it was built with, X.Y.Z (default: read from the source tree)',
    })
    .option('platform', {
      type: 'string',
      describe: 'os/arch to build for, comma-separated (default: the platform of the kubeadm version)',
    });
}

function given(v: unknown): v is string {
  return typeof v === 'string';
}

/**
 * Resolves the target version from exactly one source: --version-file, --kubernetes-version
 * (with optional --commit/--go-version) or --kubeadm (default: `kubeadm` on PATH).
 */
export async function resolveTarget(
  argv: TargetArgs,
  io: Pick<CommandIo, 'env' | 'stdin'>,
): Promise<VersionInfo> {
  const kubeadm = singleFlagValue(argv.kubeadm, '--kubeadm');
  const versionFile = singleFlagValue(argv.versionFile, '--version-file');
  const kubernetesVersion = singleFlagValue(argv.kubernetesVersion, '--kubernetes-version');
  const commit = singleFlagValue(argv.commit, '--commit');
  const goVersion = singleFlagValue(argv.goVersion, '--go-version');
  const sources = [
    given(kubeadm) && '--kubeadm',
    given(versionFile) && '--version-file',
    given(kubernetesVersion) && '--kubernetes-version',
  ].filter(Boolean);
  if (sources.length > 1) {
    throw new UsageError(
      `${sources.join(' and ')} both name the target version`,
      'pass only one of --kubeadm, --version-file, --kubernetes-version',
    );
  }
  if (!given(kubernetesVersion) && (given(commit) || given(goVersion))) {
    throw new UsageError(
      `${given(commit) ? '--commit' : '--go-version'} only goes with --kubernetes-version`,
      '--kubeadm and --version-file already give the commit and Go version',
    );
  }
  if (given(kubernetesVersion)) {
    if (kubernetesVersion.trim() === '')
      throw new UsageError('--kubernetes-version is empty', 'pass --kubernetes-version vX.Y.Z');
    return versionInfoFromFlags({ kubernetesVersion, commit, goVersion });
  }
  if (given(versionFile)) {
    if (versionFile === '')
      throw new UsageError('--version-file is empty', 'pass --version-file FILE, or - for stdin');
    return (await readVersionFile(versionFile, io.stdin)).info;
  }
  if (kubeadm === '') throw new UsageError('--kubeadm is empty', 'pass --kubeadm PATH');
  return (await readKubeadmVersion(kubeadm ?? 'kubeadm', io.env)).info;
}

/** The --platform list (empty: the plan uses the version's own platform). */
export function resolvePlatforms(argv: TargetArgs): Platform[] {
  return parsePlatformList(argv.platform);
}

/** Where the source comes from (`build`, `plan`, `audit`). */
export type SourceArgs = CamelFlags<BuilderArguments<typeof withSourceOptions<object>>>;

/**
 * Adds --source-dir, --source-tarball and --repo; `describe` words them for a command whose
 * default source is another (`audit`: the one its manifest records).
 */
export function withSourceOptions<T>(
  y: Argv<T>,
  describe: { sourceDir?: string; sourceTarball?: string; repo?: string } = {},
) {
  return y
    .option('source-dir', {
      type: 'string',
      describe: describe.sourceDir ?? 'an unpacked Kubernetes source tree, used as it is (never modified)',
    })
    .option('source-tarball', {
      type: 'string',
      describe: describe.sourceTarball ?? 'a Kubernetes source .tar.gz (top folder stripped)',
    })
    .option('repo', {
      type: 'string',
      describe:
        describe.repo ?? `git URL or local mirror path to fetch the commit from (default ${DEFAULT_REPO})`,
    });
}

/** The source named by at most one of --source-dir, --source-tarball, --repo (default: `repo` of DEFAULT_REPO). */
export function sourceSpec(argv: SourceArgs, commit: string): SourceSpec {
  const given = [
    argv.sourceDir !== undefined && '--source-dir',
    argv.sourceTarball !== undefined && '--source-tarball',
    argv.repo !== undefined && '--repo',
  ].filter(Boolean);
  if (given.length > 1)
    throw new UsageError(
      `${given.join(' and ')} both name the source`,
      'pass only one of --source-dir, --source-tarball, --repo',
    );
  if (argv.sourceDir !== undefined) return { kind: 'dir', dir: String(argv.sourceDir) };
  if (argv.sourceTarball !== undefined) return { kind: 'tarball', file: String(argv.sourceTarball) };
  return { kind: 'git', repo: argv.repo ?? DEFAULT_REPO, commit };
}

/**
 * The target completed from its source (build/resolve.ts): with `--kubernetes-version` and
 * no --commit/--go-version, the commit from the tag and the Go version from the tree. `named`:
 * only a source given on the command line is read (plan); otherwise the default repository.
 * `named` in the result: whether the command line named the source.
 */
export async function completeTargetFromSource(
  argv: SourceArgs & { cacheDir: string },
  version: VersionInfo,
  out: Progress,
  opts: { named?: boolean } = {},
): Promise<CompletedTarget & { source: SourceSpec; named: boolean }> {
  const named = argv.sourceDir !== undefined || argv.sourceTarball !== undefined || argv.repo !== undefined;
  const spec = sourceSpec(argv, version.gitCommit);
  if (opts.named && !named) return { version, source: spec, resolved: {}, named };
  if (!version.gitCommit || !version.goVersion) reporter(out).step('resolving the target from its source');
  const done = await completeTarget(version, spec, { cacheDir: argv.cacheDir });
  return { ...done, source: done.source ?? spec, named };
}
