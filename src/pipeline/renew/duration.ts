import { UsageError } from '../../errors.js';

/**
 * TEMPORARY until src/core/validity.ts lands on main: "199y" | "365d" | "8760h" in hours
 * (a year = 365 days, as kubeadm counts), positive and at most 290 years (Go's Duration).
 */
export function parseHours(text: string, flag: string): { hours: number; text: string } {
  const m = /^(\d+)(y|d|h)$/.exec(text.trim());
  const hours = m ? Number(m[1]) * (m[2] === 'y' ? 8760 : m[2] === 'd' ? 24 : 1) : NaN;
  if (!m || !(hours > 0) || hours > 290 * 8760) {
    throw new UsageError(`${flag} ${JSON.stringify(text)} is not a duration between 1h and 290y`, `write it like 199y, 72000d or 1752000h`);
  }
  return { hours, text: text.trim() };
}
