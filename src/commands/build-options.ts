import type { Argv } from 'yargs';
import { DEFAULT_GO_CACHE_VOLUME } from '../core/go-invocation.js';
import { UsageError } from '../core/errors.js';

/**
 * Adds --go-cache-volume (`build`, `audit`); `describe` words it for the command. Its value is
 * checked by assertVolumeName.
 */
export function withGoCacheVolumeOption<T>(
  y: Argv<T>,
  describe = 'named Docker volume for the Go build cache',
) {
  return y.option('go-cache-volume', { type: 'string', default: DEFAULT_GO_CACHE_VOLUME, describe });
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
