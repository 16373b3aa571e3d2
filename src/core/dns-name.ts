import { UsageError } from './errors.js';

/**
 * Names that reach a command line on this host or a node: Kubernetes node names, inventory host
 * names, SSH addresses and users. Each is checked before anything runs, so a name is always data:
 * it cannot start with '-' (an ssh option), hold a space, quote, '$', ';' or newline.
 */

const LABEL = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const SUBDOMAIN = new RegExp(`^${LABEL}(\\.${LABEL})*$`);

/** A DNS-1123 subdomain, as Kubernetes requires of node names: lowercase, at most 253 chars. */
export function isDns1123Subdomain(name: string): boolean {
  return (
    name.length > 0 &&
    name.length <= 253 &&
    SUBDOMAIN.test(name) &&
    name.split('.').every((l) => l.length <= 63)
  );
}

/** An IPv4 address in dotted-quad form, each part 0-255 without leading zeros. */
export function isIpv4(text: string): boolean {
  const parts = text.split('.');
  return parts.length === 4 && parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

/** An IPv6 address (hex groups, '::', an optional trailing dotted quad), without brackets or zone. */
export function isIpv6(text: string): boolean {
  if (!/^[0-9a-fA-F:.]+$/.test(text) || !text.includes(':') || text.length > 45) return false;
  const halves = text.split('::');
  if (halves.length > 2) return false;
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  const all = halves.flatMap(groups);
  const last = all.at(-1);
  const v4 = last !== undefined && last.includes('.');
  if (v4 && !isIpv4(last)) return false;
  const hex = v4 ? all.slice(0, -1) : all;
  if (!hex.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) return false;
  const width = hex.length + (v4 ? 2 : 0);
  return halves.length === 2 ? width <= 7 : width === 8;
}

/** What an SSH address may be: a DNS-1123 host name (any case) or an IPv4/IPv6 address. */
export function isHostAddress(text: string): boolean {
  return isDns1123Subdomain(text.toLowerCase()) || isIpv4(text) || isIpv6(text);
}

/** A login name as useradd accepts it by default (no '-' first, no shell characters). */
export function isUserName(text: string): boolean {
  return /^[a-z_][a-z0-9_-]{0,31}$/.test(text);
}

/** A name shown in an error: quoted and cut, since it may be hostile or huge. */
export function showName(name: string): string {
  return JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name);
}

/** A node name, checked; `where` names its source (e.g. "inventory hosts.ini, host cp1"). */
export function validateNodeName(name: string, where: string): string {
  if (!isDns1123Subdomain(name)) {
    throw new UsageError(
      `${where}: node name ${showName(name)} is not a DNS-1123 subdomain (lowercase letters, digits, '-' and '.')`,
      'use the node name `kubectl get nodes` shows; nothing was changed',
    );
  }
  return name;
}

/** An SSH address, checked. */
export function validateHostAddress(address: string, where: string): string {
  if (!isHostAddress(address)) {
    throw new UsageError(
      `${where}: address ${showName(address)} is neither a DNS host name nor an IP address`,
      'give the node a plain host name or IP address (ansible_host); nothing was changed',
    );
  }
  return address;
}

/** An SSH login name, checked. */
export function validateUserName(user: string, where: string): string {
  if (!isUserName(user)) {
    throw new UsageError(
      `${where}: user ${showName(user)} is not a plain login name`,
      'give a login name of lowercase letters, digits, "_" and "-" (ansible_user); nothing was changed',
    );
  }
  return user;
}

/** A TCP port, checked: an integer 1-65535. */
export function validatePort(port: unknown, where: string): number {
  const n =
    typeof port === 'number'
      ? port
      : typeof port === 'string' && /^[0-9]{1,5}$/.test(port)
        ? Number(port)
        : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    throw new UsageError(
      `${where}: port ${showName(String(port))} is not a TCP port`,
      'give a port number 1-65535 (ansible_port); nothing was changed',
    );
  }
  return n;
}
