import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/env.js';

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
