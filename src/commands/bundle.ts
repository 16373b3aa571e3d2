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
import { exportBundle, selectEntries, type ExportTool } from '../carry/bundle/export.js';
import { importBundle } from '../carry/bundle/import.js';
import { BundleError, readBundle } from '../carry/bundle/read.js';
import { KfError, UsageError } from '../core/errors.js';
import { TOOL_VERSION } from '../adapters/tool-version.js';
import { assertOutputFile } from '../adapters/fs.js';
import { defineCommand, requireFlagFile, type GlobalFlags } from './options.js';
import { commandSummaries } from './catalog.js';
import { parsePlatformList } from '../core/plan.js';
import { runCommand } from './run.js';

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
    runCommand(argv, async (a, out) => {
      if (a.version !== undefined && !/^v\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]+)?$/.test(a.version)) {
        throw new UsageError(
          `--version ${JSON.stringify(a.version)} is not vX.Y.Z`,
          'e.g. --version v1.20.2',
        );
      }
      const platforms = a.platform ? parsePlatformList(a.platform) : [];
      assertOutputFile(a.out, { flag: '--out', example: 'kubeadm-bundle.tar.gz' });
      const cache = new BinaryCache(a.cacheDir);
      out.step('checking cache entries');
      const { entries, corrupt } = await selectEntries(cache, { version: a.version, platforms, keys: a.key });
      if (corrupt.length > 0) {
        throw new KfError(
          `refusing to export corrupt cache entries: ${corrupt.join('; ')}`,
          "rebuild them ('kubeadm-forever cache rm KEY', then build), or narrow the selection",
        );
      }
      if (entries.length === 0) {
        const what = [a.version, platforms.map(formatPlatform).join(','), a.key?.join(',')]
          .filter(Boolean)
          .join(' ');
        throw new KfError(
          `no cached binaries${what ? ` match ${what}` : ''} in ${cache.root}`,
          "build them first, or see 'kubeadm-forever cache ls'",
        );
      }
      const tools: ExportTool[] = [];
      if (a.tool) {
        const wanted = [...new Set(entries.map((e) => e.manifest.platform))].sort();
        for (const text of wanted) {
          if (!TOOL_PLATFORMS.includes(text)) {
            out.info(`no executable of the tool is made for ${text}: the bundle carries none for it`);
            continue;
          }
          const platform = platformFromText(text)!;
          const file = a.toolDir
            ? path.join(a.toolDir, distExecutableName(platform))
            : toolExecutablePath(a.cacheDir, platform);
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
        `writing ${entries.length} binaries${tools.length ? ` and ${tools.length} tool executables` : ''} to ${a.out}`,
      );
      const r = await exportBundle(entries, a.out, TOOL_VERSION, tools);
      out.result(
        r,
        [
          `wrote ${r.out} (${r.size} bytes)`,
          `sha256 ${r.sha256}`,
          ...r.entries.map((e) => `  ${e.gitVersion} ${e.platform} ${e.sha256}`),
          ...r.tools.map((t) => `  tool ${t.platform} ${t.sha256}`),
        ].join('\n'),
      );
    }),
});

const verifyCmd = defineCommand({
  command: 'verify <file>',
  describe: 'check a bundle: member names and types, SHA256SUMS, manifests against binaries',
  builder: (y) =>
    y.positional('file', {
      type: 'string',
      demandOption: true,
    }),
  handler: (argv) =>
    runCommand(argv, async (a, out) => {
      requireBundleFile(a.file);
      out.step(`verifying ${a.file}`);
      const c = await checkedRead(a.file, () => readBundle(a.file));
      const entries = c.entries.map((e) => ({
        key: e.key,
        platform: formatPlatform(e.platform),
        gitVersion: e.manifest.gitVersion,
        sha256: e.manifest.sha256,
      }));
      const tools = c.tools.map((t) => ({ platform: formatPlatform(t.platform), sha256: t.sha256 }));
      out.result(
        { file: a.file, ok: true, files: c.files, entries, tools },
        [
          `ok: ${a.file} (${c.files} files)`,
          ...entries.map((e) => `  ${e.gitVersion} ${e.platform} ${e.sha256}`),
          ...tools.map((t) => `  tool ${t.platform} ${t.sha256}`),
        ].join('\n'),
      );
    }),
});

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
    runCommand(argv, async (a, out) => {
      requireBundleFile(a.file);
      const cache = new BinaryCache(a.cacheDir);
      out.step(`verifying and importing ${a.file}`);
      const r = await checkedRead(a.file, () => importBundle(a.file, cache, { force: Boolean(a.force) }));
      for (const e of r.entries)
        if (e.status === 'kept')
          out.info(`kept the existing ${e.gitVersion} ${e.platform} entry ${e.key} (--force replaces it)`);
      out.result(
        r.tools.length > 0 ? { entries: r.entries, tools: r.tools } : r.entries,
        [
          ...r.entries.map((e) => `${e.status}: ${e.gitVersion} ${e.platform} ${e.path}`),
          ...r.tools.map((t) => `${t.status}: tool ${t.platform} ${t.path}`),
        ].join('\n'),
      );
    }),
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
