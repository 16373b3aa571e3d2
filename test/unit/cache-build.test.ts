import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BuildCache, manifestFor } from '../../src/carry/cache/build-cache.js';
import { createBuildPlan } from '../../src/core/plan.js';
import { resolveValidityPair } from '../../src/core/validity.js';
import { parseVersionOutput } from '../../src/core/version.js';
import { k8s1202 } from '../helpers/env.js';
import { tempDir, writeFakeElf } from '../helpers/cache-fixtures.js';

const amd64 = { os: 'linux', arch: 'amd64' };
const arm64 = { os: 'linux', arch: 'arm64' };
const version = parseVersionOutput(k8s1202.versionJson).info;
const plan = (leaf = '199y', platforms = [amd64, arm64]) =>
  createBuildPlan({
    version,
    validity: resolveValidityPair(leaf, '200y'),
    platforms,
    buildMode: { mode: 'gopath', source: 'tree' },
  });
const sha = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

let dir: string;
let warnings: string[];
let cache: BuildCache;
beforeEach(() => {
  dir = tempDir('cache-build');
  warnings = [];
  cache = new BuildCache(path.join(dir, 'cache'), { warn: (t) => warnings.push(t) });
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const saved = (p: ReturnType<typeof plan>, platform: typeof amd64, binary: string) => ({
  key: cache.keyOf(p, platform, undefined),
  plan: p,
  platform,
  binary,
  goVersion: 'go1.19.8',
  image: { name: 'local/golang:1.19.8', id: 'sha256:' + 'a'.repeat(64) },
  patchDiff: '--- a/x\n+++ b/x\n',
});

describe('the cache as the build pipeline uses it', () => {
  it('one key per platform, independent of the other platforms built with it; validity changes it', () => {
    const both = plan();
    const one = plan('199y', [arm64]);
    expect(cache.keyOf(both, arm64, undefined)).toBe(cache.keyOf(one, arm64, undefined));
    expect(cache.keyOf(both, amd64, undefined)).not.toBe(cache.keyOf(both, arm64, undefined));
    expect(cache.keyOf(plan('100y'), amd64, undefined)).not.toBe(cache.keyOf(both, amd64, undefined));
    expect(cache.keyOf(both, amd64, 'tarball:sha256:1')).not.toBe(cache.keyOf(both, amd64, undefined));
  });

  it('miss, save after verify, then a hit copied to --out with the same sha256', async () => {
    const p = plan();
    const s = saved(p, amd64, writeFakeElf(dir, 'amd64'));
    const out = path.join(dir, 'kubeadm-custom');
    expect(await cache.fetch(s.key, amd64, out)).toBeNull();
    expect(fs.existsSync(out)).toBe(false);
    await cache.save(s);
    const hit = await cache.fetch(s.key, amd64, out);
    expect(hit?.manifest.sha256).toBe(sha(s.binary));
    expect(sha(out)).toBe(sha(s.binary));
  });

  it('a hit that cannot be written to --out is a two-part error, and the entry stays', async () => {
    const s = saved(plan(), amd64, writeFakeElf(dir, 'amd64'));
    await cache.save(s);
    const out = path.join(dir, 'no-such-dir', 'kubeadm');
    await expect(cache.fetch(s.key, amd64, out)).rejects.toMatchObject({
      name: 'KfError',
      what: expect.stringMatching(/^cannot write the cached binary to .*no-such-dir\/kubeadm: /),
      next: expect.stringContaining('--out'),
    });
    expect((await cache.store.lookup(s.key, amd64)).kind).toBe('hit');
  });

  it('a corrupt entry is reported, moved aside and rebuilt', async () => {
    const s = saved(plan(), amd64, writeFakeElf(dir, 'amd64'));
    const entry = await cache.save(s);
    fs.appendFileSync(entry.binary, 'x');
    expect(await cache.fetch(s.key, amd64, path.join(dir, 'out'))).toBeNull();
    expect(warnings[0]).toMatch(/is corrupt: size .* differs .*; moved to .*\.corrupt.*, rebuilding/);
    expect(fs.existsSync(path.join(dir, 'out'))).toBe(false);
    await cache.save(s);
    expect(await cache.fetch(s.key, amd64, path.join(dir, 'out'))).not.toBeNull();
  });

  it('the manifest carries the plan inputs for its platform, image id, patches, tool version', () => {
    const p = plan();
    const m = manifestFor({
      ...saved(p, arm64, 'x'),
      source: 'tarball:sha256:abc',
      provenance: { reproducible: true },
    });
    expect(m).toMatchObject({
      gitVersion: 'v1.20.2',
      gitCommit: k8s1202.gitCommit,
      platform: 'linux/arm64',
      validity: { text: '199y', hours: 199 * 8760 },
      caValidity: { text: '200y', hours: 200 * 8760 },
      imageId: 'sha256:' + 'a'.repeat(64),
      patches: '--- a/x\n+++ b/x\n',
      provenance: { reproducible: true },
    });
    expect(m.inputs).toMatchObject({
      platform: 'linux/arm64',
      source: 'tarball:sha256:abc',
      ldflags: p.ldflags,
      env: p.env,
      image: p.image,
    });
    expect(m.inputs).not.toHaveProperty('platforms');
    expect(m.toolVersion).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('withLocks: concurrent runs needing the same keys (in any order) build once each', async () => {
    const p = plan();
    const keys = [cache.keyOf(p, amd64, undefined), cache.keyOf(p, arm64, undefined)];
    let builds = 0;
    const run = (order: string[]) =>
      cache.withLocks(order, async () => {
        const out = path.join(dir, `o-${crypto.randomBytes(3).toString('hex')}`);
        for (const [i, platform] of [amd64, arm64].entries()) {
          if (await cache.fetch(keys[i]!, platform, out)) continue;
          builds++;
          await new Promise((r) => setTimeout(r, 50));
          await cache.save(saved(p, platform, writeFakeElf(dir, platform.arch)));
        }
      });
    await Promise.all([run(keys), run([...keys].reverse()), run(keys)]);
    expect(builds).toBe(2);
  });
});
