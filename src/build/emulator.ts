import fs from 'node:fs';
import path from 'node:path';
import { KfError } from '../core/errors.js';
import { formatPlatform } from '../core/platform.js';
import type { Platform } from '../core/types.js';
import { binfmtEntry, emulatorCandidates } from '../core/verify-invocation.js';

/** How a binary of another platform is run here. */
export interface Emulator {
  /**
   * the executable run with the binary as its first argument; undefined when the kernel runs the
   * binary itself through a binfmt_misc registration
   */
  command: string | undefined;
  /** for reports and the cache manifest, e.g. "/usr/bin/qemu-aarch64-static" */
  description: string;
}

export type EmulatorChoice = { emulator: Emulator } | { reason: string };

export interface FindEmulatorOptions {
  /** --emulator: a path, or "none" to run nothing foreign */
  explicit?: string | undefined;
  /** PATH to search (default process.env.PATH) */
  pathEnv?: string | undefined;
  /** where binfmt_misc is mounted */
  binfmtDir?: string;
}

export const DEFAULT_BINFMT_DIR = '/proc/sys/fs/binfmt_misc';

function isExecutableFile(file: string): boolean {
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) return false;
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The binfmt_misc registration that runs `platform`'s binaries, when enabled; small proc files. */
function binfmtRegistration(dir: string, platform: Platform): Emulator | undefined {
  const entry = binfmtEntry(platform);
  if (!entry) return undefined;
  try {
    if (fs.readFileSync(path.join(dir, 'status'), 'utf8').trim() !== 'enabled') return undefined;
    const text = fs.readFileSync(path.join(dir, entry), 'utf8');
    const lines = text.split('\n');
    if (lines[0]?.trim() !== 'enabled') return undefined;
    const interpreter = lines
      .find((l) => l.startsWith('interpreter '))
      ?.slice('interpreter '.length)
      .trim();
    return {
      command: undefined,
      description: `binfmt_misc ${entry}${interpreter ? ` (${interpreter})` : ''}`,
    };
  } catch {
    return undefined;
  }
}

/**
 * What runs a binary of `platform` on `host`: nothing for the host's own platform (callers check
 * that first), else --emulator, else a binfmt_misc registration, else qemu-<arch>-static (or
 * qemu-<arch>) on PATH. A reason when there is none: the binary is then not executed.
 */
export function findEmulator(
  platform: Platform,
  host: Platform,
  opts: FindEmulatorOptions = {},
): EmulatorChoice {
  const foreign = `built for ${formatPlatform(platform)}, this host is ${formatPlatform(host)}`;
  if (opts.explicit === 'none') return { reason: `${foreign}; no emulator (--emulator none)` };
  if (opts.explicit !== undefined) {
    const file = path.resolve(opts.explicit);
    if (!isExecutableFile(file)) {
      throw new KfError(
        `--emulator ${opts.explicit} is not an executable file`,
        'pass the path of a user-mode emulator such as /usr/bin/qemu-aarch64-static, or none',
      );
    }
    return { emulator: { command: file, description: file } };
  }
  if (platform.os !== host.os || host.os !== 'linux') {
    return { reason: `${foreign}; no user-mode emulator runs another operating system's binaries` };
  }
  const candidates = emulatorCandidates(platform);
  if (candidates.length === 0)
    return { reason: `${foreign}; QEMU has no user-mode emulator for ${platform.arch}` };
  const registered = binfmtRegistration(opts.binfmtDir ?? DEFAULT_BINFMT_DIR, platform);
  if (registered) return { emulator: registered };
  const dirs = (opts.pathEnv ?? process.env.PATH ?? '')
    .split(path.delimiter)
    .filter((d) => path.isAbsolute(d));
  for (const name of candidates) {
    for (const dir of dirs) {
      const file = path.join(dir, name);
      if (isExecutableFile(file)) return { emulator: { command: file, description: file } };
    }
  }
  return {
    reason: `${foreign}; no emulator found: no binfmt_misc ${binfmtEntry(platform)} registration, no ${candidates.join(' or ')} on PATH (install qemu-user-static or pass --emulator)`,
  };
}
