import { describe, expect, it } from 'vitest';
import { asKfError, escapeControl, KfError, systemErrorToKf } from '../../src/core/errors.js';

/** A Node system error as fs makes it (code, syscall, path). */
function sysErr(code: string, syscall: string, p?: string, dest?: string): NodeJS.ErrnoException {
  const e = new Error(`${code}: some text, ${syscall}${p ? ` '${p}'` : ''}`) as NodeJS.ErrnoException & {
    dest?: string;
  };
  e.code = code;
  e.syscall = syscall;
  if (p !== undefined) e.path = p;
  if (dest !== undefined) e.dest = dest;
  return e;
}

describe('escapeControl', () => {
  it('makes every control and invisible direction character visible', () => {
    expect(escapeControl('a\x1b[31mred\r\n\t\x00\x7f\x9b end')).toBe(
      'a\\x1b[31mred\\r\\n\\t\\x00\\x7f\\x9b end',
    );
    expect(escapeControl('evil\u202egnp.exe \u2028x')).toBe('evil\\u202egnp.exe \\u2028x');
    expect(escapeControl('plain ünïcode / "quotes" ok')).toBe('plain ünïcode / "quotes" ok');
  });
});

describe('system errors become the two-line error naming the path (never "unexpected failure")', () => {
  const cases: [string, string, RegExp, RegExp][] = [
    [
      'ENOSPC',
      'write',
      /no space left on the device \(ENOSPC\)/,
      /free space on the filesystem holding "\/d\/f"/,
    ],
    ['EACCES', 'open', /permission denied \(EACCES\)/, /check the permissions of "\/d\/f"/],
    [
      'EPERM',
      'rename',
      /operation not permitted \(EPERM\)/,
      /permissions, ownership and attributes \(chattr\) of "\/d\/f"/,
    ],
    ['EROFS', 'mkdir', /read-only file system \(EROFS\)/, /"\/d\/f" is on a read-only mount/],
    [
      'ENOTDIR',
      'mkdir',
      /a part of the path is not a directory \(ENOTDIR\)/,
      /a file stands where a directory of "\/d\/f" is expected/,
    ],
    ['EEXIST', 'open', /already exists \(EEXIST\)/, /"\/d\/f" is in the way/],
    ['EISDIR', 'open', /is a directory \(EISDIR\)/, /"\/d\/f" is a directory where a file is expected/],
    ['EDQUOT', 'write', /disk quota exceeded \(EDQUOT\)/, /within your quota/],
  ];
  for (const [code, syscall, what, next] of cases) {
    it(code, () => {
      const k = systemErrorToKf(sysErr(code, syscall, '/d/f'))!;
      expect(k).toBeInstanceOf(KfError);
      expect(k.what).toMatch(new RegExp(`^cannot ${syscall} "/d/f": ${what.source}$`));
      expect(k.next).toMatch(next);
      expect(k.exitCode).toBe(1);
    });
  }

  it('a rename names both paths; an unknown code keeps the message; non-system errors are not mapped', () => {
    expect(systemErrorToKf(sysErr('EXDEV', 'rename', '/a', '/b'))!.what).toBe(
      'cannot rename "/a" to "/b": cross-device rename (EXDEV)',
    );
    expect(systemErrorToKf(sysErr('ESTRANGE', 'read', '/x'))!.what).toBe(
      'cannot read "/x": some text (ESTRANGE)',
    );
    expect(systemErrorToKf(new Error('plain'))).toBeUndefined();
    const zlibError = Object.assign(new Error('incorrect header check'), { code: 'Z_DATA_ERROR', errno: -3 });
    expect(systemErrorToKf(zlibError)).toBeUndefined();
    const kf = new KfError('w', 'n');
    expect(asKfError(kf)).toBe(kf);
  });
});
