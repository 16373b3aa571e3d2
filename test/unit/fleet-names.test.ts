import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  isDns1123Subdomain,
  isHostAddress,
  isIpv4,
  isIpv6,
  isUserName,
  validateHostAddress,
  validateNodeName,
  validatePort,
} from '../../src/core/dns-name.js';
import { shellCommand, shellQuote } from '../../src/core/shell-quote.js';
import { UsageError } from '../../src/core/errors.js';

// Names reach ssh's command line and the remote shell: they are checked before anything runs,
// and the remote command is built by one quoting function, proven here through a real sh.

const HOSTILE = [
  '',
  ' ',
  'a b',
  "it's",
  "''",
  '"double"',
  '$(touch /tmp/kf-pwned)',
  '`id`',
  '; rm -rf /',
  'a\nb',
  '\n',
  'tab\there',
  '\\',
  'back\\slash\\',
  '$HOME',
  '${IFS}',
  '*',
  '?',
  '~root',
  '-n',
  '--help',
  '!event',
  '#comment',
  '& background',
  '| pipe',
  '> redirect',
  '< in',
  '(sub)',
  '{brace,x}',
  'é ünïcode ✓',
  '\u0001\u007f',
  '\'$(x)\'"`y`"',
];

describe('shellQuote', () => {
  it('round-trips every hostile argument through a real sh -c unchanged', () => {
    // printf '%s\0' prints each argument as the shell parsed it, NUL-separated
    const command = shellCommand(['printf', '%s\\0', ...HOSTILE]);
    const r = spawnSync('sh', ['-c', command], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(HOSTILE);
  });

  it('round-trips through bash too (the usual login shell)', () => {
    const r = spawnSync('bash', ['-c', shellCommand(['printf', '%s\\0', ...HOSTILE])], { encoding: 'utf8' });
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(HOSTILE);
  });

  it('leaves plain words as they are and quotes the rest', () => {
    expect(shellQuote('/etc/kubernetes/pki')).toBe('/etc/kubernetes/pki');
    expect(shellQuote('--pki-dir=/x')).toBe('--pki-dir=/x');
    expect(shellQuote('')).toBe("''");
    expect(shellQuote("a'b")).toBe(`'a'\\''b'`);
    expect(shellQuote('~')).toBe("'~'");
  });

  it('refuses NUL, which no argument can carry', () => {
    expect(() => shellQuote('a\0b')).toThrow(UsageError);
    expect(() => shellCommand([])).toThrow(UsageError);
  });
});

describe('DNS-1123 and addresses', () => {
  it('accepts node names Kubernetes accepts', () => {
    for (const n of ['cp1', 'worker-01', 'node.example.com', '10.0.0.1', 'a', 'a'.repeat(63)])
      expect(isDns1123Subdomain(n)).toBe(true);
  });

  it('refuses every hostile or malformed name', () => {
    for (const n of [
      ...HOSTILE.filter((h) => h !== '?' && h !== '*'),
      '?',
      '*',
      'UPPER',
      '-lead',
      'trail-',
      'a..b',
      '.a',
      'a.',
      'a_b',
      'a'.repeat(64),
      `${'a'.repeat(63)}.`.repeat(4) + 'a',
      'a;b',
      'a$(b)',
    ])
      expect(isDns1123Subdomain(n), JSON.stringify(n)).toBe(false);
  });

  it('knows IPv4 and IPv6 literals', () => {
    expect(isIpv4('192.168.1.10')).toBe(true);
    expect(isIpv4('256.1.1.1')).toBe(false);
    expect(isIpv4('01.1.1.1')).toBe(false);
    expect(isIpv6('::1')).toBe(true);
    expect(isIpv6('fd00::10:1')).toBe(true);
    expect(isIpv6('2001:db8:0:0:0:0:0:1')).toBe(true);
    expect(isIpv6('::ffff:10.0.0.1')).toBe(true);
    expect(isIpv6('1::2::3')).toBe(false);
    expect(isIpv6('fe80::1%eth0')).toBe(false);
    expect(isHostAddress('Node1.Example.com')).toBe(true);
    expect(isHostAddress('-oProxyCommand=x')).toBe(false);
    expect(isHostAddress('a b')).toBe(false);
  });

  it('accepts only plain login names', () => {
    expect(isUserName('root')).toBe(true);
    expect(isUserName('ubuntu_2-x')).toBe(true);
    for (const u of ['-l', 'a b', 'Root', '$(id)', 'a;b', 'x'.repeat(33), ''])
      expect(isUserName(u)).toBe(false);
  });

  it('names the source and the hostile name, escaped, in a usage error', () => {
    expect(() => validateNodeName('a\nb', 'inventory hosts.ini, host x')).toThrow(
      /inventory hosts.ini, host x: node name "a\\nb" is not a DNS-1123 subdomain/,
    );
    expect(() => validateHostAddress('$(id)', 'h')).toThrow(/h: address "\$\(id\)"/);
    expect(validatePort('2222', 'h')).toBe(2222);
    expect(validatePort(22, 'h')).toBe(22);
    for (const p of ['0', '65536', '22 ', 'x', 1.5, -1])
      expect(() => validatePort(p, 'h')).toThrow(UsageError);
  });
});
