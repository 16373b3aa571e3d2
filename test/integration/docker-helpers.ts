import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { composeShape, type FixtureShape } from '../helpers/fixtures.js';

export interface FixtureRepo {
  dir: string;
  commit: string;
}

function git(cwd: string, args: string[]): string {
  return execFileSync('git', ['-c', 'user.email=test@kubeadm-forever', '-c', 'user.name=test', ...args], {
    cwd,
    encoding: 'utf8',
  }).trim();
}

/** A local git repository holding a fixture shape, one commit; `mutate` may change the tree first. */
export function makeFixtureRepo(
  parent: string,
  shape: FixtureShape,
  mutate?: (dir: string) => void,
): FixtureRepo {
  const dir = composeShape(shape, fs.mkdtempSync(path.join(parent, `repo-${shape}-`)));
  mutate?.(dir);
  git(dir, ['init', '-q']);
  git(dir, ['add', '-A']);
  git(dir, ['commit', '-qm', `fixture ${shape}`]);
  return { dir, commit: git(dir, ['rev-parse', 'HEAD']) };
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export const docker = new Docker({ socketPath: '/var/run/docker.sock' });

/** Containers of the tool (label kubeadm-forever=1), optionally only those of one process. */
export async function toolContainers(pid?: number): Promise<Docker.ContainerInfo[]> {
  const label = ['kubeadm-forever=1'];
  if (pid !== undefined) label.push(`kubeadm-forever.pid=${pid}`);
  return docker.listContainers({ all: true, filters: { label } });
}

/**
 * Tool containers whose owning process is gone: a run that did not clean up after itself.
 * (Containers of other live runs sharing the engine are not counted.)
 */
export async function leftoverContainers(): Promise<Docker.ContainerInfo[]> {
  return (await toolContainers()).filter((c) => {
    const pid = Number(c.Labels['kubeadm-forever.pid']);
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      return true;
    }
  });
}

/** Files in a directory (to prove a failed build wrote nothing, not even a temp file). */
export function listDir(dir: string): string[] {
  return fs.readdirSync(dir).sort();
}
