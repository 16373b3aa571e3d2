import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { goImage, k8s1202VersionFile, runCli, skipDockerTests } from '../helpers/env.js';
import { composeShape } from '../helpers/fixtures.js';
import { loadedModules } from '../helpers/loaded-modules.js';
import { leftoverContainers, tempDir } from './docker-helpers.js';

/**
 * Start-up of a cache hit: a build whose binary is cached answers from the cache
 * without the engine, git or the PKI code. Which modules, not how long (the bench times it).
 */
describe.skipIf(skipDockerTests)('a cache hit loads no engine, git or PKI module', () => {
  let work: string;
  let args: string[];
  beforeAll(() => {
    work = tempDir('kf-it-startup-');
    const tree = composeShape('gopath', path.join(work, 'tree'));
    args = [
      'build',
      '--json',
      '--source-dir',
      tree,
      '--version-file',
      k8s1202VersionFile,
      '--image',
      goImage,
      '--cache-dir',
      path.join(work, 'cache'),
      '--out',
      path.join(work, 'kubeadm'),
      // no volume left behind on the shared engine; the cache key does not depend on it
      '--no-source-volume',
    ];
  });
  afterAll(async () => {
    fs.rmSync(work, { recursive: true, force: true });
    expect(await leftoverContainers()).toEqual([]);
  });

  it(
    'the second identical build is a hit and loads neither dockerode nor simple-git nor x509',
    async () => {
      const first = runCli(args);
      expect(first.stderr).toBe(first.status === 0 ? first.stderr : '<failed>');
      expect(first.status).toBe(0);
      expect((JSON.parse(first.stdout) as { cached: boolean }).cached).toBe(false);
      const second = loadedModules(args);
      expect(second.status).toBe(0);
      expect((JSON.parse(second.stdout) as { cached: boolean }).cached).toBe(true);
      // the recorder sees what the hit uses: the cache store
      expect(second.own.has('carry/cache/store.js')).toBe(true);
      const unwanted = [
        'dockerode',
        'docker-modem',
        'ssh2',
        'simple-git',
        '@peculiar/x509',
        'reflect-metadata',
        'ora',
      ];
      expect(unwanted.filter((n) => second.packages.has(n))).toEqual([]);
    },
    15 * 60_000,
  );
});
