import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/env.js';

/**
 * The environment names two things only: KUBEADM_FOREVER_CACHE_DIR and KUBEADM_FOREVER_JSON.
 * No flag comes from it — yargs' `.env()` used to turn any KUBEADM_FOREVER_* variable into a
 * flag, so an exported KUBEADM_FOREVER_FORCE overwrote CAs without anyone typing --force.
 */
describe('flags never come from the environment', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-env-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('KUBEADM_FOREVER_FORCE does not let ca init overwrite a CA; the CA stays as it was', () => {
    const out = path.join(dir, 'pki');
    expect(runCli(['ca', 'init', '--out', out]).status).toBe(0);
    const before = fs.readFileSync(path.join(out, 'ca.crt'));
    const r = runCli(['ca', 'init', '--out', out], {
      env: { KUBEADM_FOREVER_FORCE: 'true', KUBEADM_FOREVER_ALLOW_SHORTER: 'true' },
    });
    expect(r.status, r.stderr).not.toBe(0);
    expect(r.stderr).toMatch(/^error: .*\nnext: .*--force/m);
    expect(fs.readFileSync(path.join(out, 'ca.crt'))).toEqual(before);
  });

  it('KUBEADM_FOREVER_VALIDITY does not change a plan; an unknown KUBEADM_FOREVER_* breaks nothing', () => {
    const args = [
      'plan',
      '--kubernetes-version',
      'v1.20.2',
      '--commit',
      'faecb196815e248d3ecfb03c680a4507229c2a56',
    ];
    const plain = runCli([...args, '--json']);
    expect(plain.status, plain.stderr).toBe(0);
    const r = runCli([...args, '--json'], {
      env: { KUBEADM_FOREVER_VALIDITY: '1d', KUBEADM_FOREVER_NO_SUCH: '1' },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(JSON.parse(plain.stdout));
  });

  it('KUBEADM_FOREVER_JSON=1 is --json for a command that succeeds too', () => {
    const r = runCli(
      ['plan', '--kubernetes-version', 'v1.20.2', '--commit', 'faecb196815e248d3ecfb03c680a4507229c2a56'],
      {
        env: { KUBEADM_FOREVER_JSON: '1' },
      },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ gitVersion: 'v1.20.2' });
  });
});
