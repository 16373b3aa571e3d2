import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { promisify } from 'node:util';
import { readBoundedStream } from './bounded-read.js';
import { KfError, UsageError, messageOf } from '../core/errors.js';
import {
  isYamlVersionOutput,
  MAX_VERSION_OUTPUT,
  parseVersionOutput,
  type ParsedVersion,
} from '../core/version.js';

const execFileAsync = promisify(execFile);

/** How long `kubeadm version` may take: it is instant unless the binary is broken. */
const VERSION_TIMEOUT_MS = 30_000;

async function runVersion(kubeadm: string, args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  const { stdout } = await execFileAsync(kubeadm, args, {
    env,
    timeout: VERSION_TIMEOUT_MS,
    maxBuffer: MAX_VERSION_OUTPUT,
    encoding: 'utf8',
  });
  return stdout;
}

/**
 * Runs `kubeadm version -o json` (argument array, no shell; `env`: its environment, PATH included) and parses it; falls back to the
 * default output for kubeadm builds whose `-o json` fails.
 */
export async function readKubeadmVersion(kubeadm: string, env?: NodeJS.ProcessEnv): Promise<ParsedVersion> {
  let firstError: unknown;
  try {
    return await parseAnyVersionOutput(await runVersion(kubeadm, ['version', '-o', 'json'], env));
  } catch (err) {
    if (
      (err as NodeJS.ErrnoException).code === 'ENOENT' ||
      (err as NodeJS.ErrnoException).code === 'EACCES'
    ) {
      throw new UsageError(
        `cannot run kubeadm at ${JSON.stringify(kubeadm)}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : 'permission denied'}`,
        'pass --kubeadm PATH, or --version-file FILE with the saved output of `kubeadm version`',
      );
    }
    firstError = err;
  }
  try {
    return await parseAnyVersionOutput(await runVersion(kubeadm, ['version'], env));
  } catch (err) {
    if (err instanceof KfError) throw err;
    throw new KfError(
      `\`${kubeadm} version\` failed: ${messageOf(firstError ?? err).split('\n')[0]}`,
      'check that the file is a working kubeadm, or pass --version-file with its saved `kubeadm version` output',
    );
  }
}

/** parseVersionOutput, with the YAML reader loaded only for `-o yaml` output (it costs a hit ~50 ms). */
export async function parseAnyVersionOutput(text: string): Promise<ParsedVersion> {
  if (!isYamlVersionOutput(text)) return parseVersionOutput(text);
  const { yamlVersionReader } = await import('../core/version-yaml.js');
  return parseVersionOutput(text, yamlVersionReader);
}

/** Reads and parses a saved `kubeadm version` output; `-` reads `stdin` (the air-gapped case). */
export async function readVersionFile(
  file: string,
  stdin: NodeJS.ReadableStream | undefined,
): Promise<ParsedVersion> {
  const what = file === '-' ? '--version-file - (stdin)' : `--version-file ${JSON.stringify(file)}`;
  let text: string;
  try {
    if (file === '-' && !stdin) throw new UsageError(`${what}: no standard input here`, 'pass a file');
    const input = file === '-' ? stdin! : createReadStream(file);
    text = await readBoundedStream(
      input,
      MAX_VERSION_OUTPUT,
      () =>
        new UsageError(
          `${what} is larger than ${MAX_VERSION_OUTPUT} bytes: not a kubeadm version output`,
          'save `kubeadm version -o json` from the cluster into a file and pass its path (or - for stdin)',
        ),
    );
  } catch (err) {
    if (err instanceof KfError) throw err;
    throw new UsageError(
      `cannot read ${what}: ${(err as NodeJS.ErrnoException).code ?? messageOf(err)}`,
      'save `kubeadm version -o json` from the cluster into a file and pass its path (or - for stdin)',
    );
  }
  return parseAnyVersionOutput(text);
}
