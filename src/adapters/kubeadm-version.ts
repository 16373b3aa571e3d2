import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
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

async function runVersion(kubeadm: string, args: string[]): Promise<string> {
  const { stdout } = await execFileAsync(kubeadm, args, {
    timeout: VERSION_TIMEOUT_MS,
    maxBuffer: MAX_VERSION_OUTPUT,
    encoding: 'utf8',
  });
  return stdout;
}

/**
 * Runs `kubeadm version -o json` (argument array, no shell) and parses it; falls back to the
 * default output for kubeadm builds whose `-o json` fails.
 */
export async function readKubeadmVersion(kubeadm: string): Promise<ParsedVersion> {
  let firstError: unknown;
  try {
    return await parseAnyVersionOutput(await runVersion(kubeadm, ['version', '-o', 'json']));
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
    return await parseAnyVersionOutput(await runVersion(kubeadm, ['version']));
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

/**
 * Reads a stream up to `limit` bytes; more is refused as soon as it arrives (stdin may be
 * /dev/zero or a pipe that never ends; a file may be a device).
 */
async function readBounded(input: NodeJS.ReadableStream, limit: number, what: string): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of input) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buf.length;
    if (size > limit) {
      (input as Readable).destroy?.();
      throw new UsageError(
        `${what} is larger than ${limit} bytes: not a kubeadm version output`,
        'save `kubeadm version -o json` from the cluster into a file and pass its path (or - for stdin)',
      );
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads and parses a saved `kubeadm version` output; `-` reads stdin (the air-gapped case). */
export async function readVersionFile(file: string): Promise<ParsedVersion> {
  const what = file === '-' ? '--version-file - (stdin)' : `--version-file ${JSON.stringify(file)}`;
  let text: string;
  try {
    const input = file === '-' ? process.stdin : createReadStream(file);
    text = await readBounded(input, MAX_VERSION_OUTPUT, what);
  } catch (err) {
    if (err instanceof KfError) throw err;
    throw new UsageError(
      `cannot read ${what}: ${(err as NodeJS.ErrnoException).code ?? messageOf(err)}`,
      'save `kubeadm version -o json` from the cluster into a file and pass its path (or - for stdin)',
    );
  }
  return parseAnyVersionOutput(text);
}
