import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot, skipDockerTests } from '../helpers/env.js';
import { seaExecutable } from '../helpers/sea.js';
import { tempDirs } from './pki-support.js';

// docker/build.sh: the tool's own image FROM scratch (the executable and the libraries it links),
// built offline on the engine, runs --version and check.

const { tmp, cleanup } = tempDirs();
const tag = `kubeadm-forever-test:${process.pid}`;
afterAll(() => {
  spawnSync('docker', ['image', 'rm', '-f', tag]);
  cleanup();
});

describe.skipIf(skipDockerTests)('the FROM-scratch image', () => {
  it('builds from local files only and runs --version and check of a mounted PKI', () => {
    seaExecutable('amd64');
    const built = execFileSync('bash', [path.join(repoRoot, 'docker/build.sh'), tag], { encoding: 'utf8' });
    expect(built.trim()).toBe(tag);
    // nothing but the executable, its libraries and two empty folders
    const layers = execFileSync('docker', ['image', 'inspect', '--format', '{{len .RootFS.Layers}}', tag], {
      encoding: 'utf8',
    });
    expect(layers.trim()).toBe('1');

    const version = (
      JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }
    ).version;
    const v = spawnSync('docker', ['run', '--rm', '--network', 'none', tag, '--version'], {
      encoding: 'utf8',
    });
    expect(v.stderr).toBe('');
    expect(v.status).toBe(0);
    expect(v.stdout).toBe(`${version}\n`);

    const dir = tmp('sea-image');
    execFileSync('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      path.join(dir, 'ca.key'),
      '-out',
      path.join(dir, 'ca.crt'),
      '-days',
      '3650',
      '-subj',
      '/CN=kubernetes',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
    ]);
    const c = spawnSync(
      'docker',
      [
        'run',
        '--rm',
        '--network',
        'none',
        '-v',
        `${dir}:/pki:ro`,
        tag,
        'check',
        '--pki-dir',
        '/pki',
        '--kubeconfig-dir',
        '/pki',
        '--kubelet-dir',
        '/pki',
        '--apiserver',
        'none',
        '--json',
      ],
      { encoding: 'utf8' },
    );
    expect(c.status).toBe(0);
    const doc = JSON.parse(c.stdout) as { ok: boolean; rows: { file: string; keyMatches: boolean }[] };
    expect(doc.ok).toBe(true);
    expect(doc.rows.map((r) => [r.file, r.keyMatches])).toEqual([['/pki/ca.crt', true]]);
  }, 600_000);
});
