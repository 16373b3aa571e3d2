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
