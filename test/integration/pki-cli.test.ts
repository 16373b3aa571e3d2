import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cliPath, runCli } from '../helpers/env.js';
import {
  modeOf,
  opensslNotAfter,
  opensslPubkey,
  opensslText,
  opensslVerify,
  snapshot,
  tempDirs,
  yearsFromNow,
} from './pki-support.js';

// `ca init`, `kubelet-cert`, `check` and their hostile inputs, through the built CLI, with
// openssl as the independent checker of what was written.

const { tmp, cleanup } = tempDirs();
afterAll(cleanup);

const CAS = [
  { file: 'ca.crt', key: 'ca.key', cn: 'kubernetes' },
  { file: 'etcd/ca.crt', key: 'etcd/ca.key', cn: 'etcd-ca' },
  { file: 'front-proxy-ca.crt', key: 'front-proxy-ca.key', cn: 'front-proxy-ca' },
];

function expectTwoLineError(
  r: { status: number | null; stderr: string; stdout: string },
  status: number,
  what: RegExp,
) {
  expect(r.status).toBe(status);
  expect(r.stderr).toMatch(/^error: .+\nnext: .+\n$/m);
  expect(r.stderr).toMatch(what);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
}

/** Checks every field `ca init` promises with openssl. */
function expectCaFields(pki: string, keyAlg: RegExp) {
  for (const ca of CAS) {
    const file = path.join(pki, ca.file);
    const text = opensslText(file);
    expect(text).toContain(`subject=CN=${ca.cn}\n`);
    expect(text).toContain(`issuer=CN=${ca.cn}\n`);
    expect(text).toMatch(
      /X509v3 Key Usage: critical\n\s+Digital Signature, Key Encipherment, Certificate Sign\n/,
    );
    expect(text).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:TRUE\n/);
    expect(text).toMatch(/X509v3 Subject Key Identifier: *\n\s+([0-9A-F]{2}:){19}[0-9A-F]{2}\n/);
    expect(text).toMatch(new RegExp(`X509v3 Subject Alternative Name: *\\n\\s+DNS:${ca.cn}\\n`));
    expect(text).toMatch(keyAlg);
    // serial: random, positive, non-zero (openssl prints negative serials with a '-')
    const serial = /^serial=([0-9A-F]+)$/m.exec(text)?.[1];
    expect(serial).toBeDefined();
    expect(BigInt(`0x${serial}`)).toBeGreaterThan(0n);
    expect(text).not.toMatch(/Serial Number:\s*\n?\s*\(Negative\)/);
    expect(yearsFromNow(opensslNotAfter(file))).toBeGreaterThanOrEqual(199.9);
    // self-signed and self-consistent
    expect(opensslVerify(file, [file]).ok).toBe(true);
    expect(modeOf(file)).toBe(0o644);
    expect(modeOf(path.join(pki, ca.key))).toBe(0o600);
    // the key on disk is the certificate's key
    const keyPub = execFileSync('openssl', ['pkey', '-in', path.join(pki, ca.key), '-pubout'], {
      encoding: 'utf8',
    });
    expect(keyPub).toBe(opensslPubkey(file));
  }
}

describe('ca init', () => {
  it('writes three 200-year CAs with the extensions of the manual procedure (rsa-2048 default)', () => {
    const root = tmp('ca-init');
    const pki = path.join(root, 'pki');
    const r = runCli(['ca', 'init', '--out', pki, '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.cas.map((c: { subject: string }) => c.subject)).toEqual([
      'CN=kubernetes',
      'CN=etcd-ca',
      'CN=front-proxy-ca',
    ]);
    expectCaFields(pki, /Public Key Algorithm: rsaEncryption\n\s+Public-Key: \(2048 bit\)/);
    expect(fs.readFileSync(path.join(pki, 'ca.key'), 'utf8')).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n/);
    // three different keys and serials
    const serials = new Set(CAS.map((c) => /^serial=(.+)$/m.exec(opensslText(path.join(pki, c.file)))![1]));
    expect(serials.size).toBe(3);
  }, 120_000);

  it('makes ecdsa-p256 CAs signed with ecdsa-with-SHA256', () => {
    const pki = path.join(tmp('ca-init-ec'), 'pki');
    const r = runCli(['ca', 'init', '--out', pki, '--key', 'ecdsa-p256']);
    expect(r.status).toBe(0);
    expectCaFields(
      pki,
      /Public Key Algorithm: id-ecPublicKey[\s\S]+NIST CURVE: P-256[\s\S]+Signature Algorithm: ecdsa-with-SHA256/,
    );
  }, 120_000);

  it('makes rsa-4096 CAs', () => {
    const pki = path.join(tmp('ca-init-4096'), 'pki');
    const r = runCli(['ca', 'init', '--out', pki, '--key', 'rsa-4096', '--validity', '73000d']);
    expect(r.status).toBe(0);
    expectCaFields(pki, /Public-Key: \(4096 bit\)/);
  }, 120_000);

  it('refuses existing files without --force, and backs them up with it', () => {
    const root = tmp('ca-force');
    const pki = path.join(root, 'pki');
    expect(runCli(['ca', 'init', '--out', pki]).status).toBe(0);
    const before = snapshot(pki);
    const refused = runCli(['ca', 'init', '--out', pki]);
    expectTwoLineError(refused, 1, /already exist[\s\S]*--force/);
    expect(snapshot(pki)).toEqual(before);

    const forced = runCli(['ca', 'init', '--out', pki, '--force', '--json']);
    expect(forced.status).toBe(0);
    const doc = JSON.parse(forced.stdout);
    expect(path.dirname(doc.backupDir)).toBe(root);
    expect(path.basename(doc.backupDir)).toMatch(/^pki-backup-\d{8}T\d{6}Z$/);
    // the old files, byte for byte, keys still 0600
    for (const rel of [
      'ca.crt',
      'ca.key',
      'etcd/ca.crt',
      'etcd/ca.key',
      'front-proxy-ca.crt',
      'front-proxy-ca.key',
    ]) {
      const [oldMode, oldHash] = before[rel]!.split(' ');
      expect(snapshot(doc.backupDir)[rel]).toBe(`${oldMode} ${oldHash}`);
      expect(snapshot(pki)[rel]).not.toBe(before[rel]);
    }
  }, 120_000);

  it('refuses bad flags with exit 2 and writes nothing', () => {
    const root = tmp('ca-badflags');
    for (const args of [
      ['--validity', '300y'],
      ['--validity', '0y'],
      ['--validity', '10 years'],
      ['--key', 'dsa'],
    ]) {
      const r = runCli(['ca', 'init', '--out', path.join(root, 'pki'), ...args]);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^error: .+\nnext: .+\n$/m);
    }
    expect(fs.readdirSync(root)).toEqual([]);
  }, 120_000);

  it('fails clearly on an unwritable output (a file in the way) and writes nothing', () => {
    const root = tmp('ca-unwritable');
    fs.writeFileSync(path.join(root, 'blocker'), 'not a dir');
    const before = snapshot(root);
    const r = runCli(['ca', 'init', '--out', path.join(root, 'blocker', 'pki')]);
    expectTwoLineError(r, 1, /not a directory/);
    expect(snapshot(root)).toEqual(before);
  }, 120_000);
});

/**
 * Runs the CLI in a private mount namespace where `roDir` is mounted read-only: the real
 * "unwritable output" case (root ignores permission bits, not a read-only mount).
 */
function runCliReadOnly(roDir: string, args: string[]) {
  const script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" "$1" && shift && exec "$@"';
  const r = spawnSync(
    'unshare',
    ['-m', 'sh', '-c', script, 'sh', roDir, process.execPath, cliPath, ...args],
    { encoding: 'utf8' },
  );
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('read-only targets', () => {
  it('ca init and ca extend refuse a read-only directory and write nothing anywhere', () => {
    const root = tmp('readonly');
    const pki = path.join(root, 'pki');
    fs.mkdirSync(pki);
    const init = runCliReadOnly(pki, ['ca', 'init', '--out', pki]);
    expectTwoLineError(init, 1, /output directory .+ is not writable \(.*read-only file system/i);
    expect(fs.readdirSync(pki)).toEqual([]);

    expect(runCli(['ca', 'init', '--out', pki]).status).toBe(0);
    const before = snapshot(root);
    const extend = runCliReadOnly(pki, ['ca', 'extend', '--pki-dir', pki]);
    expectTwoLineError(extend, 1, /PKI directory .+ is not writable/);
    expect(snapshot(root)).toEqual(before); // not even a backup folder
  }, 120_000);
});

describe('ca extend: what it says to do next', () => {
  it('names renew then check on a node with the CA keys, nothing to renew where it installs them', () => {
    const root = tmp('next-steps');
    const cp = path.join(root, 'cp/pki');
    const worker = path.join(root, 'worker/pki');
    expect(runCli(['ca', 'init', '--out', cp]).status).toBe(0);
    fs.mkdirSync(path.join(worker, 'etcd'), { recursive: true });
    for (const ca of CAS) fs.copyFileSync(path.join(cp, ca.file), path.join(worker, ca.file));

    const extend = runCli(['ca', 'extend', '--pki-dir', cp, '--validity', '201y']);
    expect(extend.status, extend.stderr).toBe(0);
    // the CAs are the procedure's first step: the rest is renew (with its backup), then check
    expect(extend.stdout).toMatch(
      /\nnext, on this node.+\n {2}1\. kubeadm-forever renew --kubeadm \S+ --dry-run .+backup, certs renew all.+\n {2}2\. kubeadm-forever check --min-years 150\n$/,
    );
    // a node without the keys may be a worker: there is no control plane there to renew
    const install = runCli(['ca', 'extend', '--pki-dir', worker, '--new-ca-dir', cp]);
    expect(install.status, install.stderr).toBe(0);
    expect(install.stdout).toMatch(/ca\.crt .+ -> /);
    expect(install.stdout).not.toMatch(/^next|kubeadm-forever renew/m);
  }, 120_000);
});

describe('kubelet-cert', () => {
  it('issues system:node:NAME with clientAuth, verifying against the CA, and re-points kubelet-client-current.pem', () => {
    const root = tmp('kubelet');
    const pki = path.join(root, 'pki');
    const out = path.join(root, 'kubelet-pki');
    expect(runCli(['ca', 'init', '--out', pki]).status).toBe(0);

    const first = runCli([
      'kubelet-cert',
      '--node',
      'worker-1.example',
      '--pki-dir',
      pki,
      '--out',
      out,
      '--json',
    ]);
    expect(first.status).toBe(0);
    const doc = JSON.parse(first.stdout);
    expect(doc.clusterSigningDuration).toBe('1743240h');
    expect(first.stderr).toContain('--cluster-signing-duration=1743240h');
    const link = path.join(out, 'kubelet-client-current.pem');
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.readlinkSync(link)).toBe(doc.file);
    expect(path.basename(doc.file)).toMatch(/^kubelet-client-\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d\.pem$/);
    expect(modeOf(doc.file)).toBe(0o600);

    const text = opensslText(link);
    expect(text).toContain('subject=CN=system:node:worker-1.example,O=system:nodes\n');
    expect(text).toContain('issuer=CN=kubernetes\n');
    expect(text).toMatch(/X509v3 Key Usage: critical\n\s+Digital Signature, Key Encipherment\n/);
    expect(text).toMatch(/X509v3 Extended Key Usage: *\n\s+TLS Web Client Authentication\n/);
    expect(text).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:FALSE\n/);
    expect(text).toMatch(/X509v3 Subject Key Identifier: *\n\s+([0-9A-F]{2}:){19}[0-9A-F]{2}\n/);
    // AKID = the CA's SKID
    const skid = /Subject Key Identifier: *\n\s+(\S+)/.exec(opensslText(path.join(pki, 'ca.crt')))![1];
    expect(text).toMatch(new RegExp(`Authority Key Identifier: *\\n\\s+(keyid:)?${skid}\\n`));
    expect(yearsFromNow(opensslNotAfter(link))).toBeGreaterThanOrEqual(198.9);
    const v = opensslVerify(path.join(pki, 'ca.crt'), [link], ['-purpose', 'sslclient']);
    expect(v.out).toContain('OK');
    expect(v.ok).toBe(true);
    // certificate and key in one file, and they match
    const pem = fs.readFileSync(doc.file, 'utf8');
    expect(pem).toMatch(/-----BEGIN CERTIFICATE-----[\s\S]+-----BEGIN EC PRIVATE KEY-----/);
    const keyPub = execFileSync('openssl', ['pkey', '-in', doc.file, '-pubout'], { encoding: 'utf8' });
    expect(keyPub).toBe(opensslPubkey(doc.file));

    // a second run keeps the first file and moves the link
    execFileSync('sleep', ['1.1']);
    const second = JSON.parse(
      runCli(['kubelet-cert', '--node', 'worker-1.example', '--pki-dir', pki, '--out', out, '--json']).stdout,
    );
    expect(second.file).not.toBe(doc.file);
    expect(fs.existsSync(doc.file)).toBe(true);
    expect(fs.readlinkSync(link)).toBe(second.file);
    expect(fs.readdirSync(out).filter((n) => n.includes('.tmp'))).toEqual([]);
  }, 120_000);

  it('keeps a plain kubelet-client-current.pem it replaces with a link', () => {
    const root = tmp('kubelet-plain');
    const pki = path.join(root, 'pki');
    const out = path.join(root, 'kl');
    expect(runCli(['ca', 'init', '--out', pki]).status).toBe(0);
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'kubelet-client-current.pem'), 'old contents', { mode: 0o600 });
    const doc = JSON.parse(
      runCli(['kubelet-cert', '--node', 'n1', '--pki-dir', pki, '--out', out, '--json']).stdout,
    );
    expect(fs.readFileSync(doc.replacedFileBackup, 'utf8')).toBe('old contents');
    expect(fs.readlinkSync(path.join(out, 'kubelet-client-current.pem'))).toBe(doc.file);
  }, 120_000);

  it('refuses an invalid node name (exit 2) and a non-CA, a wrong key, a truncated CA (exit 1), writing nothing', () => {
    const root = tmp('kubelet-hostile');
    const pki = path.join(root, 'pki');
    const out = path.join(root, 'kl');
    expect(runCli(['ca', 'init', '--out', pki]).status).toBe(0);
    expect(
      runCli(['kubelet-cert', '--node', 'n1', '--pki-dir', pki, '--out', path.join(root, 'leafsrc')]).status,
    ).toBe(0);
    const leafFile = fs.realpathSync(path.join(root, 'leafsrc', 'kubelet-client-current.pem'));

    for (const bad of ['Node_1', '../etc', 'a b', '-x', '', 'a'.repeat(254)]) {
      const r = runCli(['kubelet-cert', `--node=${bad}`, '--pki-dir', pki, '--out', out]);
      expectTwoLineError(r, 2, /invalid node name/);
    }
    expect(fs.existsSync(out)).toBe(false);

    // a leaf certificate posing as the CA
    const notCa = path.join(root, 'not-ca');
    fs.mkdirSync(notCa);
    const leafPem = fs.readFileSync(leafFile, 'utf8');
    fs.writeFileSync(
      path.join(notCa, 'ca.crt'),
      leafPem.slice(0, leafPem.indexOf('-----BEGIN EC PRIVATE KEY-----')),
    );
    fs.writeFileSync(
      path.join(notCa, 'ca.key'),
      leafPem.slice(leafPem.indexOf('-----BEGIN EC PRIVATE KEY-----')),
    );
    expectTwoLineError(
      runCli(['kubelet-cert', '--node', 'n1', '--pki-dir', notCa, '--out', out]),
      1,
      /not a CA certificate/,
    );

    // a key that does not belong to the CA
    const wrongKey = path.join(root, 'wrong-key');
    fs.mkdirSync(wrongKey);
    fs.copyFileSync(path.join(pki, 'ca.crt'), path.join(wrongKey, 'ca.crt'));
    fs.copyFileSync(path.join(pki, 'front-proxy-ca.key'), path.join(wrongKey, 'ca.key'));
    expectTwoLineError(
      runCli(['kubelet-cert', '--node', 'n1', '--pki-dir', wrongKey, '--out', out]),
      1,
      /does not match/,
    );

    // a truncated CA certificate
    const truncated = path.join(root, 'truncated');
    fs.mkdirSync(truncated);
    const caPem = fs.readFileSync(path.join(pki, 'ca.crt'), 'utf8');
    fs.writeFileSync(path.join(truncated, 'ca.crt'), caPem.slice(0, caPem.length / 2));
    fs.copyFileSync(path.join(pki, 'ca.key'), path.join(truncated, 'ca.key'));
    expectTwoLineError(
      runCli(['kubelet-cert', '--node', 'n1', '--pki-dir', truncated, '--out', out]),
      1,
      /truncated or damaged/,
    );

    // a truncated key
    const badKey = path.join(root, 'bad-key');
    fs.mkdirSync(badKey);
    fs.copyFileSync(path.join(pki, 'ca.crt'), path.join(badKey, 'ca.crt'));
    const keyPem = fs.readFileSync(path.join(pki, 'ca.key'), 'utf8');
    fs.writeFileSync(path.join(badKey, 'ca.key'), keyPem.slice(0, keyPem.length - 100));
    expectTwoLineError(
      runCli(['kubelet-cert', '--node', 'n1', '--pki-dir', badKey, '--out', out]),
      1,
      /not a readable private key/,
    );

    expect(fs.existsSync(out)).toBe(false);

    // an unwritable output: a file where the directory should be
    fs.writeFileSync(out, 'in the way');
    expectTwoLineError(
      runCli(['kubelet-cert', '--node', 'n1', '--pki-dir', pki, '--out', path.join(out, 'pki')]),
      1,
      /not a directory/,
    );
    expect(fs.readFileSync(out, 'utf8')).toBe('in the way');
  }, 180_000);
});

describe('check', () => {
  it('passes a fresh ca init directory at --min-years 150 and fails a 10-year CA', () => {
    const root = tmp('check');
    const fresh = path.join(root, 'fresh');
    const old = path.join(root, 'old');
    expect(runCli(['ca', 'init', '--out', fresh]).status).toBe(0);
    expect(runCli(['ca', 'init', '--out', old, '--validity', '10y']).status).toBe(0);
    const none = path.join(root, 'none');

    const ok = runCli([
      'check',
      '--pki-dir',
      fresh,
      '--kubeconfig-dir',
      none,
      '--kubelet-dir',
      none,
      '--min-years',
      '150',
      '--json',
    ]);
    expect(ok.status).toBe(0);
    const okDoc = JSON.parse(ok.stdout);
    expect(okDoc.ok).toBe(true);
    expect(okDoc.rows).toHaveLength(3);
    for (const row of okDoc.rows) {
      expect(row).toMatchObject({ kind: 'ca', keyMatches: true, chainsTo: 'self', problems: [] });
      expect(row.yearsLeft).toBeGreaterThanOrEqual(199.9);
    }

    const bad = runCli([
      'check',
      '--pki-dir',
      old,
      '--kubeconfig-dir',
      none,
      '--kubelet-dir',
      none,
      '--min-years',
      '150',
    ]);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/FAILED \(3\)/);
    expect(bad.stdout).toMatch(/ca\.crt: 9\.\d+ years left, under --min-years 150/);
  }, 120_000);

  it('reports a leaf that does not chain, a key that does not match and an unreadable file, without stopping', () => {
    const root = tmp('check-bad');
    const pki = path.join(root, 'pki');
    const other = path.join(root, 'other');
    const kl = path.join(root, 'kl');
    expect(runCli(['ca', 'init', '--out', pki]).status).toBe(0);
    expect(runCli(['ca', 'init', '--out', other]).status).toBe(0);
    // a kubelet certificate from another CA: does not chain to anything in pki
    expect(runCli(['kubelet-cert', '--node', 'n1', '--pki-dir', other, '--out', kl]).status).toBe(0);
    // a key beside front-proxy-ca.crt that is not its key
    fs.copyFileSync(path.join(pki, 'ca.key'), path.join(pki, 'front-proxy-ca.key'));
    // a damaged certificate
    fs.writeFileSync(path.join(pki, 'broken.crt'), '-----BEGIN CERTIFICATE-----\nMIIB\n');
    const r = runCli(['check', '--pki-dir', pki, '--kubeconfig-dir', root, '--kubelet-dir', kl, '--json']);
    expect(r.status).toBe(1);
    const doc = JSON.parse(r.stdout);
    const row = (suffix: string) => doc.rows.find((x: { source: string }) => x.source.endsWith(suffix));
    expect(row('kubelet-client-current.pem')).toMatchObject({
      kind: 'leaf',
      chainsTo: null,
      keyMatches: true,
    });
    expect(row('front-proxy-ca.crt')).toMatchObject({ keyMatches: false });
    expect(row('ca.crt')).toMatchObject({ keyMatches: true, chainsTo: 'self', problems: [] });
    expect(doc.errors).toEqual([
      { file: path.join(pki, 'broken.crt'), message: expect.stringMatching(/truncated or damaged/) },
    ]);
    expect(doc.problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/kubelet-client-current\.pem: does not chain to any CA found/),
        expect.stringMatching(/front-proxy-ca\.crt: private key does not match/),
        expect.stringMatching(/broken\.crt: .*truncated/),
      ]),
    );
  }, 120_000);

  it('refuses a bad --min-years with exit 2', () => {
    const r = runCli(['check', '--pki-dir', '/nonexistent', '--min-years', '-3']);
    expectTwoLineError(r, 2, /--min-years/);
  }, 60_000);
});
