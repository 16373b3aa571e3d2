import { KfError } from './errors.js';

/**
 * The one rule about certificate lifetimes every command follows (ca init --force, ca extend,
 * kubelet-cert, renew, check): no certificate gets an earlier NotAfter than it has now, and no
 * certificate outlives the CA that signed it, unless the user passes ALLOW_SHORTER_FLAG.
 * Pure: dates in, reasons out.
 */

export const ALLOW_SHORTER_FLAG = '--allow-shorter';
export const ALLOW_SHORTER_DESCRIPTION =
  'allow a certificate to end earlier than it does now, or after the CA that signs it (refused by default)';

export interface Dated {
  /** what it is, e.g. the file */
  name: string;
  notAfter: Date;
}

export interface LifetimeChange {
  /** the certificate being written */
  name: string;
  notAfter: Date;
  /** what it replaces, if anything */
  current?: Dated;
  /** the CA that signs it */
  issuer?: Dated;
  /** certificates it signs (when it is a CA) */
  issued?: Dated[];
}

const iso = (d: Date) => d.toISOString().replace(/\.000Z$/, 'Z');

/** Whether a certificate ending `leaf` outlives its issuer ending `issuer` (second precision, as certificates are). */
export function outlivesIssuer(leaf: Date, issuer: Date): boolean {
  return Math.floor(leaf.getTime() / 1000) > Math.floor(issuer.getTime() / 1000);
}

/** Whether NotAfter `next` is earlier than `current`. */
export function endsEarlier(next: Date, current: Date): boolean {
  return Math.floor(next.getTime() / 1000) < Math.floor(current.getTime() / 1000);
}

/** Every way `change` breaks the rule, one sentence each naming both dates. */
export function lifetimeViolations(change: LifetimeChange): string[] {
  const out: string[] = [];
  if (change.current && endsEarlier(change.notAfter, change.current.notAfter)) {
    out.push(
      `${change.name} would end ${iso(change.notAfter)}, earlier than ${change.current.name} does now (${iso(change.current.notAfter)})`,
    );
  }
  if (change.issuer && outlivesIssuer(change.notAfter, change.issuer.notAfter)) {
    out.push(
      `${change.name} would end ${iso(change.notAfter)}, after its CA ${change.issuer.name} (${iso(change.issuer.notAfter)})`,
    );
  }
  for (const leaf of change.issued ?? []) {
    if (outlivesIssuer(leaf.notAfter, change.notAfter)) {
      out.push(
        `${change.name} would end ${iso(change.notAfter)}, before ${leaf.name} that it signed (${iso(leaf.notAfter)})`,
      );
    }
  }
  return out;
}

/** The check side of the rule: a leaf that already outlives its issuer. */
export function outlivesIssuerProblem(leaf: Dated, issuer: Dated): string | undefined {
  return outlivesIssuer(leaf.notAfter, issuer.notAfter)
    ? `ends ${iso(leaf.notAfter)}, after its CA ${issuer.name} (${iso(issuer.notAfter)})`
    : undefined;
}

/**
 * Throws (nothing written yet) when there are violations and the flag was not given; returns
 * them (as warnings) when it was.
 */
export function enforceLifetimes(violations: string[], allowShorter: boolean, advice: string): string[] {
  if (violations.length === 0 || allowShorter) return violations;
  const more =
    violations.length > 1 ? ` (and ${violations.length - 1} more: ${violations.slice(1).join('; ')})` : '';
  throw new KfError(
    `refused: ${violations[0]}${more}`,
    `${advice}, or pass ${ALLOW_SHORTER_FLAG} if this is what you want; nothing was changed`,
  );
}
