import { DEFAULT_GO_CACHE_VOLUME } from '../core/go-invocation.js';
import { UsageError } from '../core/errors.js';

/**
 * The definition of --go-cache-volume (`build`, `audit`), for `y.options(…)` in a command's
 * chain; `describe` words it for the command. Its value is checked by assertVolumeName.
 */
export function goCacheVolumeOptions(describe = 'named Docker volume for the Go build cache') {
  return { 'go-cache-volume': { type: 'string', default: DEFAULT_GO_CACHE_VOLUME, describe } } as const;
}

/** --go-cache-volume must be a Docker volume name. */
export function assertVolumeName(name: string): void {
  if (!name || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) {
    throw new UsageError(
      `--go-cache-volume '${name}' is not a Docker volume name`,
      'use letters, digits, "_", "." and "-"',
    );
  }
}

/**
 * The definition of --emulator (`build`, `verify`): what runs a foreign platform's binary in
 * verify. Absent: a binfmt_misc registration or qemu-<arch>-static on PATH, when there is one.
 */
export function emulatorOptions() {
  return {
    emulator: {
      type: 'string',
      describe:
        'user-mode emulator that runs a foreign platform\'s binary in verify (e.g. /usr/bin/qemu-aarch64-static), or "none"; default: binfmt_misc or qemu-<arch>-static on PATH',
    },
  } as const;
}
