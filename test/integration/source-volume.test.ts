import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packFiles, readOneFile } from '../../src/adapters/archive.js';
import { SOURCE_MARKER_FILE, SOURCE_VOLUME_FORMAT } from '../../src/core/source-volume.js';
import { sourceVolumes } from '../helpers/source-volumes.js';
import { cliPath, goImage, runCli, skipDockerTests, type CliResult } from '../helpers/env.js';
import { docker, leftoverContainers, makeFixtureRepo, tempDir, type FixtureRepo } from './docker-helpers.js';

// The per-source volume on a real engine: filled once, reused by rebuilds with other validities,
// every patch target written back by each build, filled again when its marker is wrong, not
// used with --no-source-volume, and shared safely by two builds at once.

const FILL = /filling source volume (kubeadm-forever-src-[0-9a-f]{24})/;

function sha(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** The source volumes holding `commit` (this file's fixture repository). */
function volumesOf(commit: string): string[] {
  return sourceVolumes()
    .filter((v) => v.source.includes(commit))
    .map((v) => v.name);
}

describe.skipIf(skipDockerTests)('source volume on a real Docker engine', () => {
  let work: string;
  let repo: FixtureRepo;
  let volume = '';

  beforeAll(() => {
    work = tempDir('kf-it-srcvol-');
    // a new commit per run: its volume is new too
    repo = makeFixtureRepo(work, 'gopath');
  });

  afterAll(async () => {
    for (const v of volumesOf(repo.commit)) await docker.getVolume(v).remove();
    fs.rmSync(work, { recursive: true, force: true });
    expect(await leftoverContainers()).toEqual([]);
  });

  function args(out: string, extra: string[]): string[] {
    return [
      'build',
      '--verbose',
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
      path.join(work, 'cache'),
      ...extra,
    ];
  }

  function build(out: string, extra: string[] = []): CliResult {
    const r = runCli(args(out, extra), { timeout: 10 * 60_000 });
    if (r.status !== 0) throw new Error(`build failed (${r.status}):\n${r.stderr}`);
    return r;
  }

  it(
    'fills the volume on the first build only; a rebuild with another validity reuses it',
    () => {
      const first = build(path.join(work, 'k-199y'));
      volume = FILL.exec(first.stderr)?.[1] ?? '';
      expect(volume).not.toBe('');
      const second = build(path.join(work, 'k-100y'), ['--validity', '100y']);
      expect(second.stderr).not.toMatch(FILL);
      // verify ran the binary: its leaf certificates really are 100 years
      expect(second.stdout).toContain('verify: passed');
      expect(second.stdout).toMatch(/leaf 100y/);
    },
    10 * 60_000,
  );

  it(
    'writes every patch target back: the first validity again gives the first bytes',
    () => {
      const again = build(path.join(work, 'k-199y-again'), ['--no-cache']);
      expect(again.stderr).not.toMatch(FILL);
      expect(sha(path.join(work, 'k-199y-again'))).toBe(sha(path.join(work, 'k-199y')));
    },
    10 * 60_000,
  );

  /** Writes `text` as the volume's marker (undefined: removes it), as a fill cut short or another tool would leave it. */
  async function setMarker(text: string | undefined): Promise<void> {
    const cmd = text === undefined ? ['rm', '-f', `/src/${SOURCE_MARKER_FILE}`] : ['true'];
    const c = await docker.createContainer({
      Image: goImage,
      Cmd: cmd,
      HostConfig: { Mounts: [{ Type: 'volume', Source: volume, Target: '/src' }] },
    });
    try {
      if (text !== undefined)
        await c.putArchive(packFiles(new Map([[`src/${SOURCE_MARKER_FILE}`, text]])), { path: '/' });
      else {
        await c.start();
        await c.wait();
      }
    } finally {
      await c.remove({ v: true });
    }
  }

  async function getMarker(): Promise<string> {
    const c = await docker.createContainer({
      Image: goImage,
      Cmd: ['cat', `/src/${SOURCE_MARKER_FILE}`],
      HostConfig: { Mounts: [{ Type: 'volume', Source: volume, Target: '/src' }] },
    });
    try {
      const tar = await c.getArchive({ path: `/src/${SOURCE_MARKER_FILE}` });
      return (await readOneFile(tar, SOURCE_MARKER_FILE)) ?? '';
    } finally {
      await c.remove({ v: true });
    }
  }

  it('the marker records the content and a digest of the filled files', async () => {
    const m = JSON.parse(await getMarker()) as {
      format: number;
      content: string;
      files: string;
      count: number;
    };
    expect(m.format).toBe(SOURCE_VOLUME_FORMAT);
    expect(m.content).toMatch(new RegExp(`^git:${repo.commit}:[0-9a-f]{40} \\./cmd/kubeadm$`));
    expect(m.files).toMatch(/^[0-9a-f]{64}$/);
    expect(m.count).toBeGreaterThan(5);
  });

  it(
    'fills again when the marker is missing (a fill cut short) or records other files of this source',
    async () => {
      const marker = await getMarker();
      await setMarker(undefined);
      const r = build(path.join(work, 'k-199y-refilled'), ['--no-cache']);
      expect(FILL.exec(r.stderr)?.[1]).toBe(volume);
      expect(sha(path.join(work, 'k-199y-refilled'))).toBe(sha(path.join(work, 'k-199y')));
      expect(await getMarker()).toBe(marker);

      const m = JSON.parse(marker) as Record<string, unknown>;
      await setMarker(`${JSON.stringify({ ...m, files: '0'.repeat(64) })}\n`);
      const again = build(path.join(work, 'k-199y-refilled-2'), ['--no-cache']);
      expect(FILL.exec(again.stderr)?.[1]).toBe(volume);
      expect(sha(path.join(work, 'k-199y-refilled-2'))).toBe(sha(path.join(work, 'k-199y')));
      expect(await getMarker()).toBe(marker);
    },
    10 * 60_000,
  );

  it(
    'refuses a volume whose marker names another source or format: nothing built, the volume untouched',
    async () => {
      const marker = await getMarker();
      const m = JSON.parse(marker) as Record<string, unknown>;
      for (const foreign of [{ ...m, content: 'dir:tree2:0000 ./cmd/kubeadm' }, { format: 1 }]) {
        await setMarker(`${JSON.stringify(foreign)}\n`);
        const out = path.join(work, 'k-refused');
        const r = runCli(args(out, ['--no-cache']), { timeout: 10 * 60_000 });
        expect(r.status).toBe(1);
        expect(r.stderr).toMatch(
          new RegExp(`^error: source volume ${volume} does not hold this source: its marker `, 'm'),
        );
        expect(r.stderr).toMatch(/^next: remove the volume \(kubeadm-forever cache volumes --remove/m);
        expect(fs.existsSync(out)).toBe(false);
        expect(await getMarker()).toBe(`${JSON.stringify(foreign)}\n`);
      }
      await setMarker(marker);
    },
    10 * 60_000,
  );

  it(
    '--no-source-volume streams the tree into the container and leaves no volume behind',
    async () => {
      for (const v of volumesOf(repo.commit)) await docker.getVolume(v).remove();
      const r = build(path.join(work, 'k-50y'), ['--validity', '50y', '--no-source-volume']);
      expect(r.stderr).not.toMatch(FILL);
      expect(r.stdout).toContain('verify: passed');
      expect(volumesOf(repo.commit)).toEqual([]);
    },
    10 * 60_000,
  );

  it(
    'a build waits while another holds the volume (its named container), then uses it',
    async () => {
      // the holder stands for a running build of this process (alive), so it is not "abandoned"
      const holder = await docker.createContainer({
        name: `${volume}-build`,
        Image: goImage,
        Cmd: ['true'],
        Labels: {
          'kubeadm-forever': '1',
          'kubeadm-forever.pid': String(process.pid),
          'kubeadm-forever.host': os.hostname(),
        },
      });
      const child = spawn(
        process.execPath,
        [cliPath, ...args(path.join(work, 'k-30y'), ['--validity', '30y'])],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
      try {
        const deadline = Date.now() + 120_000;
        while (!/another build of the same source holds volume/.test(stderr) && Date.now() < deadline)
          await sleep(200);
        expect(stderr).toContain(
          `another build of the same source holds volume ${volume} (container ${volume}-build); waiting for it`,
        );
        // still waiting a while later
        await sleep(3000);
        expect(child.exitCode).toBeNull();
      } finally {
        await holder.remove({ force: true });
      }
      expect(await closed).toBe(0);
      expect(stdout).toMatch(/leaf 30y/);
      expect(stdout).toContain('verify: passed');
    },
    10 * 60_000,
  );

  it(
    'a container left by a dead run of this host is removed instead of waited for',
    async () => {
      const dead = spawn(process.execPath, ['-e', '0']);
      const deadPid = dead.pid!;
      await new Promise((r) => dead.on('close', r));
      await docker.createContainer({
        name: `${volume}-build`,
        Image: goImage,
        Cmd: ['true'],
        Labels: {
          'kubeadm-forever': '1',
          'kubeadm-forever.pid': String(deadPid),
          'kubeadm-forever.host': os.hostname(),
        },
      });
      const r = build(path.join(work, 'k-40y'), ['--validity', '40y']);
      expect(r.stderr).not.toMatch(/holds volume/);
      expect(r.stdout).toMatch(/leaf 40y/);
      expect(volumesOf(repo.commit)).toEqual([volume]);
    },
    10 * 60_000,
  );

  it(
    'a build waiting for a holder whose run dies (killed, no cleanup) removes its container and goes on',
    async () => {
      const holderRun = spawn('sleep', ['600']);
      await docker.createContainer({
        name: `${volume}-build`,
        Image: goImage,
        Cmd: ['true'],
        Labels: {
          'kubeadm-forever': '1',
          'kubeadm-forever.pid': String(holderRun.pid),
          'kubeadm-forever.host': os.hostname(),
        },
      });
      const child = spawn(
        process.execPath,
        [cliPath, ...args(path.join(work, 'k-45y'), ['--validity', '45y'])],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
      try {
        const deadline = Date.now() + 120_000;
        while (!/holds volume/.test(stderr) && Date.now() < deadline) await sleep(200);
        expect(stderr).toContain(`holds volume ${volume}`);
      } finally {
        holderRun.kill('SIGKILL');
      }
      // nobody removes the holder's container: the waiting build finds its run gone
      expect(await closed).toBe(0);
      expect(stdout).toMatch(/leaf 45y/);
    },
    10 * 60_000,
  );

  it(
    'cache volumes lists the kept volume with its source; --remove removes it, the next build fills it again',
    () => {
      const listed = runCli(['cache', 'volumes', '--json']);
      expect(listed.status).toBe(0);
      const rows = JSON.parse(listed.stdout) as Array<{ name: string; source: string }>;
      expect(rows.find((r) => r.name === volume)?.source).toContain(repo.commit);
      const human = runCli(['cache', 'volumes']);
      expect(human.stdout).toMatch(new RegExp(`^${volume}\\s+git:${repo.commit}`, 'm'));

      const removed = runCli(['cache', 'volumes', '--remove', '--json']);
      expect(removed.status).toBe(0);
      expect(JSON.parse(removed.stdout)).toEqual(
        expect.arrayContaining([expect.objectContaining({ name: volume, result: 'removed' })]),
      );
      expect(
        JSON.parse(runCli(['cache', 'volumes', '--json']).stdout).map((r: { name: string }) => r.name),
      ).not.toContain(volume);

      const r = build(path.join(work, 'k-60y'), ['--validity', '60y']);
      expect(FILL.exec(r.stderr)?.[1]).toBe(volume);
    },
    10 * 60_000,
  );

  it('cache volumes with the engine stopped: two-line error naming DOCKER_HOST', () => {
    const r = runCli(['cache', 'volumes'], { env: { DOCKER_HOST: 'tcp://127.0.0.1:1' } });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^error: Docker engine unreachable at tcp:\/\/127\.0\.0\.1:1/m);
    expect(r.stderr).toMatch(/^next: /m);
  });
});
