import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/env.js';

// What only the argument parser decides, seen at the process boundary: the value of a flag that
// starts with "-", a flag given twice, a flag without its value, a required flag left out.

describe('one definition of the validity flags', () => {
  // Every --validity/--ca-validity comes from validity-options.ts: the next word is the value
  // even when it starts with "-" (renew, ca and kubelet-cert used to take "-1d" for flags and
  // say "Unknown arguments: 1, d").
  const negative: Array<[string, string[]]> = [
    ['plan', ['plan', '--kubernetes-version', 'v1.20.2', '--validity', '-1d']],
    ['build', ['build', '--kubernetes-version', 'v1.20.2', '--ca-validity', '-1d']],
    ['verify', ['verify', '/nonexistent/kubeadm', '--validity', '-1d']],
    ['patch', ['patch', '/nonexistent/tree', '--validity', '-1d']],
    ['renew', ['renew', '--kubeadm', '/nonexistent/kubeadm', '--validity', '-1d']],
    ['renew --ca-validity', ['renew', '--kubeadm', '/nonexistent/kubeadm', '--ca-validity', '-1d']],
    ['ca init', ['ca', 'init', '--out', '/nonexistent/pki', '--validity', '-1d']],
    ['ca extend', ['ca', 'extend', '--pki-dir', '/nonexistent/pki', '--validity', '-1d']],
    ['kubelet-cert', ['kubelet-cert', '--node', 'n', '--pki-dir', '/nonexistent/pki', '--validity', '-1d']],
  ];
  it.each(negative)('%s refuses --validity -1d as a validity, exit 2', (_name, args) => {
    const r = runCli(args);
    expect(r.stderr).toMatch(
      /^error: invalid --(ca-)?validity "-1d": a validity must be more than zero\nnext: /,
    );
    expect(r.status).toBe(2);
  });

  it('renew refuses a validity given twice as plan does', () => {
    for (const command of [
      ['plan', '--kubernetes-version', 'v1.20.2'],
      ['renew', '--kubeadm', '/nonexistent/kubeadm'],
    ]) {
      const r = runCli([...command, '--validity', '1y', '--validity', '2y']);
      expect(r.stderr).toMatch(/^error: --validity was given 2 times\nnext: pass --validity once\n$/);
      expect(r.status).toBe(2);
    }
  });
});

describe('parse errors keep the two-line contract and exit 2', () => {
  it('a flag without its value', () => {
    const r = runCli(['plan', '--kubernetes-version', 'v1.24.15', '--validity'], { input: '' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^error: Not enough arguments following: validity\nnext: [^\n]+\n$/);
    expect(r.stdout).toBe('');
  });

  it('audit without --manifest', () => {
    const r = runCli(['audit', '/nonexistent/kubeadm']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^error: .*manifest.*\nnext: [^\n]+\n$/);
  });
});
