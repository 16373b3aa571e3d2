import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Argv } from 'yargs';
import { UsageError } from '../core/errors.js';

/** Options every command takes. */
export interface GlobalArgs {
  json: boolean;
  verbose: boolean;
  cacheDir: string;
}

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.KUBEADM_FOREVER_CACHE_DIR) return env.KUBEADM_FOREVER_CACHE_DIR;
  const xdg = env.XDG_CACHE_HOME;
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.cache');
  return path.join(base, 'kubeadm-forever');
}

export function withGlobalOptions<T>(y: Argv<T>) {
  return y
    .option('json', { type: 'boolean', default: false, describe: 'print one JSON result document on stdout' })
    .option('verbose', {
      type: 'boolean',
      default: false,
      describe: 'stream build logs and details on stderr',
    })
    .option('cache-dir', {
      type: 'string',
      default: defaultCacheDir(),
      defaultDescription:
        '$KUBEADM_FOREVER_CACHE_DIR, $XDG_CACHE_HOME/kubeadm-forever or ~/.cache/kubeadm-forever',
      describe: 'where built binaries and git mirrors are kept',
    });
}

/**
 * A flag that names an input file: refused, with the flag named, when it is empty, names
 * nothing, or names something other than a regular file (a directory, a device).
 */
export function requireFlagFile(flag: string, file: string, next: string): void {
  if (file.trim() === '') throw new UsageError(`${flag} is empty`, next);
  const st = fs.statSync(file, { throwIfNoEntry: false });
  if (!st) throw new UsageError(`${flag} ${file}: no such file`, next);
  if (!st.isFile()) throw new UsageError(`${flag} ${file} is not a regular file`, next);
}
