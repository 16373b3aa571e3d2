import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeShape } from '../helpers/fixtures.js';
import { sourceVolumes } from '../helpers/source-volumes.js';
import { goImage, k8s1202, runCli, skipDockerTests, type CliResult } from '../helpers/env.js';
import { docker, leftoverContainers, listDir, tempDir } from './docker-helpers.js';

// Source identity: two different trees reached through the same links (a link, and a link to that
// link), built one after the other with the same declared version, are two sources: two
// identities, two volumes, two binaries, each compiled from its own tree (a marker string
// compiled in proves it). An empty or dangling link is refused with nothing built.

const FILL = /filling source volume (kubeadm-forever-src-[0-9a-f]{24})/;

/** A gopath fixture tree whose kubeadm carries `marker` in its binary. */
function treeWithMarker(dest: string, marker: string): string {
  composeShape('gopath', dest);
  fs.writeFileSync(
    path.join(dest, 'cmd/kubeadm/tree_marker.go'),
    `package main\n\nimport "os"\n\n// which fixture tree this binary was built from\nvar treeMarker = "${marker}"\n\nfunc init() {\n\tif os.Getenv("KF_PRINT_TREE_MARKER") != "" {\n\t\tos.Stdout.WriteString(treeMarker + "\\n")\n\t}\n}\n`,
  );
  return dest;
}

interface BuildDoc {
  binary: string;
  sha256: string;
  cached: boolean;
  manifest: string;
}

interface ManifestDoc {
  inputs: { source: string };
  provenance: { source: { kind: string; fingerprint: string; location: string } };
}

describe.skipIf(skipDockerTests)('a source is its content, whatever path names it (real engine)', () => {
  let work: string;
  let current: string;
  let currentLink: string;
  const markers = { a: `kf-tree-marker-a-${process.pid}`, b: `kf-tree-marker-b-${process.pid}` };
  const trees: Record<'a' | 'b', string> = { a: '', b: '' };
  const volumes = new Set<string>();
  let manifestA = '';

  beforeAll(() => {
    work = fs.realpathSync(tempDir('kf-it-srcid-'));
    trees.a = treeWithMarker(path.join(work, 'releases/a'), markers.a);
    trees.b = treeWithMarker(path.join(work, 'releases/b'), markers.b);
    current = path.join(work, 'current');
    currentLink = path.join(work, 'current-link');
    fs.symlinkSync('releases/a', current);
    fs.symlinkSync('current', currentLink);
  });

  afterAll(async () => {
    for (const v of volumes)
      await docker
        .getVolume(v)
        .remove()
        .catch(() => undefined);
    fs.rmSync(work, { recursive: true, force: true });
    expect(await leftoverContainers()).toEqual([]);
  });

  function build(source: string, out: string): CliResult {
    return runCli(
      [
        'build',
        '--json',
        '--verbose',
        '--kubernetes-version',
        k8s1202.gitVersion,
        '--commit',
        k8s1202.gitCommit,
        '--go-version',
        '1.19.8',
        '--image',
        goImage,
        '--source-dir',
        source,
        '--out',
        out,
        '--cache-dir',
        path.join(work, 'cache'),
      ],
      { timeout: 10 * 60_000 },
    );
  }

  function built(r: CliResult): { doc: BuildDoc; manifest: ManifestDoc; volume: string | undefined } {
    if (r.status !== 0) throw new Error(`build failed (${r.status}):\n${r.stderr}`);
    const doc = JSON.parse(r.stdout) as BuildDoc;
    const volume = FILL.exec(r.stderr)?.[1];
    if (volume) volumes.add(volume);
    return { doc, manifest: JSON.parse(fs.readFileSync(doc.manifest, 'utf8')) as ManifestDoc, volume };
  }

  function holds(binary: string, marker: string): boolean {
    return fs.readFileSync(binary).includes(Buffer.from(marker));
  }

  it(
    'two trees behind one link (and a link to it), same version: two identities, volumes and binaries, each from its own tree',
    () => {
      const first = built(build(currentLink, path.join(work, 'kubeadm-a')));
      manifestA = first.doc.manifest;
      fs.rmSync(current);
      fs.symlinkSync('releases/b', current);
      const second = built(build(currentLink, path.join(work, 'kubeadm-b')));

      // two identities, by content, recorded with the real path each was read from
      expect(first.manifest.inputs.source).toMatch(/^dir:tree2:[0-9a-f]{64}$/);
      expect(second.manifest.inputs.source).toMatch(/^dir:tree2:[0-9a-f]{64}$/);
      expect(second.manifest.inputs.source).not.toBe(first.manifest.inputs.source);
      expect(first.manifest.provenance.source.location).toBe(trees.a);
      expect(second.manifest.provenance.source.location).toBe(trees.b);
      // two volumes, each filled by its own first build
      expect(first.volume).toBeDefined();
      expect(second.volume).toBeDefined();
      expect(second.volume).not.toBe(first.volume);
      // two binaries, each compiled from its own tree
      expect(second.doc.sha256).not.toBe(first.doc.sha256);
      expect(holds(path.join(work, 'kubeadm-a'), markers.a)).toBe(true);
      expect(holds(path.join(work, 'kubeadm-a'), markers.b)).toBe(false);
      expect(holds(path.join(work, 'kubeadm-b'), markers.b)).toBe(true);
      expect(holds(path.join(work, 'kubeadm-b'), markers.a)).toBe(false);
      // each volume is labelled with its own tree's content
      const labelled = new Map(sourceVolumes().map((v) => [v.name, v.source] as const));
      expect(labelled.get(first.volume!)).toBe(`${first.manifest.inputs.source} ./cmd/kubeadm`);
      expect(labelled.get(second.volume!)).toBe(`${second.manifest.inputs.source} ./cmd/kubeadm`);
    },
    15 * 60_000,
  );

  it(
    'the cache answers each tree with its own binary, whichever path names it',
    () => {
      // back to a, through the plain link this time: a's binary from the cache, not b's
      fs.rmSync(current);
      fs.symlinkSync('releases/a', current);
      const again = built(build(`${current}/`, path.join(work, 'kubeadm-a-again')));
      expect(again.doc.cached).toBe(true);
      expect(holds(path.join(work, 'kubeadm-a-again'), markers.a)).toBe(true);
      // b by its real path: b's binary
      const b = built(
        build(path.join(work, 'releases', '..', 'releases', 'b'), path.join(work, 'kubeadm-b-again')),
      );
      expect(b.doc.cached).toBe(true);
      expect(holds(path.join(work, 'kubeadm-b-again'), markers.b)).toBe(true);
    },
    10 * 60_000,
  );

  it(
    'a locally modified copy of a tree, same path and version: another source, rebuilt, its own bytes',
    () => {
      const file = path.join(trees.a, 'cmd/kubeadm/tree_marker.go');
      const text = fs.readFileSync(file, 'utf8');
      const stat = fs.statSync(file);
      // same size and mtime: only the content tells
      const modified = `${markers.a.slice(0, -1)}X`;
      fs.writeFileSync(file, text.replace(markers.a, modified));
      fs.utimesSync(file, stat.atime, stat.mtime);
      try {
        const r = built(build(current, path.join(work, 'kubeadm-a-modified')));
        expect(r.doc.cached).toBe(false);
        expect(r.volume).toBeDefined();
        expect(holds(path.join(work, 'kubeadm-a-modified'), modified)).toBe(true);
        expect(holds(path.join(work, 'kubeadm-a-modified'), markers.a)).toBe(false);
      } finally {
        fs.writeFileSync(file, text);
        fs.utimesSync(file, stat.atime, stat.mtime);
      }
    },
    10 * 60_000,
  );

  it(
    'audit names a changed source when the content differs at the same path, and passes when it is back',
    () => {
      const file = path.join(trees.a, 'cmd/kubeadm/tree_marker.go');
      const text = fs.readFileSync(file, 'utf8');
      const stat = fs.statSync(file);
      const audit = () =>
        runCli(
          [
            'audit',
            path.join(work, 'kubeadm-a'),
            '--manifest',
            manifestA,
            '--cache-dir',
            path.join(work, 'cache'),
          ],
          { timeout: 10 * 60_000 },
        );
      fs.writeFileSync(file, text.replace(markers.a, `${markers.a.slice(0, -1)}Y`));
      fs.utimesSync(file, stat.atime, stat.mtime);
      let changed: CliResult;
      try {
        changed = audit();
      } finally {
        fs.writeFileSync(file, text);
        fs.utimesSync(file, stat.atime, stat.mtime);
      }
      expect(changed.status).toBe(1);
      expect(`${changed.stdout}${changed.stderr}`).toContain(
        `source changed: the same path ${trees.a}, other content`,
      );
      expect(changed.stderr).toMatch(
        /^error: the rebuild from the recorded inputs differs \(input source, /m,
      );
      const same = audit();
      expect({ status: same.status, stderr: same.stderr }).toMatchObject({ status: 0 });
      expect(same.stdout).toContain('identical');
    },
    15 * 60_000,
  );

  it('an empty or dangling link is refused with nothing built: no container, no volume, no binary', async () => {
    const empty = path.join(work, 'releases/empty');
    fs.mkdirSync(empty);
    fs.symlinkSync('releases/empty', path.join(work, 'to-empty'));
    fs.symlinkSync('releases/v1.28.4', path.join(work, 'dangling'));
    fs.symlinkSync('dangling', path.join(work, 'to-dangling'));
    const volumesBefore = sourceVolumes()
      .map((v) => v.name)
      .sort();
    const outDir = path.join(work, 'refused');
    fs.mkdirSync(outDir);
    for (const link of ['to-empty', 'dangling', 'to-dangling']) {
      const given = path.join(work, link);
      const r = build(given, path.join(outDir, 'kubeadm'));
      expect({ link, status: r.status }).toEqual({ link, status: 2 });
      expect(r.stderr).toContain(
        `error: source tree ${JSON.stringify(given)} has no files: is it a link to a missing directory?`,
      );
      expect(r.stderr).toMatch(/^next: .*nothing was built/m);
      expect(r.stderr).not.toMatch(/connecting to the Docker engine|filling source volume/);
    }
    expect(listDir(outDir)).toEqual([]);
    expect(
      sourceVolumes()
        .map((v) => v.name)
        .sort(),
    ).toEqual(volumesBefore);
    expect(await leftoverContainers()).toEqual([]);
  });
});
