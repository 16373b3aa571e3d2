import { UsageError } from '../errors.js';
import type { Validity } from '../core/types.js';

// TEMPORARY until src/core/validity.ts (branch core) lands on main: same signature, then deleted.
export function parseValidity(text: string, flag = '--validity'): Validity {
  const m = /^(\d+)([ydh])$/.exec(String(text).trim());
  const hours = m ? Number(m[1]) * { y: 8760, d: 24, h: 1 }[m[2] as 'y' | 'd' | 'h'] : NaN;
  if (!m || !(hours > 0) || hours > 290 * 8760) {
    throw new UsageError(`invalid ${flag} ${JSON.stringify(text)}`, `pass ${flag} like 199y, 73000d or 1743240h (at most 290y)`);
  }
  return { hours, text: String(text).trim() };
}
