import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { runCli } from '../helpers/env.js';
import { opensslNotAfter, opensslVerify, snapshot, tempDir, yearsFromNow } from './pki-support.js';

// PKI safety through the built CLI: no silent shortening (--allow-shorter), CA bundles
// kept, and all-or-nothing writes that a killed run cannot leave half done (KF_TEST_FAULT is
// the test-only fault hook of adapters/file-transaction).

const dirs: string[] = [];
const tmp = (p: string) => {
  const d = tempDir(p);
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

const twoLines = /^error: [^\n]+\nnext: [^\n]+\n$/;
const date = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ';
const b64 = (s: string) => Buffer.from(s).toString('base64');
const ok = (args: string[], env?: NodeJS.ProcessEnv) => {
  const r = runCli(args, { env });
  expect(r.status, `${args.join(' ')}\n${r.stderr}`).toBe(0);
  return r;
};
const tmpFiles = (root: string) => Object.keys(snapshot(root)).filter((f) => f.endsWith('.tmp'));
const pemBlocks = (text: string) =>
  text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
function caDataOf(conf: string): string {
  const doc = parseDocument(fs.readFileSync(conf, 'utf8')).toJS() as {
    clusters: { cluster: Record<string, string> }[];
  };
  return Buffer.from(doc.clusters[0]!.cluster['certificate-authority-data']!, 'base64').toString('utf8');
}

function kubeconfig(caPem: string, clientPem: string): string {
  return [
    'apiVersion: v1',
    'clusters:',
    '- cluster:',
    `    certificate-authority-data: ${b64(caPem)}`,
    '    server: https://10.0.0.1:6443',
    '  name: kubernetes',
    'kind: Config',
    'users:',
    '- name: admin',
    '  user:',
    `    client-certificate-data: ${b64(clientPem)}`,
    '',
  ].join('\n');
}

/** root/pki from `ca init` (10-year CAs), a 5-year kubelet leaf under pki/kubelet, root/admin.conf embedding ca.crt. */
let base: string;
beforeAll(() => {
  base = tmp('safety-base');
  const pki = path.join(base, 'pki');
  ok(['ca', 'init', '--out', pki, '--key', 'ecdsa-p256', '--validity', '10y']);
  ok([
    'kubelet-cert',
    '--node',
    'n1',
    '--pki-dir',
    pki,
    '--out',
    path.join(pki, 'kubelet'),
    '--validity',
    '5y',
  ]);
  const leaf = fs.readFileSync(path.join(pki, 'kubelet/kubelet-client-current.pem'), 'utf8');
  fs.writeFileSync(
    path.join(base, 'admin.conf'),
    kubeconfig(fs.readFileSync(path.join(pki, 'ca.crt'), 'utf8'), pemBlocks(leaf)[0]!),
    { mode: 0o600 },
  );
}, 120_000);

/** A private copy of the base tree. */
function copy(): { root: string; pki: string } {
  const root = tmp('safety');
  execFileSync('cp', ['-a', `${base}/.`, root]);
  // the kubelet link is absolute: point it into the copy
  const link = path.join(root, 'pki/kubelet/kubelet-client-current.pem');
  fs.rmSync(link);
  const pem = fs.readdirSync(path.join(root, 'pki/kubelet')).find((n) => n.startsWith('kubelet-client-2'))!;
  fs.symlinkSync(path.join(root, 'pki/kubelet', pem), link);
  return { root, pki: path.join(root, 'pki') };
}

describe('no silent shortening', () => {
  it('ca extend --validity 200d is refused naming both dates (earlier than now, before a leaf it signed); --allow-shorter allows it', () => {
    const { root, pki } = copy();
    const before = snapshot(root); // the default backup folder would appear beside pki, in root
    const r = runCli(['ca', 'extend', '--pki-dir', pki, '--validity', '200d']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(twoLines);
    expect(r.stderr).toMatch(
      new RegExp(
        `^error: refused: the extended ca\\.crt would end ${date}, earlier than the CA in ${pki}/ca\\.crt does now \\(${date}\\)`,
      ),
    );
    expect(r.stderr).toMatch(
      new RegExp(
        `would end ${date}, before ${pki}/kubelet/kubelet-client-[-\\d]+\\.pem that it signed \\(${date}\\)`,
      ),
    );
    expect(r.stderr).toMatch(
      /next: pass a longer --validity \(e\.g\. 200y\), or pass --allow-shorter if this is what you want; nothing was changed/,
    );
    expect(snapshot(root)).toEqual(before); // not even a backup folder

    const allowed = ok(['ca', 'extend', '--pki-dir', pki, '--validity', '200d', '--allow-shorter']);
    expect(allowed.stderr).toMatch(
      /warning: the extended ca\.crt would end .+ \(allowed by --allow-shorter\)/,
    );
    expect(yearsFromNow(opensslNotAfter(path.join(pki, 'ca.crt')))).toBeLessThan(0.6);
  }, 120_000);

  it('kubelet-cert past its CA, or shorter than the current one, is refused naming both dates; with --allow-shorter check then fails', () => {
    const { root, pki } = copy();
    const out = path.join(pki, 'kubelet');
    const before = snapshot(root);
    const r = runCli(['kubelet-cert', '--node', 'n1', '--pki-dir', pki, '--out', out]); // 199y under a 10-year CA
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(twoLines);
    expect(r.stderr).toMatch(
      new RegExp(
        `refused: the new kubelet client certificate would end ${date}, after its CA ${pki}/ca\\.crt \\(${date}\\)`,
      ),
    );
    const shorter = runCli([
      'kubelet-cert',
      '--node',
      'n1',
      '--pki-dir',
      pki,
      '--out',
      out,
      '--validity',
      '1y',
    ]);
    expect(shorter.status).toBe(1);
    expect(shorter.stderr).toMatch(
      new RegExp(
        `would end ${date}, earlier than the current ${out}/kubelet-client-current\\.pem does now \\(${date}\\)`,
      ),
    );
    expect(snapshot(root)).toEqual(before);

    const allowed = ok(['kubelet-cert', '--node', 'n1', '--pki-dir', pki, '--out', out, '--allow-shorter']);
    expect(allowed.stderr).toMatch(/warning: .*after its CA .*\(allowed by --allow-shorter\)/);
    const check = runCli([
      'check',
      '--pki-dir',
      pki,
      '--kubeconfig-dir',
      path.join(root, 'none'),
      '--kubelet-dir',
      path.join(root, 'none'),
    ]);
    expect(check.status).toBe(1);
    expect(check.stdout).toMatch(
      new RegExp(`kubelet-client-[-\\d]+\\.pem: ends ${date}, after its CA ${pki}/ca\\.crt \\(${date}\\)`),
    );
  }, 120_000);
});

describe('CA bundles', () => {
  it('ca extend replaces only the CA it extends in a ca.crt bundle and in bundled CA data, keeping the others in order', () => {
    const { root, pki } = copy();
    const other = tmp('other');
    ok(['ca', 'init', '--out', other, '--key', 'ecdsa-p256']);
    const otherPem = fs.readFileSync(path.join(other, 'ca.crt'), 'utf8');
    const caPem = fs.readFileSync(path.join(pki, 'ca.crt'), 'utf8');
    fs.writeFileSync(path.join(pki, 'ca.crt'), otherPem + caPem); // the key's CA second
    const conf = path.join(root, 'admin.conf');
    fs.writeFileSync(conf, fs.readFileSync(conf, 'utf8').replace(b64(caPem), b64(caPem + otherPem)));

    ok(['ca', 'extend', '--pki-dir', pki]);
    const bundle = pemBlocks(fs.readFileSync(path.join(pki, 'ca.crt'), 'utf8'));
    expect(bundle).toHaveLength(2);
    expect(bundle[0]).toBe(otherPem);
    expect(bundle[1]).not.toBe(caPem);
    const data = pemBlocks(caDataOf(conf));
    expect(data).toEqual([bundle[1], otherPem]);
    // the extended CA is the same CA: the old leaf verifies against it
    fs.writeFileSync(path.join(root, 'new-ca.pem'), bundle[1]!);
    expect(yearsFromNow(opensslNotAfter(path.join(root, 'new-ca.pem')))).toBeGreaterThan(199.9);
    expect(
      opensslVerify(path.join(root, 'new-ca.pem'), [path.join(pki, 'kubelet/kubelet-client-current.pem')]).ok,
    ).toBe(true);
  }, 120_000);
});

/** The converged state after `ca extend`: every CA 200 years, the kubeconfig embedding ca.crt, leaves verify, nothing left over. */
function expectExtended(root: string, pki: string) {
  for (const ca of ['ca.crt', 'etcd/ca.crt', 'front-proxy-ca.crt']) {
    expect(yearsFromNow(opensslNotAfter(path.join(pki, ca))), ca).toBeGreaterThan(199.9);
  }
  expect(caDataOf(path.join(root, 'admin.conf'))).toBe(fs.readFileSync(path.join(pki, 'ca.crt'), 'utf8'));
  expect(
    opensslVerify(path.join(pki, 'ca.crt'), [path.join(pki, 'kubelet/kubelet-client-current.pem')]).ok,
  ).toBe(true);
  expect(tmpFiles(root)).toEqual([]);
  const check = runCli([
    'check',
    '--pki-dir',
    pki,
    '--kubeconfig-dir',
    root,
    '--kubelet-dir',
    path.join(root, 'none'),
  ]);
  expect(check.status, check.stdout).toBe(0);
}

describe('all or nothing across files', () => {
  // ca extend here replaces 4 files in 3 directories: steps 1-8 stage, 9-11 journals,
  // 12-15 swaps, 16-19 old copies removed, 20-22 journals removed
  it.each([2, 11, 13, 15, 17, 21])(
    'ca extend killed at step %i: the re-run converges to the fully extended state',
    (step) => {
      const { root, pki } = copy();
      const killed = runCli(['ca', 'extend', '--pki-dir', pki], {
        env: { KF_TEST_FAULT: `kill-at:${step}` },
      });
      expect(killed.status, killed.stderr).toBe(null); // SIGKILL
      const again = ok(['ca', 'extend', '--pki-dir', pki]);
      expect(again.stderr).not.toMatch(/none of these/);
      if (step >= 12 && step <= 15) expect(again.stderr).toMatch(/an interrupted earlier run was put back/);
      expectExtended(root, pki);
    },
    120_000,
  );

  it('a kubeconfig left on the old CA certificate (no journal to go by) is recognised as the same CA and updated', () => {
    const { root, pki } = copy();
    const conf = path.join(root, 'admin.conf');
    const oldConf = fs.readFileSync(conf);
    ok(['ca', 'extend', '--pki-dir', pki]);
    fs.writeFileSync(conf, oldConf); // as if the kubeconfig had never been written
    const again = ok(['ca', 'extend', '--pki-dir', pki, '--json']);
    expect(again.stderr).not.toMatch(/none of these/);
    expect(JSON.parse(again.stdout).kubeconfigs).toEqual([{ file: conf, clusters: ['kubernetes'] }]);
    expectExtended(root, pki);
  }, 120_000);

  it('ca init --force: a failed rename puts everything back (keys match their certificates), two lines, no temp file', () => {
    const { root, pki } = copy();
    const before = snapshot(pki);
    const r = runCli(
      ['ca', 'init', '--out', pki, '--force', '--key', 'ecdsa-p256', '--validity', '10y', '--allow-shorter'],
      { env: { KF_TEST_FAULT: 'fail-swap:3' } },
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(twoLines);
    expect(r.stderr).toMatch(/^error: cannot replace .+: EIO/);
    expect(r.stderr).toMatch(/the 2 file\(s\) already replaced were put back/);
    expect(r.stderr).not.toMatch(/unexpected failure/);
    expect(snapshot(pki)).toEqual(before);
    expect(tmpFiles(root)).toEqual([]);
  }, 120_000);

  it('ca init --force killed between renames: the next run puts the old CAs back first, then replaces all; keys match', () => {
    const { root, pki } = copy();
    // 6 files in 2 directories: 12 staging steps, 2 journals, swaps 15-20
    const killed = runCli(
      ['ca', 'init', '--out', pki, '--force', '--key', 'ecdsa-p256', '--validity', '10y', '--allow-shorter'],
      {
        env: { KF_TEST_FAULT: 'kill-at:17' },
      },
    );
    expect(killed.status).toBe(null);
    const again = ok(['ca', 'init', '--out', pki, '--force', '--key', 'ecdsa-p256', '--json']);
    expect(again.stderr).toMatch(/an interrupted earlier run was put back/);
    // the backup holds the CAs from before the killed run (what recovery put back)
    const doc = JSON.parse(again.stdout) as { backupDir: string };
    expect(fs.readFileSync(path.join(doc.backupDir, 'ca.key'))).toEqual(
      fs.readFileSync(path.join(base, 'pki/ca.key')),
    );
    expect(tmpFiles(root)).toEqual([]);
    const check = runCli([
      'check',
      '--pki-dir',
      pki,
      '--kubeconfig-dir',
      path.join(root, 'none'),
      '--kubelet-dir',
      path.join(root, 'none'),
    ]);
    expect(check.stdout).not.toMatch(/MISMATCH/);
  }, 120_000);
});
