import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CacheManifest } from '../../src/core/cache-manifest.js';
import { auditManifest, years as y } from './fixtures/audit-manifest.js';
import { runCli } from '../helpers/env.js';

// audit's checks that come before any rebuild, through the CLI (no Docker needed): bad usage
// exits 2, a binary that is not the recorded one and a manifest whose inputs were changed exit 1
// with the two-line error, and nothing is written.

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

const audit = (...args: string[]) =>
  runCli(['audit', ...args, '--cache-dir', path.join(dir, 'cache')], { timeout: 60_000 });

describe('audit before the rebuild', () => {
  it('usage: no --manifest, a missing binary or manifest, a bad volume name exit 2', () => {
    expect(audit(binary).status).toBe(2);
    writeManifest();
    for (const args of [
      [path.join(dir, 'none'), '--manifest', manifestFile],
      [binary, '--manifest', path.join(dir, 'none.json')],
      [binary, '--manifest', manifestFile, '--go-cache-volume', '../x'],
    ]) {
      const r = audit(...args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^error: .+\nnext: .+\n$/);
    }
  });

  it('a binary that is not the recorded one: exit 1, "binary differs from its manifest"', () => {
    writeManifest((m) => (m.sha256 = 'b'.repeat(64)));
    const r = audit(binary, '--manifest', manifestFile);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^error: binary differs from its manifest: .+\nnext: .+\n$/);
  });

  it('a recorded input changed after the build: exit 1 naming it, before any rebuild', () => {
    writeManifest((m) => {
      (m.inputs as { validity: { leaf: unknown } }).validity.leaf = y(100);
      m.validity = y(100);
    });
    const r = audit(binary, '--manifest', manifestFile, '--json');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^error: recorded input validity changed.*\nnext: .+\n$/m);
    // --json: the failure is also the one document on stdout
    expect(JSON.parse(r.stdout)).toEqual({
      error: expect.stringMatching(/^recorded input validity changed/),
      next: expect.any(String),
    });
    expect(fs.readdirSync(dir).sort()).toEqual(['kubeadm', 'manifest.json']);
  });

  it('a sound manifest whose source is not here: exit 2 asking for the source', () => {
    writeManifest();
    const r = audit(binary, '--manifest', manifestFile);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /^error: the recorded source \/nonexistent.tgz is not on this machine\nnext: pass the source with/,
    );
  });
});
