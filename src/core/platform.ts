import type { Platform } from './types.js';

/**
 * A build platform (GOOS/GOARCH) as text, "linux/amd64", and as a directory name, "linux-amd64"
 * (cache entries and bundles). Each part is lowercase letters and digits starting with a letter
 * (amd64, ppc64le, s390x) and at most 16 long: it becomes a path component, so nothing that could
 * escape or collide is accepted, and a platform accepted from input is one the cache can read back.
 */
const PLATFORM_PART = /^[a-z][a-z0-9]{0,15}$/;

function platformOfParts(parts: string[]): Platform | null {
  if (parts.length !== 2) return null;
  const [os, arch] = parts as [string, string];
  return PLATFORM_PART.test(os) && PLATFORM_PART.test(arch) ? { os, arch } : null;
}

/** "linux/amd64" -> {os, arch}; null when malformed (core/version.ts parsePlatform throws instead). */
export function platformFromText(text: string): Platform | null {
  return platformOfParts(text.split('/'));
}

/** `linux/amd64` from a Platform. */
export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.arch}`;
}

/** The directory name of a platform inside a cache key: "linux-amd64". */
export function platformDir(p: Platform): string {
  return `${p.os}-${p.arch}`;
}

/** "linux-amd64" -> {os, arch}; null when malformed. */
export function parsePlatformDir(name: string): Platform | null {
  return platformOfParts(name.split('-'));
}
