import { UsageError } from './errors.js';

/**
 * The one way a command line is built for a remote shell. OpenSSH sends the remote command as
 * one string that the login shell parses, so each argument is single-quoted: inside '…' a POSIX
 * shell (and bash, dash, zsh, ksh) gives every character its literal value, and a quote in the
 * argument closes, adds an escaped quote, and reopens ('\''). NUL cannot be carried in an
 * argument at all and is refused.
 */
export function shellQuote(arg: string): string {
  if (arg.includes('\0')) {
    throw new UsageError('a remote command argument contains a NUL byte', 'this is a bug: report it');
  }
  if (/^[A-Za-z0-9_\-./=:@,+%]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** A remote command from an argument array: every argument quoted, joined by spaces. */
export function shellCommand(argv: readonly string[]): string {
  if (argv.length === 0) throw new UsageError('an empty remote command', 'this is a bug: report it');
  return argv.map(shellQuote).join(' ');
}
