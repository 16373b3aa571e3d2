import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkLiveApiserver,
  endpointOf,
  findApiserverProcesses,
  formatLive,
  parseEndpoint,
} from '../../src/node/pki/live.js';

/**
 * The live part of `check` against a real TLS server on loopback (openssl-made certificates)
 * and a /proc-shaped directory standing for the node's processes.
 */
const dayMs = 86_400_000;

function selfSigned(dir: string, name: string, days: number, cn: string): { cert: string; key: string } {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      String(days),
      '-subj',
      `/CN=${cn}`,
    ],
    { stdio: 'ignore' },
  );
  return { cert, key };
}

/** A leaf for `cn` signed by `ca` (openssl x509 -req), serverAuth, valid from now for `days`. */
function signedBy(
  dir: string,
  name: string,
  days: number,
  cn: string,
  ca: { cert: string; key: string },
): { cert: string; key: string } {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  const csr = path.join(dir, `${name}.csr`);
  const ext = path.join(dir, `${name}.ext`);
  fs.writeFileSync(
    ext,
    'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n',
  );
  execFileSync(
    'openssl',
    [
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      key,
      '-out',
      csr,
      '-subj',
      `/CN=${cn}`,
    ],
    { stdio: 'ignore' },
  );
  execFileSync(
    'openssl',
    [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      ca.cert,
      '-CAkey',
      ca.key,
      '-set_serial',
      String(Date.now()),
      '-days',
      String(days),
      '-extfile',
      ext,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  return { cert, key };
}

/** A /proc with one process: cmdline, stat (start ticks), ns/net; plus /proc/stat and self/ns/net. */
function fakeProc(
  root: string,
  procs: { pid: number; args: string[]; startTicks: number; net: string }[],
  btime: number,
): string {
  fs.mkdirSync(path.join(root, 'self/ns'), { recursive: true });
  fs.symlinkSync('net:[4026531840]', path.join(root, 'self/ns/net'));
  fs.writeFileSync(path.join(root, 'stat'), `cpu  1 2 3\nbtime ${btime}\nprocesses 9\n`);
  for (const p of procs) {
    const d = path.join(root, String(p.pid));
    fs.mkdirSync(path.join(d, 'ns'), { recursive: true });
    fs.writeFileSync(path.join(d, 'cmdline'), `${p.args.join('\0')}\0`);
    const rest = [
      'S',
      '1',
      '1',
      '1',
      '0',
      '-1',
      '4194560',
      '0',
      '0',
      '0',
      '0',
      '0',
      '0',
      '0',
      '0',
      '20',
      '0',
      '10',
      '0',
      String(p.startTicks),
      '0',
    ];
    fs.writeFileSync(path.join(d, 'stat'), `${p.pid} (kube apiserver) ) ${rest.join(' ')}\n`);
    fs.symlinkSync(p.net, path.join(d, 'ns/net'));
  }
  return root;
}

describe('check on a live node: served certificate and loopback warning', () => {
  let dir: string;
  let server: tls.Server;
  let port: number;
  let served: { cert: string; key: string };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-live-'));
    // the cluster CA in pki/ca.crt; it issued the served certificate (1 year) and, later, a
    // longer apiserver.crt on disk that the server has not loaded yet
    fs.mkdirSync(path.join(dir, 'pki'));
    const ca = selfSigned(path.join(dir, 'pki'), 'ca', 365 * 200, 'kubernetes');
    served = signedBy(dir, 'served', 365, 'kube-apiserver', ca);
    signedBy(path.join(dir, 'pki'), 'apiserver', 365 * 150, 'kube-apiserver', ca);
    server = tls.createServer({ cert: fs.readFileSync(served.cert), key: fs.readFileSync(served.key) }, (s) =>
      s.end(),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => {
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('reads the served certificate from the handshake, not the file, and fails it under --min-years', async () => {
    const live = await checkLiveApiserver({
      apiserver: `127.0.0.1:${port}`,
      pkiDir: path.join(dir, 'pki'),
      minYears: 10,
      procDir: path.join(dir, 'noproc'),
    });
    expect(live.endpoint).toBe(`127.0.0.1:${port}`);
    expect(live.served?.yearsLeft).toBeGreaterThan(0.9);
    expect(live.served?.yearsLeft).toBeLessThan(1.01);
    expect(live.served?.sameAsFile).toBe(false);
    expect(live.warnings.join('\n')).toMatch(/still serves a certificate .* restart kube-apiserver/);
    expect(live.problems).toEqual([
      `served by 127.0.0.1:${port}: ${live.served!.yearsLeft} years left, under --min-years 10`,
    ]);
    expect(formatLive(live)).toMatch(/serves kube-apiserver until .* NOT apiserver\.crt/);
  });

  it('a refused connection is a problem in the report, not a crash', async () => {
    const closed = tls.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const freePort = (closed.address() as { port: number }).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const live = await checkLiveApiserver({
      apiserver: `127.0.0.1:${freePort}`,
      pkiDir: dir,
      minYears: 0,
      procDir: path.join(dir, 'noproc'),
    });
    expect(live.served).toBeUndefined();
    expect(live.problems[0]).toMatch(/no certificate read: .*ECONNREFUSED/);
  });

  it('auto finds the kube-apiserver of this network namespace, connects to loopback, and dates the loopback certificate', async () => {
    // started 300 days before now (+1 min): the served certificate, made just now, is valid then
    const btime = Math.floor(Date.now() / 1000) - 3600 - 300 * 86_400 + 60;
    const proc = fakeProc(
      fs.mkdtempSync(path.join(dir, 'proc-')),
      [
        {
          pid: 4242,
          args: ['/usr/local/bin/kube-apiserver', '--advertise-address=10.0.0.10', `--secure-port=${port}`],
          startTicks: 360_000,
          net: 'net:[4026531840]',
        },
        { pid: 4343, args: ['kube-apiserver', '--secure-port=1'], startTicks: 1, net: 'net:[4026532999]' },
        { pid: 4444, args: ['etcd'], startTicks: 1, net: 'net:[4026531840]' },
      ],
      btime,
    );
    expect(findApiserverProcesses(proc).map((p) => p.pid)).toEqual([4242]);
    const started = new Date((btime + 3600) * 1000);
    const now = new Date(started.getTime() + 300 * dayMs);
    const live = await checkLiveApiserver({
      apiserver: 'auto',
      pkiDir: path.join(dir, 'pki'),
      minYears: 0,
      now,
      procDir: proc,
    });
    expect(live.endpoint).toBe(`127.0.0.1:${port}`);
    expect(live.loopback).toEqual({
      pid: 4242,
      startedAt: started.toISOString(),
      expiresAt: new Date(started.getTime() + 365 * dayMs - 3_600_000).toISOString(),
      restartBy: new Date(started.getTime() + 365 * dayMs - 3_600_000).toISOString().slice(0, 10),
      daysLeft: 64,
    });
    expect(live.warnings.some((w) => w.includes('kubernetes#86552') && w.includes('(64 days)'))).toBe(true);
    expect(live.problems).toEqual([]);
    const late = await checkLiveApiserver({
      apiserver: 'auto',
      pkiDir: path.join(dir, 'pki'),
      minYears: 0,
      now: new Date(started.getTime() + 366 * dayMs),
      procDir: proc,
    });
    expect(late.problems.join('\n')).toMatch(/loopback certificate .*expired, restart kube-apiserver now/);
  });

  it('auto with no API server here is skipped, none is skipped, and bad --apiserver is a usage error', async () => {
    const empty = fakeProc(fs.mkdtempSync(path.join(dir, 'proc-')), [], 1);
    expect(
      (await checkLiveApiserver({ apiserver: 'auto', pkiDir: dir, minYears: 0, procDir: empty })).skipped,
    ).toMatch(/no kube-apiserver process/);
    expect((await checkLiveApiserver({ apiserver: 'none', pkiDir: dir, minYears: 0 })).skipped).toBe(
      '--apiserver none',
    );
    await expect(
      checkLiveApiserver({ apiserver: 'host;rm -rf /:1', pkiDir: dir, minYears: 0 }),
    ).rejects.toThrow(/invalid --apiserver/);
    expect(() => parseEndpoint('[::1]:70000')).toThrow(/invalid --apiserver/);
    expect(parseEndpoint('[::1]:6443')).toEqual({ host: '::1', port: 6443 });
    expect(endpointOf(['kube-apiserver', '--bind-address', '10.1.2.3'])).toEqual({
      host: '10.1.2.3',
      port: 6443,
    });
    expect(endpointOf(['kube-apiserver', '--bind-address=0.0.0.0', '--secure-port=8443'])).toEqual({
      host: '127.0.0.1',
      port: 8443,
    });
  });
});
