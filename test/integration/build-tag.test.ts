import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { goImage, runCli, skipDockerTests } from '../helpers/env.js';
import { leftoverContainers, makeFixtureRepo, tempDir } from './docker-helpers.js';

// A version alone, for real: `build --kubernetes-version vX.Y.Z --repo R` with no --commit and no
// --go-version. The commit comes from the annotated tag, the Go version from .go-version, and the
// binary reports that commit.

function git(cwd: string, args: string[]): string {
  return execFileSync('git', ['-c', 'user.email=test@kubeadm-forever', '-c', 'user.name=test', ...args], {
    cwd,
    encoding: 'utf8',
  }).trim();
}

describe.skipIf(skipDockerTests)('build of a tag-only target on a real Docker engine', () => {
  let work: string;
  beforeAll(() => {
    work = tempDir('kf-it-tag-');
  });
  afterAll(async () => {
    fs.rmSync(work, { recursive: true, force: true });
    expect(await leftoverContainers()).toEqual([]);
  });

  it(
    'resolves the commit from the annotated tag and Go from .go-version, builds and verifies',
    () => {
      const repo = makeFixtureRepo(work, 'module', (dir) =>
        fs.writeFileSync(path.join(dir, '.go-version'), '1.19.8\n'),
      );
      git(repo.dir, ['tag', '-a', 'v1.27.3', '-m', 'Kubernetes v1.27.3']);
      const out = path.join(work, 'kubeadm');
      const r = runCli(
        [
          'build',
          '--json',
          '--kubernetes-version',
          'v1.27.3',
          '--repo',
          repo.dir,
          '--image',
          goImage,
          '--out',
          out,
          '--cache-dir',
          path.join(work, 'cache'),
        ],
        { timeout: 10 * 60_000 },
      );
      expect(r.stderr).toContain(
        `resolved gitCommit ${repo.commit} from annotated tag v1.27.3 of file://${repo.dir}`,
      );
      expect(r.stderr).toContain('resolved goVersion go1.19.8 from .go-version "1.19.8"');
      expect(r.status).toBe(0);
      const doc = JSON.parse(r.stdout);
      expect(doc).toMatchObject({
        gitVersion: 'v1.27.3',
        gitCommit: repo.commit,
        verify: { executed: true, passed: true },
      });
      const version = JSON.parse(
        execFileSync(out, ['version', '-o', 'json'], { encoding: 'utf8' }),
      ).clientVersion;
      expect(version).toMatchObject({ gitVersion: 'v1.27.3', gitCommit: repo.commit, gitTreeState: 'clean' });
    },
    10 * 60_000,
  );
});
