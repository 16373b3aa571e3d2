import { UsageError } from './errors.js';
import type { Validities, Validity } from './types.js';

/**
 * Certificate validities in whole hours. kubeadm counts a year as 365 days; Go's time.Duration
 * (int64 nanoseconds) overflows near 292 years, so 290y is the ceiling.
 */

export const HOURS_PER_DAY = 24;
export const HOURS_PER_YEAR = 365 * HOURS_PER_DAY;
export const HOUR_MS = 3_600_000;
/** a year as kubeadm counts it (365 days), in milliseconds */
export const YEAR_MS = HOURS_PER_YEAR * HOUR_MS;
export const MAX_VALIDITY_YEARS = 290;
export const MAX_VALIDITY_HOURS = MAX_VALIDITY_YEARS * HOURS_PER_YEAR;
export const DEFAULT_LEAF_VALIDITY = '199y';
export const DEFAULT_CA_VALIDITY = '200y';

const UNIT_HOURS: Record<string, number> = { y: HOURS_PER_YEAR, d: HOURS_PER_DAY, h: 1 };

/** Parses `199y`, `365d` or `8760h` (whole numbers only) into hours; `flag` names the source in errors. */
export function parseValidity(text: string, flag = '--validity'): Validity {
  const t = String(text).trim();
  const m = /^([-+]?\d+)([ydh])$/.exec(t);
  if (!m) {
    throw new UsageError(
      `invalid ${flag} ${JSON.stringify(String(text))}: expected a whole number with unit y (365 days), d or h, e.g. 199y`,
      `pass ${flag} like 199y, 73000d or 1743240h`,
    );
  }
  const n = Number(m[1]);
  const hours = n * UNIT_HOURS[m[2]!]!;
  if (hours <= 0) {
    throw new UsageError(
      `invalid ${flag} ${JSON.stringify(t)}: a validity must be more than zero`,
      `pass ${flag} like 199y`,
    );
  }
  if (!Number.isSafeInteger(hours) || hours > MAX_VALIDITY_HOURS) {
    throw new UsageError(
      `invalid ${flag} ${JSON.stringify(t)}: more than ${MAX_VALIDITY_YEARS}y (${MAX_VALIDITY_HOURS}h); Go's time.Duration overflows near 292 years`,
      `pass ${flag} of at most ${MAX_VALIDITY_YEARS}y`,
    );
  }
  return { hours, text: t.replace(/^\+/, '') };
}

/**
 * Leaf and CA validities from their flag values (defaults 199y / 200y). A leaf that outlives its
 * CA is refused: the chain would stop verifying when the CA expires.
 */
export function resolveValidityPair(
  leafText: string = DEFAULT_LEAF_VALIDITY,
  caText: string = DEFAULT_CA_VALIDITY,
): Validities {
  const leaf = parseValidity(leafText, '--validity');
  const ca = parseValidity(caText, '--ca-validity');
  if (leaf.hours > ca.hours) {
    throw new UsageError(
      `--validity ${leaf.text} (${leaf.hours}h) is longer than --ca-validity ${ca.text} (${ca.hours}h)`,
      'make the leaf validity at most the CA validity, e.g. --validity 199y --ca-validity 200y',
    );
  }
  return { leaf, ca };
}

/**
 * A Go constant expression of type time.Duration for `hours`, in the style kubeadm writes it:
 * `time.Hour * 24 * 365 * 199`, `time.Hour * 24 * 30` or `time.Hour * 5`. `timePkg` is the
 * name the file imports "time" as.
 */
export function goDurationExpr(hours: number, timePkg = 'time'): string {
  if (!Number.isSafeInteger(hours) || hours <= 0 || hours > MAX_VALIDITY_HOURS) {
    throw new RangeError(`validity out of range: ${hours}h`);
  }
  const base = `${timePkg}.Hour`;
  if (hours % HOURS_PER_YEAR === 0) {
    const years = hours / HOURS_PER_YEAR;
    return years === 1 ? `${base} * 24 * 365` : `${base} * 24 * 365 * ${years}`;
  }
  if (hours % HOURS_PER_DAY === 0) return `${base} * 24 * ${hours / HOURS_PER_DAY}`;
  return `${base} * ${hours}`;
}

/** Human text for a validity, e.g. `199y (1743240h)`. */
export function describeValidity(v: Validity): string {
  return `${v.text} (${v.hours}h)`;
}

/** Go's own duration text for whole hours, as kubeadm prints it in config: `1743240h0m0s`. */
export function goDurationString(hours: number): string {
  return `${hours}h0m0s`;
}
