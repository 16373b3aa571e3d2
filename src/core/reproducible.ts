import { UsageError } from './errors.js';
import { goAtLeast } from './version.js';

/**
 * Reproducible builds (pure): where buildDate comes from, which Go a build really uses, and
 * what that Go can promise. Same source, patch values, image and platform must give the same
 * bytes, so nothing here reads the clock, the host or the user.
 */

export type BuildDateOrigin =
  'SOURCE_DATE_EPOCH' | 'git commit time' | 'newest tarball entry' | 'newest file in the directory';

export interface BuildDate {
  /** as hack/lib/version.sh writes it: 2021-01-13T13:20:00Z */
  buildDate: string;
  /** seconds since the epoch */
  epoch: number;
  origin: BuildDateOrigin;
}

/** `date -u +%Y-%m-%dT%H:%M:%SZ` of an epoch in seconds. */
export function formatBuildDate(epoch: number): string {
  return new Date(epoch * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** SOURCE_DATE_EPOCH as the reproducible-builds spec defines it: a non-negative integer of seconds. */
export function parseSourceDateEpoch(text: string): number {
  const t = text.trim();
  if (!/^\d{1,12}$/.test(t)) {
    throw new UsageError(
      `SOURCE_DATE_EPOCH '${text}' is not a whole number of seconds since 1970`,
      'set it to e.g. $(git log -1 --format=%ct), or unset it to take the date from the source',
    );
  }
  return Number(t);
}

/**
 * buildDate of a build: SOURCE_DATE_EPOCH when set (non-empty), else the source's own time
 * (commit time, newest tarball entry, newest file). Never the clock.
 */
export function selectBuildDate(opts: {
  sourceDateEpoch?: string;
  sourceTime: number;
  sourceOrigin: Exclude<BuildDateOrigin, 'SOURCE_DATE_EPOCH'>;
}): BuildDate {
  if (opts.sourceDateEpoch !== undefined && opts.sourceDateEpoch.trim() !== '') {
    const epoch = parseSourceDateEpoch(opts.sourceDateEpoch);
    return { buildDate: formatBuildDate(epoch), epoch, origin: 'SOURCE_DATE_EPOCH' };
  }
  const epoch = Math.floor(opts.sourceTime);
  return { buildDate: formatBuildDate(epoch), epoch, origin: opts.sourceOrigin };
}

/**
 * The Go version an image name announces in its tag (`golang:1.19.8-alpine`,
 * `local/golang:1.19.8`, `golang:1.22`), "" when it announces none (`golang:latest`, digests).
 */
export function goVersionOfImageName(image: string): string {
  const at = image.indexOf('@');
  const name = at >= 0 ? image.slice(0, at) : image;
  const slash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  if (colon <= slash) return '';
  const m = /^(?:go)?(\d+\.\d+(?:\.\d+)?)(?:$|[-_])/.exec(name.slice(colon + 1));
  return m ? `go${m[1]}` : '';
}

export interface Reproducibility {
  /** true when this Go can give the same bytes for the same inputs */
  reproducible: boolean;
  notes: string[];
}

/**
 * What a Go version can promise. Identical bytes come from the fixed container path and the
 * image's GOROOT (the only paths embedded), -buildid= and fixed version strings; they are
 * promised from Go 1.13 (what this tool checks against), not for older or unknown Go.
 */
export function reproducibilityOf(goVersion: string): Reproducibility {
  if (!goVersion) {
    return {
      reproducible: false,
      notes: ['the Go version of the image is unknown: identical bytes are not promised'],
    };
  }
  if (!goAtLeast(goVersion, 1, 13)) {
    return {
      reproducible: false,
      notes: [
        `${goVersion} is older than Go 1.13: the container path is fixed, but identical bytes are not promised`,
      ],
    };
  }
  return { reproducible: true, notes: [] };
}
