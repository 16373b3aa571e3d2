import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CacheManifest } from '../../src/core/cache-manifest.js';
import { auditManifest, years as y } from './fixtures/audit-manifest.js';
import { runAudit } from '../../src/commands/audit.js';
import { DEFAULT_GO_CACHE_VOLUME } from '../../src/core/go-invocation.js';
import { captureIo, expectFailure } from '../helpers/command-io.js';

// audit's checks that come before any rebuild, in-process (no Docker needed): bad usage is a
// usage error (exit 2), a binary that is not the recorded one and a manifest whose inputs were
// changed are refused (exit 1), and nothing is written.

let dir: string;
let binary: string;
let manifestFile: string;

function writeManifest(edit?: (m: CacheManifest) => void): string {
  const bytes = fs.readFileSync(binary);
  const m = auditManifest({
    sha256: crypto.createHash('sha256').update(bytes).digest('hex'),
    size: bytes.length,
    location: '/nonexistent.tgz',
  });
  edit?.(m);
  fs.writeFileSync(manifestFile, JSON.stringify(m));
  return manifestFile;
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-unit-audit-'));
  binary = path.join(dir, 'kubeadm');
  fs.writeFileSync(binary, 'not really kubeadm');
  manifestFile = path.join(dir, 'manifest.json');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const audit = (file: string, manifest: string, goCacheVolume = DEFAULT_GO_CACHE_VOLUME) =>
  runAudit({ binary: file, manifest, goCacheVolume, cacheDir: path.join(dir, 'cache') }, captureIo());

describe('audit before the rebuild', () => {
  it('usage: a missing binary or manifest, a bad volume name exit 2', async () => {
    writeManifest();
    await expectFailure(audit(path.join(dir, 'none'), manifestFile), 2, /none: no such file$/);
    await expectFailure(audit(binary, path.join(dir, 'none.json')), 2, /^--manifest .*none\.json: /);
    await expectFailure(audit(binary, manifestFile, '../x'), 2, /is not a Docker volume name/);
  });

  it('a binary that is not the recorded one: exit 1, "binary differs from its manifest"', async () => {
    writeManifest((m) => (m.sha256 = 'b'.repeat(64)));
    await expectFailure(audit(binary, manifestFile), 1, /^binary differs from its manifest: /);
  });

  it('a recorded input changed after the build: exit 1 naming it, before any rebuild', async () => {
    writeManifest((m) => {
      (m.inputs as { validity: { leaf: unknown } }).validity.leaf = y(100);
      m.validity = y(100);
    });
    const io = captureIo();
    await expectFailure(
      runAudit(
        {
          binary,
          manifest: manifestFile,
          goCacheVolume: DEFAULT_GO_CACHE_VOLUME,
          cacheDir: path.join(dir, 'cache'),
        },
        io,
      ),
      1,
      /^recorded input validity changed/,
    );
    expect(io.told()).toMatch(/^the manifest's recorded inputs were changed after the build:\n {2}/);
    expect(fs.readdirSync(dir).sort()).toEqual(['kubeadm', 'manifest.json']);
  });

  it('a sound manifest whose source is not here: exit 2 asking for the source', async () => {
    writeManifest();
    const e = await expectFailure(
      audit(binary, manifestFile),
      2,
      /^the recorded source \/nonexistent.tgz is not on this machine$/,
    );
    expect(e.next).toMatch(/^pass the source with/);
  });
});
