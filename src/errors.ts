/**
 * Every failure the tool expects is a KfError: one line of what went wrong, one line of what to
 * do next. The CLI prints exactly those two lines (no stack trace) and exits with `exitCode`.
 */
export class KfError extends Error {
  readonly what: string;
  readonly next: string;
  readonly exitCode: 1 | 2;

  constructor(what: string, next: string, exitCode: 1 | 2 = 1) {
    super(what);
    this.name = 'KfError';
    this.what = what;
    this.next = next;
    this.exitCode = exitCode;
  }
}

/** Bad flags or bad input values: exit code 2. */
export class UsageError extends KfError {
  constructor(what: string, next: string) {
    super(what, next, 2);
    this.name = 'UsageError';
  }
}

export function isKfError(err: unknown): err is KfError {
  return err instanceof KfError;
}

/** Message of any thrown value, for wrapping foreign errors with context. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

const NAMED_ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * Text from input (paths, names) as it may appear in a message: control characters escaped
 * (\n, \x1b, …) so that an error never echoes them raw to a terminal.
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => NAMED_ESCAPES[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
