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

/**
 * Control characters (C0, DEL, C1) and the invisible line and direction marks that could forge
 * or hide terminal output, written as visible escapes. Errors echo input (file names, member
 * names, version text): this runs once where every error is rendered, so none prints raw.
 */
export function escapeControl(text: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const code = c.charCodeAt(0);
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, '0')}`
      : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** A Node system error (fs, child_process): one with an errno code and the call that failed. */
export function isSystemError(err: unknown): err is NodeJS.ErrnoException {
  if (!(err instanceof Error)) return false;
  const e = err as NodeJS.ErrnoException;
  return typeof e.code === 'string' && /^E[A-Z0-9]+$/.test(e.code) && typeof e.syscall === 'string';
}

const OS_ERRORS: Record<string, { what: string; next: (p: string) => string }> = {
  ENOSPC: {
    what: 'no space left on the device',
    next: (p) =>
      `free space on the filesystem holding ${p} (or choose another location), then run the command again`,
  },
  EDQUOT: {
    what: 'disk quota exceeded',
    next: (p) => `free space within your quota on the filesystem holding ${p}, then run the command again`,
  },
  EACCES: {
    what: 'permission denied',
    next: (p) => `check the permissions of ${p} and its directories, or run as a user allowed to use it`,
  },
  EPERM: {
    what: 'operation not permitted',
    next: (p) =>
      `check the permissions, ownership and attributes (chattr) of ${p}, or run as a user allowed to change it`,
  },
  EROFS: {
    what: 'read-only file system',
    next: (p) =>
      `${p} is on a read-only mount: remount it read-write or choose a location on a writable filesystem`,
  },
  ENOTDIR: {
    what: 'a part of the path is not a directory',
    next: (p) => `a file stands where a directory of ${p} is expected: move it away or choose another path`,
  },
  EISDIR: {
    what: 'is a directory',
    next: (p) => `${p} is a directory where a file is expected: give a file path`,
  },
  EEXIST: {
    what: 'already exists',
    next: (p) =>
      `${p} is in the way: move it away (or remove it if it is a leftover), then run the command again`,
  },
  ENOTEMPTY: {
    what: 'directory not empty',
    next: (p) => `${p} is in the way: move it away, then run the command again`,
  },
  ENOENT: { what: 'no such file or directory', next: (p) => `check that ${p} and its directories exist` },
  ELOOP: {
    what: 'too many levels of symbolic links',
    next: (p) => `${p} is or passes through a symbolic link loop: fix or remove the link`,
  },
  EMFILE: {
    what: 'too many open files',
    next: () => 'raise the open-file limit (ulimit -n) and run the command again',
  },
  ENFILE: {
    what: 'too many open files in the system',
    next: () => 'close other programs or raise the system file limit, then run the command again',
  },
  EXDEV: {
    what: 'cross-device rename',
    next: (p) => `keep ${p} on the same filesystem as its target directory`,
  },
  EIO: {
    what: 'input/output error',
    next: (p) => `the device holding ${p} reported an I/O error: check it (dmesg) before retrying`,
  },
  EBUSY: {
    what: 'resource busy',
    next: (p) => `${p} is in use (a mount point or an open device): free it, then run the command again`,
  },
};

/**
 * The one mapping from a Node system error to the two-line error: what failed on which path, in
 * words, and what to do about it. Undefined for errors that are not system errors.
 */
export function systemErrorToKf(err: unknown): KfError | undefined {
  if (!isSystemError(err)) return undefined;
  const code = err.code!;
  const known = OS_ERRORS[code];
  const p = err.path ?? (err as { dest?: string }).dest;
  const target = p === undefined ? '' : ` ${JSON.stringify(p)}`;
  const dest = (err as { dest?: string }).dest;
  const to = dest !== undefined && dest !== p ? ` to ${JSON.stringify(dest)}` : '';
  const what = `cannot ${err.syscall}${target}${to}: ${known?.what ?? err.message.replace(/^[A-Z0-9]+: /, '').split(',')[0]} (${code})`;
  const where = p === undefined ? 'the files this command uses' : JSON.stringify(p);
  const next = known ? known.next(where) : `check ${where} and run the command again`;
  return new KfError(what, next, 1);
}

/**
 * A system error from a call that does not say its path (FileHandle writes, streams) gets the
 * path it was working on, so the error names it. Returns the same error, for `throw`.
 */
export function withPath(err: unknown, p: string | undefined): unknown {
  if (p !== undefined && isSystemError(err) && err.path === undefined) err.path = p;
  return err;
}

/** Any thrown value as the two-line error: a KfError as it is, a system error mapped, else undefined. */
export function asKfError(err: unknown): KfError | undefined {
  if (isKfError(err)) return err;
  return systemErrorToKf(err);
}
