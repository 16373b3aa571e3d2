import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Argv, BuilderArguments } from 'yargs';
import { BuildCache } from '../carry/cache/build-cache.js';
import { parseManifest, type CacheManifest } from '../core/cache-manifest.js';
import { sha256File } from '../adapters/fs.js';
import { changedRecordedInputs, rebuildDifferences, type Difference } from '../core/audit.js';
import type { VersionInfo } from '../core/types.js';
import { resolveValidityPair } from '../core/validity.js';
import { parsePlatform } from '../core/version.js';
import { KfError, UsageError, messageOf } from '../core/errors.js';
import { runBuildPipeline } from '../build/index.js';
import type { SourceSpec } from '../core/types.js';
import type { CommandIo } from '../core/command-io.js';
import { reporter } from '../core/progress.js';
import { assertVolumeName, goCacheVolumeOptions } from './build-options.js';
import { sourceSpec, withSourceOptions } from './target-options.js';
import { defineCommand, type CamelFlags, type GlobalFlags } from './options.js';
import { commandSummaries } from './catalog.js';
import { runFunction } from './run.js';

type AuditArgs = BuilderArguments<typeof builder>;

/** What `audit` is asked: the binary, its manifest, and (optionally) where the source is. */
export type AuditInput = Omit<CamelFlags<AuditArgs>, 'json' | 'verbose'>;

/** The `audit --json` document: whether the rebuild has the recorded bytes, and every difference. */
export interface AuditResult {
  binary: string;
  manifest: string;
  identical: boolean;
  sha256: string;
  rebuiltSha256: string;
  differences: Difference[];
}

function readManifest(file: string): CacheManifest {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(
      `--manifest ${file}: ${messageOf(err)}`,
      'pass the manifest.json recorded with the binary (build --json prints its path; bundles carry it next to the binary)',
    );
  }
  try {
    return parseManifest(text);
  } catch (err) {
    throw new KfError(
      `${file}: ${messageOf(err)}`,
      'pass the manifest.json recorded with the binary, unchanged',
    );
  }
}

/** The source to rebuild from: the flags when given, else what the manifest records. */
function auditSource(argv: AuditInput, m: CacheManifest): SourceSpec {
  const src = m.provenance?.source;
  if (argv.sourceDir !== undefined || argv.sourceTarball !== undefined || argv.repo !== undefined) {
    return sourceSpec(argv, src?.commit ?? m.gitCommit);
  }
  const next = 'pass the source with --source-dir, --source-tarball or --repo';
  if (!src?.location) throw new UsageError('the manifest does not record where its source came from', next);
  if (src.kind === 'git') return { kind: 'git', repo: src.location, commit: src.commit ?? m.gitCommit };
  if (!fs.existsSync(src.location))
    throw new UsageError(`the recorded source ${src.location} is not on this machine`, next);
  return src.kind === 'tarball'
    ? { kind: 'tarball', file: src.location }
    : { kind: 'dir', dir: src.location };
}

function report(diffs: Difference[]): string {
  return diffs.map((d) => `  ${d.kind}: ${d.text}`).join('\n');
}

/**
 * `audit`: the binary rebuilt from the inputs its manifest records (no cache) and the sha256s
 * compared. A rebuild that differs is in the result (auditFailure says it), not thrown; a binary
 * that is not the recorded one, or a manifest changed after the build, is refused before it.
 */
export async function runAudit(argv: AuditInput, io: CommandIo): Promise<AuditResult> {
  const out = reporter(io.progress);
  assertVolumeName(argv.goCacheVolume);
  if (!fs.existsSync(argv.binary))
    throw new UsageError(`${argv.binary}: no such file`, 'pass the kubeadm binary to audit');
  const m = readManifest(argv.manifest);
  out.step(`checking ${argv.binary} against its manifest`);
  const given = await sha256File(argv.binary);
  if (given !== m.sha256) {
    throw new KfError(
      `binary differs from its manifest: ${argv.binary} has sha256 ${given}, the manifest records ${m.sha256}`,
      'audit a binary with the manifest.json that was recorded with it',
    );
  }
  const changed = changedRecordedInputs(m);
  if (changed.length > 0) {
    out.fail();
    out.info(`the manifest's recorded inputs were changed after the build:\n${report(changed)}`);
    throw new KfError(
      `recorded input ${changed.map((d) => d.name).join(', ')} changed: the manifest no longer describes the build of ${path.basename(argv.binary)}`,
      'audit with the manifest.json recorded with the binary, unchanged (a rebuild from changed inputs proves nothing)',
    );
  }
  const source = auditSource(argv, m);
  const validity = resolveValidityPair(m.validity.text, m.caValidity.text);
  const platform = parsePlatform(m.platform, 'the manifest platform');
  const env = { ...io.env };
  delete env.SOURCE_DATE_EPOCH;
  if (m.provenance?.sourceDateEpoch !== undefined)
    env.SOURCE_DATE_EPOCH = String(m.provenance.sourceDateEpoch);

  // a throw-away binary cache: the rebuild is never a hit, and its manifest is compared below
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kubeadm-forever-audit-'));
  try {
    const result = await runBuildPipeline(
      {
        version: m.inputs.version as VersionInfo,
        validity,
        platforms: [platform],
        image: m.image,
        source,
        out: path.join(work, 'kubeadm'),
        cacheDir: argv.cacheDir,
        goCacheVolume: argv.goCacheVolume,
        verify: false,
        env,
        cache: new BuildCache(path.join(work, 'cache')),
        noCache: true,
        // an independent rebuild: the tree comes from the given source, not a kept volume
        sourceVolume: false,
      },
      { step: (t) => out.step(`rebuilding: ${t}`), detail: (l) => out.detail(l) },
    );
    const built = result.binaries[0]!;
    const rebuilt = readManifest(built.manifest!);
    const diffs = rebuildDifferences(m, rebuilt);
    const identical = built.sha256 === m.sha256;
    const doc: AuditResult = {
      binary: argv.binary,
      manifest: argv.manifest,
      identical,
      sha256: m.sha256,
      rebuiltSha256: built.sha256,
      differences: diffs,
    };
    if (identical) out.succeed();
    else out.fail();
    return doc;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** The audit for people: identical (and what differs without touching the bytes), or what differs. */
export function formatAuditResult(r: AuditResult): string {
  if (r.identical) {
    const noted = r.differences.length > 0 ? `\nnot affecting the bytes:\n${report(r.differences)}` : '';
    return `identical: the rebuild from the recorded inputs has sha256 ${r.sha256}${noted}`;
  }
  return `the rebuild differs: sha256 ${r.rebuiltSha256}, recorded ${r.sha256}\n${report(r.differences)}`;
}

/** A rebuild that differs: the error to give after the result. */
export function auditFailure(r: AuditResult): KfError | undefined {
  if (r.identical) return undefined;
  return new KfError(
    `the rebuild from the recorded inputs differs (${r.differences.map((d) => `${d.kind} ${d.name}`).join(', ')})`,
    'read the differences above: a changed input or environment explains it; same inputs and environment with different bytes means the build is not reproducible',
  );
}

const builder = (y: Argv<GlobalFlags>) =>
  withSourceOptions(
    y
      .positional('binary', { type: 'string', demandOption: true, describe: 'the kubeadm binary to audit' })
      .option('manifest', {
        type: 'string',
        demandOption: true,
        describe: 'the manifest.json recorded with it',
      }),
    {
      sourceDir: 'the source tree (default: what the manifest records)',
      sourceTarball: 'the source .tar.gz (default: what the manifest records)',
      repo: 'git URL or local mirror path (default: what the manifest records)',
    },
  ).options(goCacheVolumeOptions('named Docker volume for the Go build cache (it never changes the bytes)'));

const command = defineCommand({
  ...commandSummaries.audit,
  builder,
  handler: (argv) =>
    runFunction(argv, (io) => runAudit(argv, io), { human: formatAuditResult, failure: auditFailure }),
});
export default command;
