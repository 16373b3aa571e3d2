import { describe, expect, it } from 'vitest';
import { asKfError, escapeControl, KfError, systemErrorToKf } from '../../src/core/errors.js';
import { runCli } from '../helpers/env.js';

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

describe('the CLI error contract: two stderr lines, and with --json one document on stdout', () => {
  const twoLines = /^error: [^\n]+\nnext: [^\n]+\n$/;

  it('a command failure with --json', () => {
    const r = runCli(['plan', '--kubernetes-version', 'v1.20.2', '--commit', '', '--json']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(twoLines);
    expect(JSON.parse(r.stdout)).toEqual({
      error: '--commit is empty',
      next: 'pass --commit SHA (the 40-hex git commit), or leave the flag out',
    });
  });

  it('a yargs usage error with --json (and through KUBEADM_FOREVER_JSON)', () => {
    for (const r of [
      runCli(['plan', '--no-such-flag', '--json']),
      runCli(['plan', '--no-such-flag'], { env: { KUBEADM_FOREVER_JSON: 'true' } }),
    ]) {
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(twoLines);
      expect(JSON.parse(r.stdout)).toMatchObject({
        error: expect.stringMatching(/Unknown argument/),
        next: expect.stringMatching(/--help/),
      });
    }
    const plain = runCli(['plan', '--no-such-flag']);
    expect(plain.stdout).toBe('');
  });

  it('control characters from input are escaped in stderr and in the JSON document', () => {
    const evil = 'kubeadm version: &version.Info{Major:"1\x1b[2J\x1b]0;owned\x07", Minor:"2\r"}';
    const r = runCli(['plan', '--version-file', '-', '--json'], { input: evil });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(twoLines);
    // eslint-disable-next-line no-control-regex -- looking for raw control characters
    expect(r.stderr + r.stdout).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/);
    const name = '/nonexistent/bundle\x1b[31m\r.tar.gz';
    const b = runCli(['bundle', 'verify', name, '--json']);
    expect(b.stderr).toBe(
      `error: bundle /nonexistent/bundle\\x1b[31m\\r.tar.gz: no such file\nnext: give the .tar.gz written by 'kubeadm-forever bundle export'\n`,
    );
    expect(JSON.parse(b.stdout).error).toBe('bundle /nonexistent/bundle\\x1b[31m\\r.tar.gz: no such file');
  });

  it('--config pointing nowhere, or empty, is refused naming the flag', () => {
    const r = runCli([
      'renew',
      '--kubeadm',
      '/nonexistent/kubeadm',
      '--config',
      '/nonexistent/kubeadm.yaml',
      '--json',
    ]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^error: --config \/nonexistent\/kubeadm.yaml: no such file\nnext: .+\n$/);
    expect(JSON.parse(r.stdout).error).toBe('--config /nonexistent/kubeadm.yaml: no such file');
    expect(runCli(['renew', '--kubeadm', '/nonexistent/kubeadm', '--config', '']).stderr).toMatch(
      /^error: --config is empty\n/,
    );
    expect(runCli(['renew', '--kubeadm', '/nonexistent/kubeadm', '--config', '/tmp']).stderr).toMatch(
      /^error: --config \/tmp is not a regular file\n/,
    );
  });
});
