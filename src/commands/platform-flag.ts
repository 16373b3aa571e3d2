import type { Platform } from '../core/types.js';
import { parsePlatform } from '../cache/manifest.js';
import { UsageError } from '../errors.js';

/** `--platform linux/amd64,linux/arm64` (repeatable) -> platforms, without duplicates. */
export function parsePlatformList(values: string[]): Platform[] {
  const result: Platform[] = [];
  for (const item of values
    .flatMap((v) => v.split(','))
    .map((s) => s.trim())
    .filter(Boolean)) {
    const p = parsePlatform(item);
    if (!p)
      throw new UsageError(
        `--platform ${JSON.stringify(item)} is not os/arch`,
        'e.g. --platform linux/amd64,linux/arm64',
      );
    if (!result.some((r) => r.os === p.os && r.arch === p.arch)) result.push(p);
  }
  return result;
}
