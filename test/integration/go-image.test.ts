import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { goDebsDir, runCli, skipDockerTests } from '../helpers/env.js';
import { docker, leftoverContainers, makeFixtureRepo, tempDir, type FixtureRepo } from './docker-helpers.js';

// `kubeadm-forever image` on the real engine: an image made from Debian's Go 1.19 GOROOT
// (/usr/lib/go-1.19, whose src is a relative link into /usr/share/go-1.19) builds the
// GOPATH-mode fixture through `build`; bad toolchains are refused with two lines and no image.

const DEBIAN_GOROOT = '/usr/lib/go-1.19';
const goDebs = goDebsDir;

/** Images this command made (its label), by id: other runs sharing the engine make other images. */
async function imageIds(): Promise<string[]> {
  return (await docker.listImages({ all: true, filters: { label: ['kubeadm-forever.go-version'] } }))
    .map((i) => i.Id)
    .sort();
}

function twoLineError(stderr: string): void {
  const lines = stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(2);
  expect(lines[0]).toMatch(/^error: /);
  expect(lines[1]).toMatch(/^next: /);
}

describe.skipIf(skipDockerTests)('image: a Go builder image from a local toolchain', () => {
  let work: string;
  let repo: FixtureRepo;
  // unique per run: several runs may share the engine; removed at the end
  const tag = `kubeadm-forever-test/golang:1.19.8-${process.pid}`;

  beforeAll(() => {
    if (!fs.existsSync(path.join(DEBIAN_GOROOT, 'bin/go')))
      throw new Error(
        `Debian's Go 1.19 missing at ${DEBIAN_GOROOT}: run 'sudo bash scripts/test-env.sh up' first`,
      );
    work = tempDir('kf-it-image-');
    repo = makeFixtureRepo(work, 'gopath');
  });

  afterAll(async () => {
    for (const t of [`${tag}-more`, tag]) {
      await docker
        .getImage(t)
        .remove()
        .catch(() => undefined);
    }
    fs.rmSync(work, { recursive: true, force: true });
    expect(await leftoverContainers()).toEqual([]);
  });

  it(
    "makes an image from Debian's Go 1.19 GOROOT that builds the GOPATH fixture, verified",
    async () => {
      const r = runCli(['image', '--json', '--goroot', DEBIAN_GOROOT, '--tag', tag], {
        timeout: 10 * 60_000,
      });
      expect(r.stderr).toBe(r.status === 0 ? r.stderr : '<image failed>');
      expect(r.status).toBe(0);
      const doc = JSON.parse(r.stdout);
      expect(doc).toMatchObject({ goVersion: 'go1.19.8', tags: [tag], created: true });
      // Debian's go 1.19 is dynamically linked: its libc and loader come along
      expect(doc.libraries).toContain('/lib64/ld-linux-x86-64.so.2');
      const info = await docker.getImage(tag).inspect();
      expect(info.Id).toBe(doc.id);
      expect(info.Config.Env).toEqual(expect.arrayContaining(['PATH=/usr/local/go/bin:/bin', 'GOPATH=/go']));
      expect(info.Config.Labels).toMatchObject({ 'kubeadm-forever.go-version': 'go1.19.8' });
      // the standard library source came through the link into /usr/share/go-1.19, as files
      const ls = execFileSync(
        'docker',
        [
          'run',
          '--rm',
          '--network',
          'none',
          tag,
          'sh',
          '-c',
          'test -f /usr/local/go/src/runtime/proc.go && test ! -L /usr/local/go/src && go version',
        ],
        { encoding: 'utf8' },
      );
      expect(ls.trim()).toBe('go version go1.19.8 linux/amd64');

      const out = path.join(work, 'kubeadm');
      const b = runCli(
        [
          'build',
          '--json',
          '--kubernetes-version',
          'v1.20.2',
          '--commit',
          repo.commit,
          '--go-version',
          '1.19.8',
          '--image',
          tag,
          '--repo',
          repo.dir,
          '--out',
          out,
          '--cache-dir',
          path.join(work, 'cache'),
        ],
        { timeout: 10 * 60_000 },
      );
      expect(b.stderr).toBe(b.status === 0 ? b.stderr : '<build failed>');
      expect(b.status).toBe(0);
      expect(JSON.parse(b.stdout)).toMatchObject({
        image: tag,
        imageId: doc.id,
        goVersion: 'go1.19.8',
        verify: { executed: true, passed: true },
      });

      // made again with --keep-existing: nothing new; a tag that is missing is added to that image
      const again = runCli(['image', '--json', '--goroot', DEBIAN_GOROOT, '--tag', tag, '--keep-existing']);
      expect(again.status).toBe(0);
      expect(JSON.parse(again.stdout)).toMatchObject({ created: false, id: doc.id });
      const more = runCli([
        'image',
        '--json',
        '--goroot',
        DEBIAN_GOROOT,
        '--tag',
        tag,
        '--tag',
        `${tag}-more`,
        '--keep-existing',
      ]);
      expect(more.status).toBe(0);
      expect(JSON.parse(more.stdout)).toMatchObject({ created: false, id: doc.id });
      expect((await docker.getImage(`${tag}-more`).inspect()).Id).toBe(doc.id);
    },
    15 * 60_000,
  );

  it('refuses a directory that is no GOROOT, with two lines, creating no image', async () => {
    const notGo = path.join(work, 'not-a-goroot');
    fs.mkdirSync(path.join(notGo, 'bin'), { recursive: true });
    fs.writeFileSync(path.join(notGo, 'README'), 'hello\n');
    const before = await imageIds();
    const r = runCli(['image', '--goroot', notGo, '--tag', `${tag}-bad`]);
    expect(r.status).toBe(2);
    twoLineError(r.stderr);
    expect(r.stderr).toContain(`error: ${notGo} is no Go root: bin/go is missing`);
    expect(r.stdout).toBe('');
    // a GOROOT without its standard library source (golang-1.NN-go without -src)
    fs.writeFileSync(path.join(notGo, 'bin/go'), '#!/bin/sh\n', { mode: 0o755 });
    const noSrc = runCli(['image', '--goroot', notGo, '--tag', `${tag}-bad`]);
    expect(noSrc.status).toBe(2);
    twoLineError(noSrc.stderr);
    expect(noSrc.stderr).toContain('has no Go standard library source (src/runtime is missing)');
    // a link out of the GOROOT is not followed
    fs.mkdirSync(path.join(notGo, 'src/runtime'), { recursive: true });
    fs.symlinkSync('/etc', path.join(notGo, 'src/escape'));
    const escape = runCli(['image', '--goroot', notGo, '--tag', `${tag}-bad`]);
    expect(escape.status).toBe(2);
    twoLineError(escape.stderr);
    expect(escape.stderr).toContain('src/escape in');
    expect(escape.stderr).toContain('links outside the Go root (/etc)');
    expect(await imageIds()).toEqual(before);
  });

  it('refuses a .deb that is not Go, and a file that is no .deb, with two lines, creating no image', async () => {
    const pkg = path.join(work, 'pkg');
    fs.mkdirSync(path.join(pkg, 'DEBIAN'), { recursive: true });
    fs.mkdirSync(path.join(pkg, 'usr/lib/go-1.22/bin'), { recursive: true });
    fs.writeFileSync(path.join(pkg, 'usr/lib/go-1.22/bin/go'), '#!/bin/sh\n', { mode: 0o755 });
    fs.writeFileSync(
      path.join(pkg, 'DEBIAN/control'),
      'Package: hello-kf\nVersion: 1.0\nArchitecture: all\nMaintainer: test <t@example.org>\nDescription: not Go\n',
    );
    const deb = path.join(work, 'hello-kf_1.0_all.deb');
    execFileSync('dpkg-deb', ['--build', '--root-owner-group', pkg, deb], { stdio: 'ignore' });
    const junk = path.join(work, 'golang-1.22-go_1.22.12_amd64.deb');
    fs.writeFileSync(junk, 'not an ar archive\n');
    const before = await imageIds();

    const r = runCli(['image', '--deb', deb, '--tag', `${tag}-bad`]);
    expect(r.status).toBe(2);
    twoLineError(r.stderr);
    expect(r.stderr).toContain(
      `error: --deb ${deb} is package hello-kf, not Debian's Go (golang-1.NN-go or golang-1.NN-src)`,
    );

    const j = runCli(['image', '--deb', junk, '--tag', `${tag}-bad`]);
    expect(j.status).toBe(2);
    twoLineError(j.stderr);
    expect(j.stderr).toContain(`error: --deb ${junk} is not a Debian package`);

    const none = runCli(['image', '--tag', `${tag}-bad`]);
    expect(none.status).toBe(2);
    twoLineError(none.stderr);
    expect(await imageIds()).toEqual(before);
  });

  it(
    "reads Debian's golang-1.22-go and -src .debs (the image test-env made from them is kept)",
    async () => {
      const debs = fs.existsSync(goDebs)
        ? fs.readdirSync(goDebs).filter((f) => /^golang-1\.22-(go|src)_.*\.deb$/.test(f))
        : [];
      if (debs.length !== 2)
        throw new Error(
          `Debian's golang-1.22-go and -src .debs missing in ${goDebs}: run 'sudo bash scripts/test-env.sh up' first`,
        );
      const goOnly = runCli([
        'image',
        '--deb',
        path.join(
          goDebs,
          debs.find((d) => d.includes('-go_'))!,
        ),
        '--tag',
        `${tag}-bad`,
      ]);
      expect(goOnly.status).toBe(2);
      twoLineError(goOnly.stderr);
      expect(goOnly.stderr).toContain('no golang-1.22-src among the --deb files');
      const r = runCli(
        ['image', '--json', '--keep-existing', ...debs.flatMap((d) => ['--deb', path.join(goDebs, d)])],
        { timeout: 10 * 60_000 },
      );
      expect(r.stderr).toBe(r.status === 0 ? r.stderr : '<image failed>');
      expect(r.status).toBe(0);
      const doc = JSON.parse(r.stdout);
      expect(doc).toMatchObject({
        created: false,
        tags: [expect.stringMatching(/^golang:1\.22\.\d+-alpine$/)],
      });
      const info = await docker.getImage(doc.tags[0]).inspect();
      expect(info.Config.Labels).toMatchObject({ 'kubeadm-forever.go-version': doc.goVersion });
    },
    10 * 60_000,
  );
});
