import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readToolchain, unpackGoDebs } from '../../src/adapters/go-toolchain-files.js';
import { debUnpackLimit } from '../../src/core/go-image-layout.js';
import { KfError } from '../../src/core/errors.js';

// `image --deb` with hostile packages, made by the real dpkg-deb: a package that unpacks to far
// more than its Installed-Size is stopped at that bound, one that declares too much is refused
// before unpacking, and a usr/lib/go-1.NN that is a link to a host directory is refused rather
// than packed into the image.

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-debs-hostile-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

let n = 0;
/** A .deb named `pkg` from `files` (relative path → content, or {link}) with this Installed-Size. */
function deb(pkg: string, installedKib: number, fill: (root: string) => void): string {
  const root = path.join(work, `root-${++n}`);
  fs.mkdirSync(path.join(root, 'DEBIAN'), { recursive: true });
  fill(root);
  fs.writeFileSync(
    path.join(root, 'DEBIAN/control'),
    `Package: ${pkg}\nVersion: 1.22.12-1\nArchitecture: all\nMaintainer: t <t@example.org>\nInstalled-Size: ${installedKib}\nDescription: test\n`,
  );
  const file = path.join(work, `${pkg}_${n}.deb`);
  execFileSync('dpkg-deb', ['-Zgzip', '--build', '--root-owner-group', root, file], { stdio: 'ignore' });
  return file;
}

function goroot(root: string): void {
  fs.mkdirSync(path.join(root, 'usr/lib/go-1.22/bin'), { recursive: true });
  fs.mkdirSync(path.join(root, 'usr/lib/go-1.22/src/runtime'), { recursive: true });
  fs.writeFileSync(path.join(root, 'usr/lib/go-1.22/bin/go'), '#!/bin/sh\n', { mode: 0o755 });
}

const src = () =>
  deb('golang-1.22-src', 4, (r) => {
    fs.mkdirSync(path.join(r, 'usr/share/go-1.22/src/runtime'), { recursive: true });
    fs.writeFileSync(path.join(r, 'usr/share/go-1.22/src/runtime/x.go'), 'package runtime\n');
  });

async function refusal(p: Promise<unknown>): Promise<KfError> {
  try {
    await p;
  } catch (err) {
    return err as KfError;
  }
  throw new Error('not refused');
}

/** Temp dirs this test's unpacking left behind in `parent` (none after a refusal). */
const leftovers = (parent: string) => fs.readdirSync(parent);

describe('image --deb: bounded and confined unpacking', () => {
  it('stops a package that unpacks beyond its Installed-Size at the bound, leaving nothing', async () => {
    // 64 MiB of zeros in a ~70 KB .deb that says it installs 1 MiB
    const go = deb('golang-1.22-go', 1024, (r) => {
      goroot(r);
      fs.writeFileSync(path.join(r, 'usr/lib/go-1.22/pad'), Buffer.alloc(64 << 20));
    });
    expect(fs.statSync(go).size).toBeLessThan(1 << 20);
    const parent = fs.mkdtempSync(path.join(work, 'tmp-'));
    const err = await refusal(unpackGoDebs([go, src()], parent));
    expect(err).toBeInstanceOf(KfError);
    expect(err.what).toBe(
      `--deb ${go} unpacks to more than ${debUnpackLimit(1024)} bytes, beyond the Installed-Size it declares: not Debian's Go`,
    );
    expect(leftovers(parent)).toEqual([]);
  });

  it('refuses a package declaring more than 20 times its size before unpacking anything', async () => {
    const go = deb('golang-1.22-go', 1024 * 1024, goroot);
    const parent = fs.mkdtempSync(path.join(work, 'tmp-'));
    const err = await refusal(unpackGoDebs([go, src()], parent));
    expect(err.what).toMatch(
      new RegExp(`^--deb ${go} declares ${1024 ** 3} bytes installed from \\d+ bytes`),
    );
    expect(leftovers(parent)).toEqual([]);
  });

  it('refuses a usr/lib/go-1.NN that is a link to a host directory', async () => {
    const host = fs.mkdtempSync(path.join(work, 'host-'));
    goroot(host); // a complete-looking GOROOT on the host, at host/usr/lib/go-1.22
    fs.writeFileSync(path.join(host, 'usr/lib/go-1.22/host-secret'), 'from the host\n');
    const go = deb('golang-1.22-go', 16, (r) => {
      fs.mkdirSync(path.join(r, 'usr/lib'), { recursive: true });
      fs.symlinkSync(path.join(host, 'usr/lib/go-1.22'), path.join(r, 'usr/lib/go-1.22'));
    });
    const parent = fs.mkdtempSync(path.join(work, 'tmp-'));
    const err = await refusal(unpackGoDebs([go, src()], parent));
    expect(err.what).toBe(
      `the packages' usr/lib/go-1.22 is a link (to ${path.join(host, 'usr/lib/go-1.22')}), not a directory: not Debian's Go`,
    );
    expect(leftovers(parent)).toEqual([]);
  });

  it('readToolchain confined to the unpacked packages refuses a GOROOT that resolves outside them', () => {
    const host = fs.mkdtempSync(path.join(work, 'host-'));
    goroot(host);
    const box = fs.mkdtempSync(path.join(work, 'box-'));
    fs.mkdirSync(path.join(box, 'usr/lib'), { recursive: true });
    fs.symlinkSync(path.join(host, 'usr/lib/go-1.22'), path.join(box, 'usr/lib/go-1.22'));
    expect(() => readToolchain(path.join(box, 'usr/lib/go-1.22'), 'hint', box)).toThrow(
      /leads outside the unpacked packages/,
    );
    // the same directory given as --goroot (no confinement) is read as before
    expect(readToolchain(path.join(box, 'usr/lib/go-1.22'), 'hint').goroot).toBe(
      fs.realpathSync(path.join(host, 'usr/lib/go-1.22')),
    );
  });
});
