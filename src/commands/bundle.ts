import type { CommandModule } from 'yargs';
import { BinaryCache } from '../carry/cache/store.js';
import path from 'node:path';
import { formatPlatform, platformFromText } from '../core/platform.js';
import {
  checkToolFile,
  distExecutableName,
  TOOL_PLATFORMS,
  toolExecutablePath,
} from '../carry/cache/tool.js';
import { exportBundle, selectEntries, type ExportResult, type ExportTool } from '../carry/bundle/export.js';
import { importBundle, type ImportResult } from '../carry/bundle/import.js';
import { BundleError, readBundle } from '../carry/bundle/read.js';
import { KfError, UsageError } from '../core/errors.js';
import { TOOL_VERSION } from '../adapters/tool-version.js';
import { assertOutputFile } from '../adapters/fs.js';
import { defineCommand, requireFlagFile, type GlobalFlags } from './options.js';
import { commandSummaries } from './catalog.js';
import { parsePlatformList } from '../core/plan.js';
import { runFunction } from './run.js';
import type { CommandIo } from '../core/command-io.js';
import { reporter } from '../core/progress.js';

function requireBundleFile(file: string): void {
  requireFlagFile('bundle', file, "give the .tar.gz written by 'kubeadm-forever bundle export'");
}

/** Reads and checks a bundle, turning its problems into the two-line error. */
async function checkedRead<T>(file: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof BundleError) {
      throw new KfError(
        `bundle ${file} is refused: ${err.message}`,
        'get a fresh copy of the bundle from where it was built and compare its sha256; nothing was imported',
      );
    }
    throw err;
  }
}

/** What `bundle export` is asked: the selection, the file, and where the tool comes from. */
export interface BundleExportInput {
  cacheDir: string;
  /** the bundle file to write */
  out: string;
  /** only this Kubernetes version */
  version?: string;
  /** only these os/arch, comma-separated or repeated */
  platform?: string | string[];
  /** only these cache keys */
  key?: string[];
  /** carry the tool's own executable for each Linux platform of the binaries */
  tool: boolean;
  /** take those executables from this folder, not the cache */
  toolDir?: string;
}

/** The `bundle export --json` document. */
export type BundleExportResult = ExportResult;

/** `bundle export`: cached binaries, their manifests, SHA256SUMS and a README in one tar.gz. */
export async function runBundleExport(input: BundleExportInput, io: CommandIo): Promise<BundleExportResult> {
  const out = reporter(io.progress);
  if (input.version !== undefined && !/^v\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]+)?$/.test(input.version)) {
    throw new UsageError(
      `--version ${JSON.stringify(input.version)} is not vX.Y.Z`,
      'e.g. --version v1.20.2',
    );
  }
  const platforms = input.platform ? parsePlatformList(input.platform) : [];
  assertOutputFile(input.out, { flag: '--out', example: 'kubeadm-bundle.tar.gz' });
  const cache = new BinaryCache(input.cacheDir);
  out.step('checking cache entries');
  const { entries, corrupt } = await selectEntries(cache, {
    version: input.version,
    platforms,
    keys: input.key,
  });
  if (corrupt.length > 0) {
    throw new KfError(
      `refusing to export corrupt cache entries: ${corrupt.join('; ')}`,
      "rebuild them ('kubeadm-forever cache rm KEY', then build), or narrow the selection",
    );
  }
  if (entries.length === 0) {
    const what = [input.version, platforms.map(formatPlatform).join(','), input.key?.join(',')]
      .filter(Boolean)
      .join(' ');
    throw new KfError(
      `no cached binaries${what ? ` match ${what}` : ''} in ${cache.root}`,
      "build them first, or see 'kubeadm-forever cache ls'",
    );
  }
  const tools: ExportTool[] = [];
  if (input.tool) {
    const wanted = [...new Set(entries.map((e) => e.manifest.platform))].sort();
    for (const text of wanted) {
      if (!TOOL_PLATFORMS.includes(text)) {
        out.info(`no executable of the tool is made for ${text}: the bundle carries none for it`);
        continue;
      }
      const platform = platformFromText(text)!;
      const file = input.toolDir
        ? path.join(input.toolDir, distExecutableName(platform))
        : toolExecutablePath(input.cacheDir, platform);
      const checked = await checkToolFile(file, platform);
      if (typeof checked === 'string') {
        throw new KfError(
          `the bundle would carry the tool for ${text}, but ${checked}`,
          "run 'npm run dist' in the tool's checkout and pass --tool-dir DIST-BIN (or import a bundle that carries it), or leave it out with --no-tool",
        );
      }
      tools.push({ ...checked, platform });
    }
  }
  out.step(
    `writing ${entries.length} binaries${tools.length ? ` and ${tools.length} tool executables` : ''} to ${input.out}`,
  );
  return exportBundle(entries, input.out, TOOL_VERSION, tools);
}

/** The export for people: the file, its sha256, what it carries. */
export function formatBundleExportResult(r: BundleExportResult): string {
  return [
    `wrote ${r.out} (${r.size} bytes)`,
    `sha256 ${r.sha256}`,
    ...r.entries.map((e) => `  ${e.gitVersion} ${e.platform} ${e.sha256}`),
    ...r.tools.map((t) => `  tool ${t.platform} ${t.sha256}`),
  ].join('\n');
}

const exportCmd = defineCommand({
  command: 'export',
  describe: 'write cached binaries, their manifests, SHA256SUMS and a README into one tar.gz',
  builder: (y) =>
    y
      .option('out', { type: 'string', demandOption: true, describe: 'the bundle file to write (.tar.gz)' })
      .option('version', { type: 'string', describe: 'only this Kubernetes version, e.g. v1.20.2' })
      .option('platform', {
        type: 'string',
        array: true,
        describe: 'only these os/arch (comma-separated or repeated)',
      })
      .option('key', {
        type: 'string',
        array: true,
        describe: 'only these cache keys',
      })
      .option('tool', {
        type: 'boolean',
        default: true,
        describe:
          "carry the tool's own executable for each Linux platform of the binaries (--no-tool: leave it out)",
      })
      .option('tool-dir', {
        type: 'string',
        describe: "take the tool's executables from this folder (npm run dist's dist-bin/), not the cache",
      }),
  handler: (argv) =>
    runFunction(argv, (io) => runBundleExport(argv, io), { human: formatBundleExportResult }),
});

/** The `bundle verify --json` document. */
export interface BundleVerifyResult {
  file: string;
  ok: true;
  files: number;
  entries: { key: string; platform: string; gitVersion: string; sha256: string }[];
  tools: { platform: string; sha256: string }[];
}

/** `bundle verify`: member names and types, SHA256SUMS, manifests against binaries; a refusal is thrown. */
export async function runBundleVerify(input: { file: string }, io: CommandIo): Promise<BundleVerifyResult> {
  requireBundleFile(input.file);
  reporter(io.progress).step(`verifying ${input.file}`);
  const c = await checkedRead(input.file, () => readBundle(input.file));
  const entries = c.entries.map((e) => ({
    key: e.key,
    platform: formatPlatform(e.platform),
    gitVersion: e.manifest.gitVersion,
    sha256: e.manifest.sha256,
  }));
  const tools = c.tools.map((t) => ({ platform: formatPlatform(t.platform), sha256: t.sha256 }));
  return { file: input.file, ok: true, files: c.files, entries, tools };
}

/** The verification for people: ok, and what the bundle carries. */
export function formatBundleVerifyResult(r: BundleVerifyResult): string {
  return [
    `ok: ${r.file} (${r.files} files)`,
    ...r.entries.map((e) => `  ${e.gitVersion} ${e.platform} ${e.sha256}`),
    ...r.tools.map((t) => `  tool ${t.platform} ${t.sha256}`),
  ].join('\n');
}

const verifyCmd = defineCommand({
  command: 'verify <file>',
  describe: 'check a bundle: member names and types, SHA256SUMS, manifests against binaries',
  builder: (y) =>
    y.positional('file', {
      type: 'string',
      demandOption: true,
    }),
  handler: (argv) =>
    runFunction(argv, (io) => runBundleVerify(argv, io), { human: formatBundleVerifyResult }),
});

/**
 * The `bundle import --json` document: the entries as a list, as it has always been; with tool
 * executables in the bundle, `{ entries, tools }`.
 */
export type BundleImportResult = ImportResult['entries'] | ImportResult;

/** What `bundle import` is asked. */
export interface BundleImportInput {
  cacheDir: string;
  file: string;
  /** replace existing entries of the same key */
  force: boolean;
}

/** `bundle import`: the bundle verified, then its binaries (and tool executables) added to the cache. */
export async function runBundleImport(input: BundleImportInput, io: CommandIo): Promise<BundleImportResult> {
  requireBundleFile(input.file);
  const out = reporter(io.progress);
  const cache = new BinaryCache(input.cacheDir);
  out.step(`verifying and importing ${input.file}`);
  const r = await checkedRead(input.file, () =>
    importBundle(input.file, cache, { force: Boolean(input.force) }),
  );
  for (const e of r.entries)
    if (e.status === 'kept')
      out.info(`kept the existing ${e.gitVersion} ${e.platform} entry ${e.key} (--force replaces it)`);
  return r.tools.length > 0 ? { entries: r.entries, tools: r.tools } : r.entries;
}

/** The import for people: what became of each entry and tool executable. */
export function formatBundleImportResult(r: BundleImportResult): string {
  const { entries, tools } = Array.isArray(r) ? { entries: r, tools: [] } : r;
  return [
    ...entries.map((e) => `${e.status}: ${e.gitVersion} ${e.platform} ${e.path}`),
    ...tools.map((t) => `${t.status}: tool ${t.platform} ${t.path}`),
  ].join('\n');
}

const importCmd = defineCommand({
  command: 'import <file>',
  describe: 'verify a bundle, then add its binaries to the cache (existing entries kept unless --force)',
  builder: (y) =>
    y.positional('file', { type: 'string', demandOption: true }).option('force', {
      type: 'boolean',
      default: false,
      describe: 'replace existing entries of the same key',
    }),
  handler: (argv) =>
    runFunction(argv, (io) => runBundleImport(argv, io), { human: formatBundleImportResult }),
});

const command: CommandModule<GlobalFlags, GlobalFlags> = {
  ...commandSummaries.bundle,
  builder: (y) =>
    y
      .command(exportCmd)
      .command(verifyCmd)
      .command(importCmd)
      .demandCommand(1, 'Name a bundle action: export, verify or import.'),
  handler: () => undefined,
};
export default command;
