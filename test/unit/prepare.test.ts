import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decideBuild, decidePatch, governingKube, type TreeFacts } from '../../src/core/build-decision.js';
import { UsageError } from '../../src/core/errors.js';
import {
  CLIENT_GO_CERT_FILE,
  CONSTANTS_FILE,
  KUBEADM_PKI_HELPERS_FILE,
} from '../../src/core/patch-targets.js';
import { resolveValidityPair } from '../../src/core/validity.js';
import { parseKubeVersion, versionInfoFromFlags } from '../../src/core/version.js';
import type { KubeVersion, Platform } from '../../src/core/types.js';
import { prepareBuild, prepareForPlan, readTreeFacts, settleOnTree } from '../../src/build/prepare.js';
import { prepareSource } from '../../src/build/source.js';
import { scanTree } from '../../src/carry/cache/source-identity.js';
import { certGo, constants115, constants131, pkiHelpers120, pkiHelpers131 } from './fixtures/go-sources.js';
import { makeMiniTree } from './fixtures/mini-tree.js';

const validity = resolveValidityPair('199y', '200y');
const COMMIT = 'a'.repeat(40);
const temps: string[] = [];
const temp = (p: string) => (temps.push(p), p);
afterEach(() => {
  for (const t of temps.splice(0)) fs.rmSync(t, { recursive: true, force: true });
});

const kube = (minor: number, pre = ''): KubeVersion => ({ major: 1, minor, patch: 0, pre });
const target = (gitVersion: string) => ({ gitVersion, kube: parseKubeVersion(gitVersion) });
const version = (v: string) =>
  versionInfoFromFlags({ kubernetesVersion: v, commit: COMMIT, goVersion: '1.22.5' });

function facts(
  opts: { minor?: number; constants?: string; buildMode?: 'gopath' | 'module' } = {},
): TreeFacts {
  return {
    buildMode: opts.buildMode ?? 'gopath',
    kube: opts.minor === undefined ? undefined : kube(opts.minor),
    files: {
      [CONSTANTS_FILE]: opts.constants ?? constants115,
      [CLIENT_GO_CERT_FILE]: certGo,
      [KUBEADM_PKI_HELPERS_FILE]: opts.constants === constants131 ? pkiHelpers131 : pkiHelpers120,
    },
    clientGoCertFile: CLIENT_GO_CERT_FILE,
  };
}

describe('governingKube: the one rule for which version governs the patch', () => {
  it('whichever is known governs; the target when both agree (it has the patch level)', () => {
    expect(governingKube(undefined, undefined)).toBeUndefined();
    expect(governingKube(undefined, kube(20))).toEqual(kube(20));
    expect(governingKube(target('v1.31.2'), undefined)).toEqual(parseKubeVersion('v1.31.2'));
    expect(governingKube(target('v1.20.5'), kube(20))).toEqual(parseKubeVersion('v1.20.5'));
  });

  it('refuses a tree of another minor than the target, naming both (exit 2)', () => {
    let err: unknown;
    try {
      governingKube(target('v1.31.0'), kube(20));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).exitCode).toBe(2);
    expect((err as UsageError).what).toBe(
      'the source tree is Kubernetes 1.20 (its newest changelog) but the target is v1.31.0: the binary would report v1.31.0 and be built from 1.20 code',
    );
    expect(() => governingKube(target('v1.20.2'), kube(21))).toThrow(/tree is Kubernetes 1\.21/);
    expect(() => governingKube(target('v1.31.0'), kube(30))).toThrow(UsageError);
  });

  it('lets a pre-release sit on the tree of the minor before it (no release notes yet), and no further', () => {
    expect(governingKube(target('v1.31.0-alpha.0'), kube(30))).toEqual(parseKubeVersion('v1.31.0-alpha.0'));
    expect(() => governingKube(target('v1.31.0-alpha.0'), kube(29))).toThrow(UsageError);
    expect(() => governingKube(target('v1.31.0-alpha.0'), kube(32))).toThrow(UsageError);
  });
});

describe('decideBuild / decidePatch', () => {
  it('with a tree: the build mode from the tree and the patch the target governs', () => {
    const d = decideBuild(
      { version: version('v1.20.2'), validity },
      facts({ minor: 20, buildMode: 'module' }),
    );
    expect(d.plan.buildMode).toBe('module');
    expect(d.plan.buildModeSource).toBe('tree');
    expect(d.governing).toEqual(parseKubeVersion('v1.20.2'));
    expect(d.patch!.diff).toContain('+\tCertificateValidity = time.Hour * 24 * 365 * 199');
  });

  it('without a tree: the build mode inferred, no patch', () => {
    const d = decideBuild({ version: version('v1.20.2'), validity });
    expect(d.plan.buildModeSource).toBe('inferred');
    expect(d.patch).toBeUndefined();
  });

  it('a 1.20 tree with a 1.31 target is the version refusal, not a "source drift" of the 1.31 constants', () => {
    expect(() => decideBuild({ version: version('v1.31.0'), validity }, facts({ minor: 20 }))).toThrow(
      /^the source tree is Kubernetes 1\.20/,
    );
  });

  it('patch DIR: the tree governs; <=1.14 refused; a shape the changelog contradicts is drift', () => {
    expect(decidePatch(facts({ minor: 31, constants: constants131 }), validity).diff).toContain(
      'CACertificateValidityPeriod = time.Hour * 24 * 365 * 200',
    );
    expect(() => decidePatch(facts({ minor: 14 }), validity)).toThrow(/cannot patch Kubernetes 1\.14/);
    expect(() => decidePatch(facts({ minor: 31 }), validity)).toThrow(
      /source drift.*as Kubernetes 1\.31 should/,
    );
    // no changelog: the declarations decide
    expect(decidePatch(facts(), validity).files.map((f) => f.file)).toEqual([
      CONSTANTS_FILE,
      CLIENT_GO_CERT_FILE,
    ]);
  });
});

describe('prepareBuild: once per run', () => {
  const env = {} as NodeJS.ProcessEnv;

  /** A mini tree packed as a release tarball, its sha256, and a build request naming it. */
  function tarballRequest(prefix: string) {
    const root = temp(makeMiniTree());
    const dir = temp(fs.mkdtempSync(path.join(os.tmpdir(), prefix)));
    const tgz = path.join(dir, 'k.tar.gz');
    execFileSync('tar', ['-czf', tgz, '-C', path.dirname(root), path.basename(root)]);
    const sha = crypto.createHash('sha256').update(fs.readFileSync(tgz)).digest('hex');
    const req = {
      version: version('v1.20.2'),
      validity,
      platforms: [] as Platform[],
      source: { kind: 'tarball' as const, file: tgz },
      cacheDir: dir,
      env,
    };
    return { root, dir, tgz, sha, req };
  }

  it('a directory: identified once, its tree read, the plan final (its keys are the build plan)', async () => {
    const root = temp(makeMiniTree());
    const cacheDir = temp(fs.mkdtempSync(path.join(os.tmpdir(), 'kf-prep-cache-')));
    const prep = await prepareBuild({
      version: version('v1.20.2'),
      validity,
      platforms: [],
      source: { kind: 'dir', dir: `${root}/` },
      cacheDir,
      env,
      buildable: true,
    });
    expect(prep.source!.spec).toEqual({ kind: 'dir', dir: fs.realpathSync(root) });
    expect(prep.source!.identity).toBe(`dir:${scanTree(root).fingerprint}`);
    expect(prep.plan.buildModeSource).toBe('tree');
    expect(prep.patch!.files.length).toBe(2);
    // the buildDate of a directory is its newest file, known before the cache lookup
    expect(prep.date!.origin).toBe('newest file in the directory');
    const prepared = await prepareSource(prep.source!, { cacheDir });
    const settled = await settleOnTree(prep, prepared, env);
    expect(settled.plan).toBe(prep.plan); // not made again
    expect(prepared.provenance.fingerprint).toBe(prep.source!.scan!.fingerprint);
  });

  it('refuses the mismatched tree before anything else, with the rule message', async () => {
    const root = temp(makeMiniTree({ minor: 20 }));
    await expect(
      prepareBuild({
        version: version('v1.31.0'),
        validity,
        platforms: [],
        source: { kind: 'dir', dir: root },
        cacheDir: root,
        env,
      }),
    ).rejects.toThrow(
      /^the source tree is Kubernetes 1\.20 \(its newest changelog\) but the target is v1\.31\.0/,
    );
  });

  it('a tarball: read once (its sha256 and index in one pass), never unpacked; the source stage reads it no more', async () => {
    const { root, dir, tgz, sha, req: plain } = tarballRequest('kf-prep-tgz-');
    const req = { ...plain, buildable: true };
    const prep = await prepareBuild(req);
    expect(prep.source!.sha256).toBe(sha);
    expect(prep.source!.identity).toBe(`tarball:sha256:${sha}`);
    expect(prep.source!.tarball?.sha256).toBe(sha);
    expect(prep.plan.buildModeSource).toBe('inferred');
    // the file moved away: the source stage and the tree's reading use the pass already made
    fs.renameSync(tgz, `${tgz}.away`);
    const work = path.join(dir, 'work');
    const prepared = await prepareSource(prep.source!, { cacheDir: dir, workDir: work });
    try {
      expect(prepared.provenance.sha256).toBe(sha);
      expect(prepared.dir).toBeUndefined();
      const settled = await settleOnTree(prep, prepared, env);
      expect(settled.plan.buildModeSource).toBe('tree');
      expect(settled.date.origin).toBe('newest tarball entry');
      expect(settled.patch.files.length).toBe(2);
      // the tarball's tree reads as the directory it was made from
      expect(settled.tree).toEqual(await readTreeFacts(root, { buildMode: true }));
      expect(fs.existsSync(work) ? fs.readdirSync(work) : []).toEqual([]);
    } finally {
      await prepared.dispose();
    }
  });

  it('a tarball seen before with the same stamp: its sha256 from the record, read only on a miss, which checks it', async () => {
    const { dir, sha, req } = tarballRequest('kf-prep-rec-');
    // a stamp is recorded only once it is older than the pass (a file changed within the
    // timestamp granularity could keep it)
    await new Promise((r) => setTimeout(r, 2500));
    expect((await prepareBuild(req)).source!.tarball).toBeDefined();
    const again = await prepareBuild(req);
    expect(again.source!.sha256).toBe(sha);
    expect(again.source!.tarball).toBeUndefined();
    // on a miss the source stage reads it, and the sha256 it reads must be the recorded one
    const prepared = await prepareSource(again.source!, { cacheDir: dir });
    expect(prepared.provenance.sha256).toBe(sha);
    const [record] = fs.readdirSync(path.join(dir, 'source-digests')).filter((f) => f.startsWith('tarball-'));
    const recordFile = path.join(dir, 'source-digests', record!);
    const doc = JSON.parse(fs.readFileSync(recordFile, 'utf8'));
    fs.writeFileSync(recordFile, JSON.stringify({ ...doc, sha256: 'e'.repeat(64) }));
    const forged = await prepareBuild(req);
    expect(forged.source!.sha256).toBe('e'.repeat(64));
    await expect(prepareSource(forged.source!, { cacheDir: dir })).rejects.toMatchObject({
      what: expect.stringMatching(/is not the file whose sha256 was recorded \(eeeeeeeeeeee…\): it reads/),
      next: expect.stringMatching(/^build again/),
    });
    expect(fs.existsSync(recordFile)).toBe(false);
    const fresh = await prepareBuild(req);
    expect(fresh.source!.sha256).toBe(sha);
    expect(fresh.source!.tarball).toBeDefined();
  });

  it("plan's preparation reads a tarball's tree as build does after a miss, keeps build's key, and leaves no temp tree", async () => {
    const root = temp(makeMiniTree({ minor: 20 }));
    const dir = temp(fs.mkdtempSync(path.join(os.tmpdir(), 'kf-prep-plan-')));
    const tgz = path.join(dir, 'k.tar.gz');
    execFileSync('tar', ['-czf', tgz, '-C', path.dirname(root), path.basename(root)]);
    const req = {
      version: version('v1.20.2'),
      validity,
      platforms: [],
      source: { kind: 'tarball' as const, file: tgz },
      cacheDir: dir,
      env,
    };
    // a private TMPDIR: other runs on this machine make their own temp trees meanwhile
    const tmp = path.join(dir, 'tmp');
    fs.mkdirSync(tmp);
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = tmp;
    try {
      const forPlan = await prepareForPlan(req);
      const forBuild = await prepareBuild(req);
      expect(forPlan.plan.buildModeSource).toBe('tree');
      expect(forPlan.patch!.files).toHaveLength(2);
      expect(forPlan.plan.cacheKey).toBe(forBuild.plan.cacheKey);
      expect(fs.readdirSync(tmp)).toEqual([]);
      await expect(prepareForPlan({ ...req, version: version('v1.31.0') })).rejects.toThrow(
        /^the source tree is Kubernetes 1\.20/,
      );
      expect(fs.readdirSync(tmp)).toEqual([]);
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
  });
});
