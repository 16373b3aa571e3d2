import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOUR_MS } from '../../src/core/validity.js';
import { createCa, createLeaf, loadCaPair, type CaPair } from '../../src/node/pki/certs.js';
import { generateKey, privateKeyPem } from '../../src/node/pki/keys.js';
import { checkLiveApiserver, servedCertificate } from '../../src/node/pki/live.js';
import { cliPath } from '../helpers/env.js';
import { tempDirs } from './pki-support.js';

// `check --apiserver` against real TLS servers on 127.0.0.1: one that completes the handshake
// and then holds the connection, one with a self-signed certificate, one not yet valid, an
// expired one from elsewhere, and the cluster CA's own. The served certificate must chain to
// --pki-dir's ca.crt and be valid now; "restart" is advised only when the file on disk is newer.

const { tmp, cleanup } = tempDirs();
const closers: (() => void)[] = [];
afterAll(() => {
  for (const c of closers) c();
  cleanup();
});

const DAY_H = 24;
let pki: string;
let ca: CaPair;

/** A TLS server on loopback presenting `pem` (certificate + key); `hold` keeps every connection open, silent. */
async function serve(pem: { cert: string; key: string }, hold = false): Promise<number> {
  const held: net.Socket[] = [];
  const server = tls.createServer({ cert: pem.cert, key: pem.key, allowHalfOpen: hold }, (s) => {
    if (hold) held.push(s);
    else s.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => {
    held.forEach((s) => s.destroy());
    server.close();
  });
  return (server.address() as net.AddressInfo).port;
}

/** A leaf for kube-apiserver from `issuer` (the cluster CA unless given), valid from `from` for `hours`. */
async function leaf(from: Date, hours: number, issuer: CaPair = ca): Promise<{ cert: string; key: string }> {
  const key = await generateKey('ecdsa-p256');
  const made = await createLeaf(
    issuer,
    { subject: [{ CN: ['kube-apiserver'] }], key, validityHours: hours, clientAuth: false, serverAuth: true },
    from,
  );
  return { cert: made.pem, key: privateKeyPem(key.privateKey) };
}

/** A self-signed certificate (its own CA), valid from `from` for `hours`. */
async function selfSigned(cn: string, from: Date, hours: number): Promise<{ cert: string; key: string }> {
  const key = await generateKey('ecdsa-p256');
  const made = await createCa(cn, key, hours, from);
  return { cert: made.pem, key: privateKeyPem(key.privateKey) };
}

beforeAll(async () => {
  pki = tmp('live-tls');
  const key = await generateKey('ecdsa-p256');
  const made = await createCa('kubernetes', key, 200 * 365 * DAY_H);
  fs.writeFileSync(path.join(pki, 'ca.crt'), made.pem);
  ca = await loadCaPair('ca.crt', made.pem, 'ca.key', privateKeyPem(key.privateKey));
  // apiserver.crt on disk: from the cluster CA, valid now for 199 years
  const disk = await leaf(new Date(Date.now() - HOUR_MS), 199 * 365 * DAY_H);
  fs.writeFileSync(path.join(pki, 'apiserver.crt'), disk.cert);
}, 60_000);

const live = (port: number, now?: Date) =>
  checkLiveApiserver({
    apiserver: `127.0.0.1:${port}`,
    pkiDir: pki,
    minYears: 0,
    procDir: path.join(pki, 'no-proc'),
    now,
  });

describe('check --apiserver judges what is served', () => {
  it('a certificate chained to the cluster CA, valid, the same as apiserver.crt: no problem', async () => {
    const pair = await leaf(new Date(Date.now() - HOUR_MS), 199 * 365 * DAY_H);
    const dir = tmp('live-ok');
    fs.copyFileSync(path.join(pki, 'ca.crt'), path.join(dir, 'ca.crt'));
    fs.writeFileSync(path.join(dir, 'apiserver.crt'), pair.cert);
    const okPort = await serve(pair);
    const r = await checkLiveApiserver({
      apiserver: `127.0.0.1:${okPort}`,
      pkiDir: dir,
      minYears: 150,
      procDir: path.join(dir, 'no-proc'),
    });
    expect(r.served).toMatchObject({ issuedByClusterCa: true, sameAsFile: true, validNow: true });
    expect(r.problems).toEqual([]);
    expect(r.warnings).toEqual([]);
  }, 60_000);

  it('a self-signed certificate is not the cluster CA’s: a problem, and no restart advice', async () => {
    const port = await serve(await selfSigned('kube-apiserver', new Date(Date.now() - HOUR_MS), 365 * DAY_H));
    const r = await live(port);
    expect(r.served?.issuedByClusterCa).toBe(false);
    expect(r.served?.validNow).toBe(true);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatch(
      new RegExp(
        `^served by 127\\.0\\.0\\.1:${port}: not issued by the cluster CA \\(${pki}/ca\\.crt; issuer CN=kube-apiserver\\)`,
      ),
    );
    expect(r.warnings.join('\n')).not.toMatch(/restart/);
  }, 60_000);

  it('a certificate of another CA presenting its CA in the chain is still not the cluster’s', async () => {
    const otherKey = await generateKey('ecdsa-p256');
    const other = await createCa('kubernetes', otherKey, 10 * 365 * DAY_H);
    const otherPair = await loadCaPair('o.crt', other.pem, 'o.key', privateKeyPem(otherKey.privateKey));
    const l = await leaf(new Date(Date.now() - HOUR_MS), 365 * DAY_H, otherPair);
    const port = await serve({ cert: l.cert + other.pem, key: l.key });
    const r = await live(port);
    expect(r.served?.issuedByClusterCa).toBe(false);
    expect(r.problems.join('\n')).toMatch(/not issued by the cluster CA/);
  }, 60_000);

  it('a certificate not valid yet is a problem (even from the cluster CA)', async () => {
    const from = new Date(Date.now() + 10 * 24 * HOUR_MS);
    const port = await serve(await leaf(from, 365 * DAY_H));
    const r = await live(port);
    expect(r.served).toMatchObject({ issuedByClusterCa: true, validNow: false });
    expect(r.problems).toEqual([
      `served by 127.0.0.1:${port}: not valid yet (valid from ${new Date(Math.floor(from.getTime() / 1000) * 1000).toISOString()})`,
    ]);
  }, 60_000);

  it('an expired certificate: restart advised only when it is the cluster CA’s and apiserver.crt is newer', async () => {
    const longAgo = new Date(Date.now() - 400 * 24 * HOUR_MS);
    const ours = await live(await serve(await leaf(longAgo, 365 * DAY_H)));
    expect(ours.problems.join('\n')).toMatch(/: expired$/m);
    expect(ours.warnings.join('\n')).toMatch(
      /still serves a certificate that ends .*: restart kube-apiserver to serve it/,
    );

    const proxy = await live(await serve(await selfSigned('proxy', longAgo, 365 * DAY_H)));
    expect(proxy.problems.join('\n')).toMatch(/: expired$/m);
    expect(proxy.problems.join('\n')).toMatch(/not issued by the cluster CA/);
    expect(proxy.warnings.join('\n')).not.toMatch(/restart/);
  }, 60_000);

  it('without a readable ca.crt the chain cannot be judged: a problem, not OK', async () => {
    const dir = tmp('live-noca');
    const port = await serve(await leaf(new Date(Date.now() - HOUR_MS), 365 * DAY_H));
    const r = await checkLiveApiserver({
      apiserver: `127.0.0.1:${port}`,
      pkiDir: dir,
      minYears: 0,
      procDir: path.join(dir, 'no-proc'),
    });
    expect(r.served?.issuedByClusterCa).toBeNull();
    expect(r.problems.join('\n')).toMatch(/cannot tell whether the cluster CA issued it: .*ca\.crt: ENOENT/);
  }, 60_000);
});

describe('check --apiserver never waits without end', () => {
  it('a server that completes the handshake and then holds the connection: check exits at once', async () => {
    const port = await serve(await leaf(new Date(Date.now() - HOUR_MS), 365 * DAY_H), true);
    const empty = tmp('live-held');
    const started = Date.now();
    // spawned asynchronously: the server lives in this process and must keep answering
    const child = spawn(
      process.execPath,
      [
        cliPath,
        'check',
        '--pki-dir',
        pki,
        '--kubeconfig-dir',
        empty,
        '--kubelet-dir',
        empty,
        '--apiserver',
        `127.0.0.1:${port}`,
        '--json',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    clearTimeout(killer);
    expect(code).toBe(0);
    // well under the 10 s deadline: nothing waited for the silent server at all
    expect(Date.now() - started).toBeLessThan(8000);
    const doc = JSON.parse(stdout) as { live: { served: { issuedByClusterCa: boolean } } };
    expect(doc.live.served.issuedByClusterCa).toBe(true);
  }, 60_000);

  it('a server that accepts TCP and never starts TLS: the probe gives up at its deadline', async () => {
    const sockets: net.Socket[] = [];
    const server = net.createServer((s) => sockets.push(s));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => {
      sockets.forEach((s) => s.destroy());
      server.close();
    });
    const port = (server.address() as net.AddressInfo).port;
    const started = Date.now();
    await expect(servedCertificate('127.0.0.1', port, 500)).rejects.toThrow(
      'no certificate within 0.5s (connect and TLS handshake)',
    );
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('--help names the deadline', async () => {
    const child = spawn(process.execPath, [cliPath, 'check', '--help'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise((resolve) => child.on('close', resolve));
    expect(out.replace(/\s+/g, ' ')).toContain('gives up after 10 s');
  }, 30_000);
});
