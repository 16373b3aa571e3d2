import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const cli = path.resolve('dist/cli.js');

describe('cli wiring', () => {
  it('lists the contract commands in --help', () => {
    const help = execFileSync('node', [cli, '--help'], { encoding: 'utf8' });
    for (const name of [
      'plan',
      'patch',
      'build',
      'verify',
      'cache',
      'bundle',
      'ca',
      'kubelet-cert',
      'check',
      'renew',
      'rollout',
    ]) {
      expect(help).toContain(`kubeadm-forever ${name}`);
    }
  });

  it('refuses an unknown command with exit 2 and a two-line error', () => {
    const r = spawnSync('node', [cli, 'no-such-command'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^error: .+\nnext: .+\n$/);
    expect(r.stdout).toBe('');
  });
});

describe('yargs usage errors', () => {
  it('folds a multi-line choices error into one line', () => {
    const r = spawnSync('node', [cli, 'renew', '--restart', 'bogus', '--kubeadm', 'x'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^error: Invalid values: .*bogus.*\nnext: .+\n$/);
  });
});
