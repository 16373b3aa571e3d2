import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { k8s1202VersionFile, runCli, type CliResult } from '../helpers/env.js';
import { makeMiniTree } from '../unit/fixtures/mini-tree.js';
import { tempDirs } from './pki-support.js';

// Every file path the tool writes its output to is a regular file or nothing yet, and for
// `check` never a file of the PKI it reads: a device, FIFO, socket, link, directory or a key
// there is refused with two lines before anything is written (real files, mknod as root).

const { tmp, cleanup } = tempDirs();
const servers: net.Server[] = [];
afterAll(() => {
  servers.forEach((s) => s.close());
  cleanup();
});

function expectRefused(r: CliResult, what: RegExp): void {
  expect(r.status, r.stderr).toBe(2);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines[lines.length - 2]).toMatch(what);
  expect(lines[lines.length - 1]).toMatch(/^next: .*nothing was written/);
}

let node: string;
let checkArgs: string[];
beforeAll(() => {
  node = tmp('out-node');
  expect(runCli(['ca', 'init', '--out', path.join(node, 'pki')]).status).toBe(0);
  fs.mkdirSync(path.join(node, 'kubelet'));
  checkArgs = [
    'check',
    '--pki-dir',
    path.join(node, 'pki'),
    '--kubeconfig-dir',
    node,
    '--kubelet-dir',
    path.join(node, 'kubelet'),
  ];
});

/** Special files of every kind in a fresh directory (a device only as root: mknod needs it). */
async function specials(): Promise<Record<string, string>> {
  const d = tmp('out-special');
  const files: Record<string, string> = {
    fifo: path.join(d, 'fifo.prom'),
    socket: path.join(d, 'socket.prom'),
    link: path.join(d, 'link.prom'),
    dir: path.join(d, 'dir.prom'),
  };
  expect(spawnSync('mkfifo', [files.fifo!]).status).toBe(0);
  const server = net.createServer();
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(files.socket!, resolve));
  fs.writeFileSync(path.join(d, 'target'), 'the link target\n');
  fs.symlinkSync(path.join(d, 'target'), files.link!);
  fs.mkdirSync(files.dir!);
  if (process.getuid?.() === 0) {
    files.device = path.join(d, 'null.prom');
    expect(spawnSync('mknod', [files.device, 'c', '1', '3']).status).toBe(0);
  }
  return files;
}

const kinds: Record<string, RegExp> = {
  fifo: /is a FIFO, not a regular file$/,
  socket: /is a socket, not a regular file$/,
  link: /is a symbolic link, not a regular file$/,
  dir: /is a directory, not a regular file$/,
  device: /is a character device, not a regular file$/,
};

describe('check --textfile', () => {
  it('refuses a key, a certificate or a kubeconfig of the PKI it checks, also through a link, and changes none', () => {
    const key = path.join(node, 'pki', 'ca.key');
    const keyBefore = fs.readFileSync(key);
    const conf = path.join(node, 'admin.conf');
    fs.writeFileSync(conf, 'kubeconfig\n', { mode: 0o600 });
    const viaLink = tmp('out-link');
    fs.symlinkSync(path.join(node, 'pki'), path.join(viaLink, 'pki'));
    for (const [file, what] of [
      [key, /--textfile .*pki\/ca\.key is inside --pki-dir /],
      [path.join(node, 'pki', 'etcd', 'new.prom'), /is inside --pki-dir /],
      [path.join(node, 'kubelet', 'm.prom'), /is inside --kubelet-dir /],
      [conf, /is inside --kubeconfig-dir /],
      [path.join(viaLink, 'pki', 'ca.crt'), /is inside --pki-dir /],
    ] as const) {
      expectRefused(
        runCli([...checkArgs, '--textfile', file]),
        new RegExp(`^error: --textfile .*${what.source.replace(/^--textfile \.\*/, '')}`),
      );
    }
    expect(fs.readFileSync(key)).toEqual(keyBefore);
    expect(fs.statSync(key).mode & 0o777).toBe(0o600);
    expect(fs.existsSync(path.join(node, 'pki', 'etcd', 'new.prom'))).toBe(false);
    expect(fs.readFileSync(conf, 'utf8')).toBe('kubeconfig\n');
  });

  it('refuses a device, FIFO, socket, link or directory and leaves it as it was', async () => {
    const files = await specials();
    for (const [kind, file] of Object.entries(files)) {
      expectRefused(runCli([...checkArgs, '--textfile', file]), kinds[kind]!);
      const st = fs.lstatSync(file);
      if (kind === 'fifo') expect(st.isFIFO()).toBe(true);
      if (kind === 'socket') expect(st.isSocket()).toBe(true);
      if (kind === 'link') expect(st.isSymbolicLink()).toBe(true);
      if (kind === 'dir') expect(st.isDirectory()).toBe(true);
      if (kind === 'device') expect(st.isCharacterDevice()).toBe(true);
    }
    expect(fs.readFileSync(path.join(path.dirname(files.link!), 'target'), 'utf8')).toBe('the link target\n');
  });

  it('still writes a regular file, new or existing', () => {
    const d = tmp('out-ok');
    const prom = path.join(d, 'kf.prom');
    fs.writeFileSync(prom, 'old\n');
    const r = runCli([...checkArgs, '--textfile', prom]);
    expect(r.status, r.stderr).toBe(0);
    expect(fs.readFileSync(prom, 'utf8')).toMatch(/^# HELP /);
  });
});

describe('bundle export --out', () => {
  it('refuses a FIFO, device, socket or link before looking at the cache', async () => {
    const files = await specials();
    const cacheDir = tmp('out-cache');
    for (const [kind, file] of Object.entries(files)) {
      expectRefused(runCli(['bundle', 'export', '--out', file, '--cache-dir', cacheDir]), kinds[kind]!);
    }
  });
});

describe('build --out', () => {
  it('refuses a FIFO, device, socket, link or directory before the engine or a container is used', async () => {
    const files = await specials();
    const tree = makeMiniTree();
    try {
      for (const [kind, file] of Object.entries(files)) {
        const r = runCli(
          ['build', '--source-dir', tree, '--version-file', k8s1202VersionFile, '--out', file, '--no-cache'],
          {
            env: { DOCKER_HOST: 'unix:///nonexistent/docker.sock' },
          },
        );
        expectRefused(r, kinds[kind]!);
      }
    } finally {
      fs.rmSync(tree, { recursive: true, force: true });
    }
  });
});
