import { describe, expect, it } from 'vitest';
import { k8sTarball, runCli } from '../helpers/env.js';
import { k8sTree, requireFile } from '../helpers/fixtures.js';

// A version alone, on Debian's real 1.20.2 source: `--kubernetes-version v1.20.2` alone gets its
// Go version from the tree (build/build-image/cross/VERSION v1.15.5-1: the release's Go 1.15.5).

describe("the Go version of Debian's kubernetes 1.20.2, from the tree", () => {
  it(
    'plan --kubernetes-version v1.20.2 --source-tarball says Go 1.15.5 without --go-version',
    () => {
      requireFile(k8sTarball, "Debian's kubernetes source tarball");
      const r = runCli(['plan', '--kubernetes-version', 'v1.20.2', '--source-tarball', k8sTarball, '--json']);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const doc = JSON.parse(r.stdout);
      expect(doc.goVersion).toBe('go1.15.5');
      expect(doc.image).toBe('golang:1.15.5-alpine');
      expect(doc.resolved.goVersion).toEqual({
        value: 'go1.15.5',
        from: `build/build-image/cross/VERSION "v1.15.5-1" in ${k8sTarball}`,
      });
      // a tarball carries no commit: still unknown, and said so
      expect(doc.gitCommit).toBeNull();
      expect(doc.notes.join('\n')).toContain('commit unknown');
      // plan reads the tarball's tree as build does after a miss: its build mode and the patch
      expect(doc.buildModeSource).toBe('tree');
      expect(doc.patches.files).toHaveLength(2);
      const text = runCli(['plan', '--kubernetes-version', 'v1.20.2', '--source-tarball', k8sTarball]).stdout;
      expect(text).toMatch(
        /^go {10}go1\.15\.5 \(resolved from build\/build-image\/cross\/VERSION "v1\.15\.5-1" in .*\)$/m,
      );
    },
    5 * 60_000,
  );

  it(
    'the same from the unpacked tree (--source-dir)',
    () => {
      const doc = JSON.parse(
        runCli(['plan', '--kubernetes-version', 'v1.20.2', '--source-dir', k8sTree(), '--json']).stdout,
      );
      expect(doc.goVersion).toBe('go1.15.5');
      expect(doc.resolved.goVersion.from).toContain('build/build-image/cross/VERSION "v1.15.5-1"');
      expect(doc.patches.files.map((f: { file: string }) => f.file)).toHaveLength(2);
    },
    5 * 60_000,
  );
});
