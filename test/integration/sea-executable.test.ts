import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BinaryCache } from '../../src/carry/cache/store.js';
import { keyFor, manifestInput, writeFakeElf } from '../helpers/cache-fixtures.js';
import { repoRoot, runCli } from '../helpers/env.js';
import { distBinDir, minimalRoot, runArm64, runInRoot, seaExecutable } from '../helpers/sea.js';
import {
  opensslNotAfter,
  opensslPubkey,
  opensslText,
  opensslVerify,
  tempDirs,
  yearsFromNow,
} from './pki-support.js';

// The tool as one file (npm run dist) stands alone: the amd64 executable runs in a root that has
// nothing but it, the libraries ldd lists and /tmp (no Node, no shell), with an empty environment;
// what it writes there is checked from outside with openssl. The arm64 one runs under qemu.

const { tmp, cleanup } = tempDirs();
afterAll(cleanup);

const version = (
  JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }
).version;

describe('the amd64 executable in a root with no Node', () => {
  let root: string;
  beforeAll(() => {
    root = tmp('sea-root');
    minimalRoot(seaExecutable('amd64'), root);
  });

  it('holds no node and no shell', () => {
    const files = execFileSync('find', [root, '-type', 'f'], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean);
    expect(files.filter((f) => /\/(node|sh|bash)$/.test(f))).toEqual([]);
    expect(files.some((f) => f.endsWith('/kubeadm-forever'))).toBe(true);
  });

  it('--version prints the package version', () => {
    const r = runInRoot(root, ['--version']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${version}\n`);
  }, 120_000);

  it('an unknown command is a two-line usage error', () => {
    const r = runInRoot(root, ['plann']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^error: .*\nnext: .*\n$/);
  }, 120_000);

  it('ca init, check, kubelet-cert and ca extend on a PKI, checked with openssl', () => {
    const pki = path.join(root, 'tmp/pki');
    const init = runInRoot(root, ['ca', 'init', '--out', '/tmp/pki']);
    expect(init.stderr).not.toMatch(/error/);
    expect(init.status).toBe(0);
    for (const ca of ['ca.crt', 'etcd/ca.crt', 'front-proxy-ca.crt']) {
      expect(yearsFromNow(opensslNotAfter(path.join(pki, ca)))).toBeGreaterThanOrEqual(199.9);
      expect(opensslVerify(path.join(pki, ca), [path.join(pki, ca)]).ok).toBe(true);
    }
    expect(fs.statSync(path.join(pki, 'ca.key')).mode & 0o777).toBe(0o600);

    const check = runInRoot(root, [
      'check',
      '--pki-dir',
      '/tmp/pki',
      '--kubeconfig-dir',
      '/tmp',
      '--kubelet-dir',
      '/tmp/none',
      '--apiserver',
      'none',
      '--json',
    ]);
    expect(check.status).toBe(0);
    const doc = JSON.parse(check.stdout) as { ok: boolean; rows: { file: string; keyMatches: boolean }[] };
    expect(doc.ok).toBe(true);
    expect(doc.rows.map((r) => r.file).sort()).toEqual(
      ['/tmp/pki/ca.crt', '/tmp/pki/etcd/ca.crt', '/tmp/pki/front-proxy-ca.crt'].sort(),
    );

    const kubelet = runInRoot(root, [
      'kubelet-cert',
      '--node',
      'n1',
      '--pki-dir',
      '/tmp/pki',
      '--out',
      '/tmp/kl',
    ]);
    expect(kubelet.status).toBe(0);
    // the link names its target as the executable saw it, inside the root
    const link = fs.readlinkSync(path.join(root, 'tmp/kl/kubelet-client-current.pem'));
    expect(link).toMatch(/^\/tmp\/kl\/kubelet-client-[\d-]+\.pem$/);
    const leaf = path.join(root, link);
    expect(opensslText(leaf)).toContain('subject=CN=system:node:n1,O=system:nodes\n');
    expect(opensslVerify(path.join(pki, 'ca.crt'), [leaf], ['-purpose', 'sslclient']).ok).toBe(true);

    // a one-year CA made by openssl, extended with its own key
    const short = path.join(root, 'tmp/short');
    fs.mkdirSync(short);
    execFileSync('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      path.join(short, 'ca.key'),
      '-out',
      path.join(short, 'ca.crt'),
      '-days',
      '365',
      '-subj',
      '/CN=kubernetes',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
    ]);
    const pubBefore = opensslPubkey(path.join(short, 'ca.crt'));
    expect(yearsFromNow(opensslNotAfter(path.join(short, 'ca.crt')))).toBeLessThan(1.1);
    const extend = runInRoot(root, [
      'ca',
      'extend',
      '--pki-dir',
      '/tmp/short',
      '--kubeconfig-dir',
      '/tmp/short',
    ]);
    expect(extend.stderr).not.toMatch(/^error/m);
    expect(extend.status).toBe(0);
    expect(yearsFromNow(opensslNotAfter(path.join(short, 'ca.crt')))).toBeGreaterThanOrEqual(199.9);
    expect(opensslPubkey(path.join(short, 'ca.crt'))).toBe(pubBefore);
    expect(opensslVerify(path.join(short, 'ca.crt'), [path.join(short, 'ca.crt')]).ok).toBe(true);
  }, 300_000);
});

describe('the arm64 executable under qemu-user-static', () => {
  it('--version and check of a PKI', () => {
    const exe = seaExecutable('arm64');
    const v = runArm64(exe, ['--version']);
    expect(v.stderr).toBe('');
    expect(v.status).toBe(0);
    expect(v.stdout).toBe(`${version}\n`);

    const dir = tmp('sea-arm64');
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
    const check = runArm64(exe, [
      'check',
      '--pki-dir',
      dir,
      '--kubeconfig-dir',
      dir,
      '--kubelet-dir',
      path.join(dir, 'none'),
      '--apiserver',
      'none',
      '--json',
    ]);
    expect(check.status).toBe(0);
    const doc = JSON.parse(check.stdout) as { ok: boolean; rows: { file: string; keyMatches: boolean }[] };
    expect(doc.rows.map((r) => [r.file, r.keyMatches])).toEqual([[path.join(dir, 'ca.crt'), true]]);
    // with --min-years 20 the ten-year CA fails: the check really read it
    expect(
      runArm64(exe, [
        'check',
        '--pki-dir',
        dir,
        '--kubeconfig-dir',
        dir,
        '--kubelet-dir',
        dir,
        '--apiserver',
        'none',
        '--min-years',
        '20',
      ]).status,
    ).not.toBe(0);
  }, 600_000);
});

describe('a bundle carries the executable', () => {
  it('export with --tool-dir -> import into another cache dir: a working executable, the same sha256', async () => {
    const exe = seaExecutable('amd64');
    const dir = tmp('sea-bundle');
    const outside = path.join(dir, 'outside');
    await new BinaryCache(outside).store(
      manifestInput(keyFor('sea'), 'linux/amd64'),
      writeFakeElf(dir, 'amd64', 'sea'),
    );
    const bundle = path.join(dir, 'b.tar.gz');
    const ex = runCli([
      'bundle',
      'export',
      '--out',
      bundle,
      '--tool-dir',
      distBinDir,
      '--json',
      '--cache-dir',
      outside,
    ]);
    expect(ex.stderr).toBe('');
    expect(ex.status).toBe(0);
    const sha = crypto.createHash('sha256').update(fs.readFileSync(exe)).digest('hex');
    expect((JSON.parse(ex.stdout) as { tools: { sha256: string }[] }).tools.map((t) => t.sha256)).toEqual([
      sha,
    ]);
    const listed = execFileSync('tar', ['-xzOf', bundle, 'kubeadm-forever-bundle/SHA256SUMS'], {
      encoding: 'utf8',
    });
    expect(listed).toContain(`${sha}  tool/linux-amd64/kubeadm-forever\n`);
    process.stderr.write(
      `executable ${fs.statSync(exe).size} bytes; bundle with it ${fs.statSync(bundle).size} bytes\n`,
    );

    const inside = path.join(dir, 'inside');
    const im = runCli(['bundle', 'import', bundle, '--cache-dir', inside]);
    expect(im.status).toBe(0);
    const p = runCli(['cache', 'path', 'tool', '--platform', 'linux/amd64', '--cache-dir', inside]);
    expect(p.status).toBe(0);
    const installed = p.stdout.trim();
    expect(im.stdout).toContain(`imported: tool linux/amd64 ${installed}\n`);
    expect(crypto.createHash('sha256').update(fs.readFileSync(installed)).digest('hex')).toBe(sha);
    const v = spawnSync(installed, ['--version'], { encoding: 'utf8', env: {} });
    expect(v.status).toBe(0);
    expect(v.stdout).toBe(`${version}\n`);
  }, 600_000);
});
