import fs from 'node:fs/promises';
import path from 'node:path';
import type { Platform } from '../../core/types.js';
import { platformDir } from '../../core/platform.js';
import { sha256File } from '../../adapters/fs.js';
import { machineMismatch, readBinaryHead } from './elf.js';

/**
 * The tool itself as one executable per platform (`npm run dist` makes them), kept in the cache
 * beside the kubeadm binaries so a bundle can carry it into the air gap and other commands can
 * copy it to nodes:
 *
 *   <cache-dir>/tool/<os>-<arch>/kubeadm-forever
 */
export const TOOL_NAME = 'kubeadm-forever';
/** A Node single executable is ~130 MB; anything far larger is not one. */
export const MAX_TOOL_SIZE = 512 * 1024 * 1024;

/** Only Linux executables are made (the SEA comes from the registry's node-linux-* packages). */
export const TOOL_PLATFORMS = ['linux/amd64', 'linux/arm64'];

/** The cache path of the tool's executable for a platform (whether or not it is there). */
export function toolExecutablePath(cacheDir: string, platform: Platform): string {
  return path.join(path.resolve(cacheDir), 'tool', platformDir(platform), TOOL_NAME);
}

/** `npm run dist`'s name for a platform's executable: kubeadm-forever-linux-amd64. */
export function distExecutableName(platform: Platform): string {
  return `${TOOL_NAME}-${platformDir(platform)}`;
}

export interface ToolFile {
  file: string;
  size: number;
  sha256: string;
}

/**
 * A tool executable that may be shipped: a regular file (a FIFO or device is refused before
 * reading), bounded in size, an ELF for exactly the platform's machine. Returns the problem as text.
 */
export async function checkToolFile(file: string, platform: Platform): Promise<ToolFile | string> {
  const st = await fs.stat(file).catch(() => null);
  if (!st) return `${file} is missing`;
  if (!st.isFile()) return `${file} is not a regular file`;
  if (st.size > MAX_TOOL_SIZE) return `${file} is larger than ${MAX_TOOL_SIZE} bytes`;
  const head = await readBinaryHead(file);
  if (head.subarray(0, 4).toString('latin1') !== '\x7fELF') return `${file} is not an ELF executable`;
  const mismatch = machineMismatch(head, platform);
  if (mismatch) return `${file} is ${mismatch}`;
  return { file, size: st.size, sha256: await sha256File(file) };
}
