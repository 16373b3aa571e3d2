import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { cliPath, repoRoot } from './env.js';

const recorder = path.join(repoRoot, 'test/helpers/module-recorder.mjs');

export interface LoadedModules {
  status: number | null;
  stdout: string;
  stderr: string;
  /** the npm packages loaded (names as under node_modules, scoped ones with their scope) */
  packages: Set<string>;
  /** our own modules loaded, relative to dist/ */
  own: Set<string>;
}

/** Runs the built CLI with `args` and says which packages and own modules it loaded. */
export function loadedModules(args: string[], env: NodeJS.ProcessEnv = {}): LoadedModules {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-modules-'));
  const log = path.join(dir, 'modules.txt');
  try {
    const r = spawnSync(process.execPath, ['--import', recorder, cliPath, ...args], {
      encoding: 'utf8',
      env: { ...process.env, ...env, KF_MODULE_LOG: log },
      timeout: 120_000,
    });
    const urls = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter(Boolean) : [];
    const packages = new Set<string>();
    const own = new Set<string>();
    const dist = `${path.join(repoRoot, 'dist')}/`;
    for (const url of urls) {
      const file = url.startsWith('file://') ? decodeURIComponent(url.slice('file://'.length)) : url;
      const pkg = /.*\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(file);
      if (pkg) packages.add(pkg[1]!);
      else if (file.startsWith(dist)) own.add(file.slice(dist.length));
    }
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, packages, own };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
