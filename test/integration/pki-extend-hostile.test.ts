import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { runCli } from '../helpers/env.js';
import { opensslNotAfter, opensslVerify, snapshot, tempDirs, yearsFromNow } from './pki-support.js';

// `ca extend` on hostile but legitimate layouts, through the built CLI with real files and
// openssl: kubeconfigs whose CA data is a YAML block scalar, an alias or a merge (as some tools
// write them), and a ca.crt or kubeconfig that is a symbolic link, inside or outside the
// directories given.

const { tmp, cleanup } = tempDirs();
afterAll(cleanup);

const twoLines = /^error: [^\n]+\nnext: [^\n]+\n$/;
const b64 = (s: string) => Buffer.from(s).toString('base64');
const wrap = (s: string) => s.match(/.{1,64}/g)!;
const indented = (lines: string[], indent: string) => lines.map((l) => `${indent}${l}`).join('\n');

/** The CA data of each cluster as client-go reads it (merge keys honoured, line breaks dropped). */
function caData(conf: string): Record<string, string> {
  const js = parseDocument(fs.readFileSync(conf, 'utf8'), { merge: true }).toJS() as {
    clusters: { name: string; cluster: Record<string, string> }[];
  };
  return Object.fromEntries(
    js.clusters.map((c) => [
      c.name,
      Buffer.from(c.cluster['certificate-authority-data']!.replace(/\n/g, ''), 'base64').toString(),
    ]),
  );
}

/** A kubeconfig as some tools write it: the CA wrapped in a `|` block, aliased by a second cluster, and merged into a third. */
function blockKubeconfig(lines: string[]): string {
  return [
    'apiVersion: v1',
    'x-defaults: &defaults',
    '  insecure-skip-tls-verify: false',
    'clusters:',
    '- name: kubernetes',
    '  cluster:',
    '    server: https://10.0.0.1:6443',
    '    certificate-authority-data: &ca |',
    indented(lines, '      '),
    '- name: via-alias # same CA, by alias',
    '  cluster: {server: "https://10.0.0.2:6443", certificate-authority-data: *ca}',
    '- name: via-merge',
    '  cluster:',
    '    <<: *defaults',
    '    server: https://10.0.0.3:6443',
    '    certificate-authority-data: >-',
    indented(lines, '      '),
    'kind: Config',
    'users:',
    '- name: admin',
    '  user:',
    '    client-key: keys/admin.key',
    '',
  ].join('\n');
}

/** root/pki from `ca init` (10-year CAs) and root/pki/leaf.crt signed by ca.crt with openssl. */
let base: string;
beforeAll(() => {
  base = tmp('hostile-base');
  const pki = path.join(base, 'pki');
  const r = runCli(['ca', 'init', '--out', pki, '--key', 'ecdsa-p256', '--validity', '10y']);
  expect(r.status, r.stderr).toBe(0);
  const ossl = (args: string[]) => execFileSync('openssl', args, { cwd: base, stdio: 'pipe' });
  ossl(
    ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'leaf.key'].concat([
      '-out',
      'leaf.csr',
      '-subj',
      '/CN=leaf',
    ]),
  );
  fs.writeFileSync(path.join(base, 'ext'), 'authorityKeyIdentifier=keyid\nbasicConstraints=CA:FALSE\n');
  ossl(
    [
      'x509',
      '-req',
      '-in',
      'leaf.csr',
      '-CA',
      'pki/ca.crt',
      '-CAkey',
      'pki/ca.key',
      '-set_serial',
      '9',
    ].concat(['-out', 'pki/leaf.crt', '-days', '365', '-extfile', 'ext']),
  );
}, 120_000);

/** A private copy of the base tree: { root, pki }. */
function copy(): { root: string; pki: string } {
  const root = tmp('hostile');
  execFileSync('cp', ['-a', `${base}/.`, root]);
  return { root, pki: path.join(root, 'pki') };
}

const extend = (pki: string, root: string) =>
  runCli(['ca', 'extend', '--pki-dir', pki, '--kubeconfig-dir', root]);

describe('kubeconfig CA data in YAML block, alias and merge forms', () => {
  it('is updated in every cluster, in its own form, with every other byte kept', () => {
    const { root, pki } = copy();
    const conf = path.join(root, 'admin.conf');
    const oldCa = fs.readFileSync(path.join(pki, 'ca.crt'), 'utf8');
    fs.writeFileSync(conf, blockKubeconfig(wrap(b64(oldCa))), { mode: 0o600 });
    expect(Object.values(caData(conf))).toEqual([oldCa, oldCa, oldCa]);

    const r = extend(pki, root);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /admin\.conf {2}certificate-authority-data updated \(kubernetes, via-alias, via-merge\)/,
    );
    const newCa = fs.readFileSync(path.join(pki, 'ca.crt'), 'utf8');
    expect(yearsFromNow(opensslNotAfter(path.join(pki, 'ca.crt')))).toBeGreaterThan(199);
    expect(fs.readFileSync(conf, 'utf8')).toBe(blockKubeconfig([b64(newCa)]));
    expect(caData(conf)).toEqual({ kubernetes: newCa, 'via-alias': newCa, 'via-merge': newCa });
    expect(fs.statSync(conf).mode & 0o777).toBe(0o600);
  }, 60_000);

  it('a form that cannot be rewritten exactly is refused naming file and cluster; nothing changed', () => {
    const { root, pki } = copy();
    const conf = path.join(root, 'admin.conf');
    const oldCa = fs.readFileSync(path.join(pki, 'ca.crt'), 'utf8');
    // `|2` fixes the indentation at 6: the 8-space lines carry two spaces of value each
    const text = [
      'apiVersion: v1',
      'clusters:',
      '- name: odd',
      '  cluster:',
      '    certificate-authority-data: |2',
      indented(wrap(b64(oldCa)), '        '),
      '    server: https://10.0.0.1:6443',
      '',
    ].join('\n');
    fs.writeFileSync(conf, text);
    expect(caData(conf).odd).toBe(oldCa);
    const before = snapshot(root);
    const r = extend(pki, root);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(twoLines);
    expect(r.stderr).toContain(
      `error: ${conf}: the certificate-authority-data of cluster odd cannot be rewritten in place`,
    );
    expect(r.stderr).toMatch(/next: write it as one plain base64 value .*; nothing was written/);
    expect(snapshot(root)).toEqual(before);
  }, 60_000);

  it('a kubeconfig with a "billion laughs" of aliases is refused, naming it; nothing changed', () => {
    const { root, pki } = copy();
    const conf = path.join(root, 'admin.conf');
    const laughs = ['a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
    for (const [prev, n] of ['ab', 'bc', 'cd', 'de', 'ef', 'fg', 'gh', 'hi'])
      laughs.push(`${n}: &${n} [${Array(9).fill(`*${prev}`).join(', ')}]`);
    fs.writeFileSync(
      conf,
      [
        'apiVersion: v1',
        ...laughs,
        'clusters:',
        '- name: kubernetes',
        '  cluster:',
        `    certificate-authority-data: ${b64(fs.readFileSync(path.join(pki, 'ca.crt'), 'utf8'))}`,
        'users: [*i]',
        '',
      ].join('\n'),
    );
    const before = snapshot(root);
    const r = extend(pki, root);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(twoLines);
    expect(r.stderr).toMatch(new RegExp(`^error: ${conf}: .*Excessive alias count`));
    expect(r.stderr).toMatch(/next: fix or restore the kubeconfig and run again; nothing was written/);
    expect(snapshot(root)).toEqual(before);
  }, 60_000);
});

describe('symbolic links', () => {
  it('a ca.crt linked to a file inside the PKI dir is updated at its target; the link stays', () => {
    const { root, pki } = copy();
    fs.mkdirSync(path.join(pki, 'store'));
    fs.renameSync(path.join(pki, 'ca.crt'), path.join(pki, 'store/ca-v1.crt'));
    fs.symlinkSync('store/ca-v1.crt', path.join(pki, 'ca.crt'));
    const old = fs.readFileSync(path.join(pki, 'store/ca-v1.crt'), 'utf8');

    const r = runCli(['ca', 'extend', '--pki-dir', pki, '--kubeconfig-dir', root, '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(fs.lstatSync(path.join(pki, 'ca.crt')).isSymbolicLink()).toBe(true);
    expect(fs.readlinkSync(path.join(pki, 'ca.crt'))).toBe('store/ca-v1.crt');
    const target = path.join(pki, 'store/ca-v1.crt');
    expect(fs.readFileSync(target, 'utf8')).not.toBe(old);
    expect(yearsFromNow(opensslNotAfter(target))).toBeGreaterThan(199);
    const v = opensslVerify(target, [path.join(pki, 'leaf.crt')]);
    expect(v.ok, v.out).toBe(true);
    // the backup holds the old content under the name that was given
    const backup = JSON.parse(r.stdout).backupDir as string;
    expect(fs.readFileSync(path.join(backup, 'pki/ca.crt'), 'utf8')).toBe(old);
    expect(Object.keys(snapshot(pki)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  }, 60_000);

  it('kubeconfigs linked to one file inside the kubeconfig dir: the file is updated once, both links stay', () => {
    const { root, pki } = copy();
    const oldCa = fs.readFileSync(path.join(pki, 'ca.crt'), 'utf8');
    fs.mkdirSync(path.join(root, 'confs'));
    const real = path.join(root, 'confs/admin.conf');
    fs.writeFileSync(real, blockKubeconfig(wrap(b64(oldCa))), { mode: 0o600 });
    fs.symlinkSync('confs/admin.conf', path.join(root, 'admin.conf'));
    fs.symlinkSync(real, path.join(root, 'super-admin.conf'));

    const r = extend(pki, root);
    expect(r.status, r.stderr).toBe(0);
    const newCa = fs.readFileSync(path.join(pki, 'ca.crt'), 'utf8');
    expect(fs.readlinkSync(path.join(root, 'admin.conf'))).toBe('confs/admin.conf');
    expect(fs.readlinkSync(path.join(root, 'super-admin.conf'))).toBe(real);
    expect(fs.readFileSync(real, 'utf8')).toBe(blockKubeconfig([b64(newCa)]));
    expect(fs.statSync(real).mode & 0o777).toBe(0o600);
  }, 60_000);

  it.each([
    ['ca.crt', 'pki/ca.crt', 'CA certificate'],
    ['a kubeconfig', 'admin.conf', 'kubeconfig'],
  ])(
    '%s linked to a file outside the directories given is refused, naming link and target; nothing changed',
    (_what, rel, kind) => {
      const { root, pki } = copy();
      const outside = tmp('hostile-outside');
      const link = path.join(root, rel);
      const ca = fs.readFileSync(path.join(pki, 'ca.crt'), 'utf8');
      const target = path.join(outside, path.basename(rel));
      if (rel === 'admin.conf') fs.writeFileSync(target, blockKubeconfig(wrap(b64(ca))));
      else fs.renameSync(link, target);
      fs.symlinkSync(target, link);
      const before = { root: snapshot(root), outside: snapshot(outside) };

      const r = extend(pki, root);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(twoLines);
      expect(r.stderr).toContain(
        `error: ${kind} ${link} is a symbolic link to ${target}, outside ${pki} and ${root}`,
      );
      expect(r.stderr).toMatch(/next: replace the link by a copy of its target .*; nothing was written/);
      expect({ root: snapshot(root), outside: snapshot(outside) }).toEqual(before);
    },
    60_000,
  );
});
