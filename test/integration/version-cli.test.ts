import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot, runCli, skipDockerTests } from '../helpers/env.js';

// `version` against the real engine, a missing socket and a TCP listener that never answers.

const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
const dockerodeVersion = (
  JSON.parse(fs.readFileSync(path.join(repoRoot, 'node_modules/dockerode/package.json'), 'utf8')) as {
    version: string;
  }
).version;

const silent = net.createServer(() => undefined); // accepts connections, never replies
afterAll(() => silent.close());

describe('version', () => {
  it('--version prints the package version alone', () => {
    const r = runCli(['--version']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${pkg.version}\n`);
    expect(r.stderr).toBe('');
  });

  it.skipIf(skipDockerTests)(
    'version --json names the tool, Node, dockerode and the engine with its API version',
    () => {
      const r = runCli(['version', '--json']);
      expect(r.status).toBe(0);
      const doc = JSON.parse(r.stdout);
      const api = execFileSync('docker', ['version', '--format', '{{.Server.APIVersion}}'], {
        encoding: 'utf8',
      }).trim();
      const server = execFileSync('docker', ['version', '--format', '{{.Server.Version}}'], {
        encoding: 'utf8',
      }).trim();
      expect(doc).toEqual({
        tool: 'kubeadm-forever',
        version: pkg.version,
        node: process.version,
        dockerode: dockerodeVersion,
        engine: {
          reachable: true,
          host: expect.any(String),
          version: server,
          apiVersion: api,
          os: 'linux',
          arch: expect.any(String),
        },
      });
      const human = runCli(['version']);
      expect(human.stdout).toContain(`kubeadm-forever ${pkg.version}\n`);
      expect(human.stdout).toContain(`(API ${api}, linux/`);
    },
  );

  it('says plainly that the engine is unreachable and still exits 0', () => {
    const r = runCli(['version', '--json'], { env: { DOCKER_HOST: 'unix:///nonexistent/docker.sock' } });
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.engine).toEqual({
      reachable: false,
      host: 'unix:///nonexistent/docker.sock',
      error: expect.stringMatching(/unreachable at unix:\/\/\/nonexistent.*ENOENT/),
    });
    const human = runCli(['version'], { env: { DOCKER_HOST: 'unix:///nonexistent/docker.sock' } });
    expect(human.status).toBe(0);
    expect(human.stdout).toMatch(/^docker engine: not reachable \(.*nonexistent/m);
  });

  it('gives up on an engine that never answers after --timeout', async () => {
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as net.AddressInfo).port;
    // the spawn's own timeout is the bound: without the engine timeout this would hang
    const r = runCli(['version', '--json', '--timeout', '1'], {
      env: { DOCKER_HOST: `tcp://127.0.0.1:${port}` },
      timeout: 20_000,
    });
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).engine).toMatchObject({ reachable: false, host: `tcp://127.0.0.1:${port}` });
  });

  it('refuses a bad --timeout with the two-line error', () => {
    const r = runCli(['version', '--timeout', '-1']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^error: invalid --timeout "-1"\nnext: .+\n$/);
  });
});
