import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageClosure } from '../../src/adapters/package-closure.js';
import { scanTree, selectionEntries, sourceIdentity } from '../../src/carry/cache/source-identity.js';
import { filledDigest } from '../../src/core/source-volume.js';
import { resolveSource } from '../../src/build/source.js';
import { k8sTree } from '../helpers/fixtures.js';

/**
 * Source identity on Debian's real 1.20.2 tree (22.7k files): reached through a link (and a link to
 * it) it has the identity of its real path, with or without the digest memo; the fingerprint
 * is content (all files read on the first scan), and the timings are printed (not asserted:
 * performance is measured by `npm run bench`).
 */

let tree: string;
let work: string;

beforeAll(() => {
  tree = k8sTree();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-e2e-srcid-'));
}, 10 * 60_000);

afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function timed<T>(what: string, fn: () => T): T {
  const start = performance.now();
  const r = fn();
  process.stderr.write(
    `[source identity 1.20.2] ${what}: ${((performance.now() - start) / 1000).toFixed(2)} s\n`,
  );
  return r;
}

async function identityThrough(given: string, memoDir?: string): Promise<string | undefined> {
  const src = await resolveSource({ kind: 'dir', dir: given });
  const scan = timed(`scan of ${given}${memoDir ? ' (memo)' : ''}`, () =>
    scanTree(src.kind === 'dir' ? src.dir : '', { memoDir }),
  );
  return sourceIdentity(src, scan);
}

describe('the real Kubernetes 1.20.2 tree', () => {
  it(
    'through a link and a link to a link: the identity of its real path, memo or not',
    async () => {
      const link = path.join(work, 'current');
      fs.symlinkSync(tree, link);
      fs.symlinkSync(link, path.join(work, 'current-link'));
      const memoDir = path.join(work, 'cache');

      const real = await identityThrough(tree);
      expect(real).toMatch(/^dir:tree2:[0-9a-f]{64}$/);
      expect(await identityThrough(link)).toBe(real);
      expect(await identityThrough(path.join(work, 'current-link'), memoDir)).toBe(real);
      expect(await identityThrough(`${link}/`, memoDir)).toBe(real);

      const full = scanTree(tree);
      expect(full.files.size).toBeGreaterThan(20_000);
      expect(full.hashed).toBe(full.files.size);
    },
    5 * 60_000,
  );

  it(
    'what its source volume is filled with: the package closure, digested from the scan',
    () => {
      const scan = scanTree(tree);
      const selection = timed('package closure', () => packageClosure(tree, 'gopath', './cmd/kubeadm'));
      const digest = timed('files digest from the scan', () =>
        filledDigest(selectionEntries(tree, selection, scan)),
      );
      expect(digest).toBe(timed('files digest, read', () => filledDigest(selectionEntries(tree, selection))));
      expect(selection.files.length).toBeGreaterThan(3000);
    },
    5 * 60_000,
  );
});
