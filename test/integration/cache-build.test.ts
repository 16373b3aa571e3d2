import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuildCache } from '../../src/carry/cache/build-cache.js';
import { parseBinaryHeader, readBinaryHead } from '../../src/carry/cache/elf.js';
import { resolveValidityPair } from '../../src/core/validity.js';
import { versionInfoFromFlags } from '../../src/core/version.js';
import { runBuildPipeline } from '../../src/build/index.js';
import { describeVerify, type VerifyReport } from '../../src/build/verify.js';
import { cliPath, goImage, repoRoot, skipDockerTests } from '../helpers/env.js';
import { docker, leftoverContainers, makeFixtureRepo, tempDir, type FixtureRepo } from './docker-helpers.js';

// The binary cache inside real builds: the Kubernetes-shaped GOPATH fixture, a real engine,
// real Go. Containers are counted from the engine's own event log, by the pid label the tool
// puts on every container it creates (other runs sharing the engine are not counted).

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  pid: number;
  ms: number;
  doc: Record<string, unknown> & {
    binaries?: {
      binary: string;
      platform: string;
      cached: boolean;
      verify: VerifyReport;
      manifest: string;
    }[];
  };
}

function cli(args: string[]): Promise<Run> {
  const t0 = Date.now();
  const child = spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) =>
    child.on('close', (status) => {
      let doc = {};
      try {
        doc = JSON.parse(stdout);
      } catch {
        /* not --json or failed */
      }
      resolve({ status, stdout, stderr, pid: child.pid!, ms: Date.now() - t0, doc });
    }),
  );
}

/** Containers created by the process `pid` between `since` (s) and now, from engine events. */
async function containersCreatedBy(pid: number, since: number): Promise<number> {
  const until = Math.ceil(Date.now() / 1000) + 1;
  const stream = await docker.getEvents({
    since,
    until,
    filters: { type: ['container'], event: ['create'], label: [`kubeadm-forever.pid=${pid}`] },
  });
  let text = '';
  for await (const chunk of stream as AsyncIterable<Buffer>) text += chunk.toString();
  return text.split('\n').filter((l) => l.trim() !== '').length;
}

const sha = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');
const now = () => Math.floor(Date.now() / 1000);

describe.skipIf(skipDockerTests)('binary cache in real builds', () => {
  let work: string;
  let repo: FixtureRepo;
  let cacheDir: string;
  const buildArgs = (out: string, extra: string[] = []) => [
    'build',
    '--json',
    '--kubernetes-version',
    'v1.20.2',
    '--commit',
    repo.commit,
    '--go-version',
    '1.19.8',
    '--image',
    goImage,
    '--repo',
    repo.dir,
    '--out',
    out,
    '--cache-dir',
    cacheDir,
    ...extra,
  ];

  beforeAll(() => {
    work = tempDir('kf-it-cache-');
    repo = makeFixtureRepo(work, 'gopath');
    cacheDir = path.join(work, 'cache');
  });
  afterAll(async () => {
    fs.rmSync(work, { recursive: true, force: true });
    expect(await leftoverContainers()).toEqual([]);
  });

  it(
    '--platform linux/amd64,linux/arm64: an x86-64 and an aarch64 ELF, both verified (arm64 under qemu), each cached',
    async () => {
      const out = path.join(work, 'kubeadm');
      const t0 = now();
      const r = await cli(buildArgs(out, ['--platform', 'linux/amd64,linux/arm64']));
      expect(r.stderr).toBe(r.status === 0 ? r.stderr : '<failed>');
      expect(r.status).toBe(0);
      expect(await containersCreatedBy(r.pid, t0)).toBe(2); // one per platform, from one source copy
      const amd = parseBinaryHeader(await readBinaryHead(`${out}-linux-amd64`));
      const arm = parseBinaryHeader(await readBinaryHead(`${out}-linux-arm64`));
      expect([amd?.machine, arm?.machine]).toEqual([62, 183]);
      expect(fs.existsSync(out)).toBe(false);
      const bins = r.doc.binaries!;
      // scripts/test-env.sh installs qemu-user-static: the arm64 binary runs under it here
      expect(bins.map((b) => [b.platform, b.cached, b.verify.executed, b.verify.execution])).toEqual([
        ['linux/amd64', false, true, 'native'],
        ['linux/arm64', false, true, 'emulated'],
      ]);
      expect(bins[1]!.verify.emulator).toMatch(/qemu-aarch64/);
      for (const b of bins) {
        console.log(`${b.platform}:\n${describeVerify(b.verify).join('\n')}`);
        expect(b.verify).toMatchObject({ passed: true, failures: [] });
        expect(b.verify.version).toMatchObject({ gitVersion: 'v1.20.2', platform: b.platform, ok: true });
        // the fixture's kubeadm writes kubeadm's three CAs and five of its leaves
        expect(b.verify.certificates.map((c) => [c.file, c.kind, c.ok, Math.round(c.years)])).toEqual([
          ['apiserver-kubelet-client.crt', 'leaf', true, 199],
          ['apiserver.crt', 'leaf', true, 199],
          ['ca.crt', 'ca', true, 200],
          ['etcd/ca.crt', 'ca', true, 200],
          ['etcd/peer.crt', 'leaf', true, 199],
          ['etcd/server.crt', 'leaf', true, 199],
          ['front-proxy-ca.crt', 'ca', true, 200],
          ['front-proxy-client.crt', 'leaf', true, 199],
        ]);
        expect(b.verify.seconds).toBeGreaterThan(0);
        // the cache manifest says how it was verified
        const m = JSON.parse(fs.readFileSync(b.manifest, 'utf8'));
        expect(m.verification).toEqual({
          how: b.verify.execution,
          ...(b.verify.emulator ? { emulator: b.verify.emulator } : {}),
          seconds: b.verify.seconds,
          passed: true,
        });
      }
      // `verify` alone reads the platform from the ELF header: the arm64 binary goes to qemu,
      // and with --emulator none it is not executed (never passed)
      const target = ['--kubernetes-version', 'v1.20.2', '--commit', repo.commit];
      const alone = await cli(['verify', `${out}-linux-arm64`, '--json', ...target]);
      expect(alone.status).toBe(0);
      expect(alone.doc).toMatchObject({ executed: true, execution: 'emulated', passed: true });
      const none = await cli(['verify', `${out}-linux-arm64`, '--json', '--emulator', 'none', ...target]);
      expect(none.status).toBe(0);
      expect(none.doc).toMatchObject({ executed: false, execution: 'not executed', passed: false });
      const ls = JSON.parse((await cli(['cache', 'ls', '--json', '--cache-dir', cacheDir])).stdout) as {
        platform: string;
        sha256: string;
      }[];
      expect(ls.map((e) => e.platform).sort()).toEqual(['linux/amd64', 'linux/arm64']);
      expect(ls.find((e) => e.platform === 'linux/arm64')!.sha256).toBe(sha(`${out}-linux-arm64`));
    },
    15 * 60_000,
  );

  it(
    'a second identical build is a hit: no container, same sha256, under 1.5 s of the tool own time',
    async () => {
      const first = path.join(work, 'kubeadm-linux-amd64');
      const out = path.join(work, 'kubeadm-hit');
      const t0 = now();
      const r = await cli(buildArgs(out, ['--platform', 'linux/amd64']));
      expect(r.status).toBe(0);
      expect(r.doc).toMatchObject({ cached: true, sha256: sha(first) });
      expect(sha(out)).toBe(sha(first));
      expect(await containersCreatedBy(r.pid, t0)).toBe(0);
      expect(fs.existsSync(r.doc.manifest as string)).toBe(true);
      // the pipeline alone, in process (node start-up excluded): the tool's own time
      const t = performance.now();
      const res = await runBuildPipeline({
        version: versionInfoFromFlags({
          kubernetesVersion: 'v1.20.2',
          commit: repo.commit,
          goVersion: '1.19.8',
        }),
        validity: resolveValidityPair(),
        platforms: [{ os: 'linux', arch: 'amd64' }],
        image: goImage,
        source: { kind: 'git', repo: repo.dir, commit: repo.commit },
        out: path.join(work, 'kubeadm-hit-2'),
        cacheDir,
        goCacheVolume: 'kubeadm-forever-gocache',
        verify: true,
        cache: new BuildCache(cacheDir),
      });
      const ms = performance.now() - t;
      expect(res.binaries[0]!.cached).toBe(true);
      expect(ms).toBeLessThan(1500);
      console.log(`cache hit: ${ms.toFixed(0)} ms in process, ${r.ms} ms for the whole CLI process`);
    },
    5 * 60_000,
  );

  it(
    'a corrupt entry is reported, rebuilt in a container, and sound again',
    async () => {
      const entry = (
        JSON.parse((await cli(['cache', 'ls', '--json', '--cache-dir', cacheDir])).stdout) as {
          platform: string;
          path: string;
        }[]
      ).find((e) => e.platform === 'linux/amd64')!;
      const fd = fs.openSync(entry.path, 'r+');
      fs.writeSync(fd, Buffer.from('CORRUPT'), 0, 7, 4096);
      fs.closeSync(fd);
      const t0 = now();
      const r = await cli(buildArgs(path.join(work, 'kubeadm-rebuilt'), ['--platform', 'linux/amd64']));
      expect(r.status).toBe(0);
      expect(r.stderr).toMatch(
        /warning: cache entry [0-9a-f]{64} \(linux\/amd64\) is corrupt: sha256 .* differs .*rebuilding/,
      );
      expect(r.doc.cached).toBe(false);
      expect(await containersCreatedBy(r.pid, t0)).toBe(1);
      const again = await cli(buildArgs(path.join(work, 'kubeadm-again'), ['--platform', 'linux/amd64']));
      expect(again.doc).toMatchObject({ cached: true, sha256: r.doc.sha256 });
    },
    15 * 60_000,
  );

  it(
    'two builds of one new key at once: one container, the other waits and hits; --no-cache builds',
    async () => {
      const t0 = now();
      const extra = ['--platform', 'linux/amd64', '--validity', '150y'];
      const [a, b] = await Promise.all([
        cli(buildArgs(path.join(work, 'race-a'), extra)),
        cli(buildArgs(path.join(work, 'race-b'), extra)),
      ]);
      expect([a.status, b.status]).toEqual([0, 0]);
      const created = [await containersCreatedBy(a.pid, t0), await containersCreatedBy(b.pid, t0)];
      expect(created.sort()).toEqual([0, 1]);
      expect([a.doc.cached, b.doc.cached].sort()).toEqual([false, true]);
      expect(a.doc.sha256).toBe(b.doc.sha256);
      expect(sha(path.join(work, 'race-a'))).toBe(sha(path.join(work, 'race-b')));
      expect(fs.readdirSync(path.join(cacheDir, 'locks'))).toEqual([]);

      const t1 = now();
      const forced = await cli(buildArgs(path.join(work, 'forced'), [...extra, '--no-cache']));
      expect(forced.status).toBe(0);
      expect(forced.doc.cached).toBe(false);
      expect(await containersCreatedBy(forced.pid, t1)).toBe(1);
    },
    20 * 60_000,
  );

  it(
    'examples/airgap.sh runs end to end: version file -> build -> export -> verify -> import -> verify the binary',
    () => {
      const airgap = path.join(work, 'airgap');
      const versionFile = path.join(work, 'kubeadm-version.json');
      fs.writeFileSync(
        versionFile,
        JSON.stringify(
          {
            clientVersion: {
              major: '1',
              minor: '20',
              gitVersion: 'v1.20.2',
              gitCommit: repo.commit,
              gitTreeState: 'clean',
              buildDate: '2021-01-13T13:25:59Z',
              goVersion: 'go1.19.8',
              compiler: 'gc',
              platform: 'linux/amd64',
            },
          },
          null,
          2,
        ),
      );
      const stdout = execFileSync('bash', [path.join(repoRoot, 'examples/airgap.sh')], {
        env: {
          ...process.env,
          KF: `${process.execPath} ${cliPath}`,
          VERSION_FILE: versionFile,
          BUILD_ARGS: `--image ${goImage} --repo ${repo.dir}`,
          WORK: airgap,
          OUTSIDE_CACHE: cacheDir,
        },
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 15 * 60_000,
      });
      expect(stdout.trim()).toBe(airgap);
      const built = JSON.parse(fs.readFileSync(path.join(airgap, 'build.json'), 'utf8')) as {
        sha256: string;
      };
      const imported = JSON.parse(fs.readFileSync(path.join(airgap, 'import.json'), 'utf8')) as {
        sha256: string;
        status: string;
      }[];
      expect(imported).toEqual([expect.objectContaining({ sha256: built.sha256, status: 'imported' })]);
      expect(sha(path.join(airgap, 'inside/kubeadm-custom'))).toBe(built.sha256);
      const inside = JSON.parse(
        execFileSync(
          process.execPath,
          [cliPath, 'cache', 'ls', '--json', '--cache-dir', path.join(airgap, 'inside-cache')],
          { encoding: 'utf8' },
        ),
      );
      expect(inside.map((e: { sha256: string }) => e.sha256)).toEqual([built.sha256]);
    },
    15 * 60_000,
  );
});
