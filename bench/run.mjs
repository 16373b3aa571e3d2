#!/usr/bin/env node
// Benchmark of kubeadm-forever against a plain `go build` of the same tree in the same image.
//
//   npm run bench -- [--tree DIR --version-file FILE] [--tarball FILE] [--image IMG] [--json] [--strict]
//   npm run bench -- --startup [--json] [--strict]
//
// --startup measures only start-up, with no engine and no tree: in one run, interleaved so they
// share the machine's state, bare `node -e 0`, the npm-installed tool (dist/cli.js) and the
// single executable (npm run dist's dist-bin/kubeadm-forever-linux-<arch>), each `--help` and
// `check` of a PKI, best wall time of STARTUP_RUNS and best CPU time (user+sys, steadier on a
// loaded machine), both as ratios to bare Node; and the executable's size, gzipped as a bundle
// carries it. Target: the executable's --help at most 1.5 x bare `node -e 0`.
//
// Prerequisites (Debian 12): a running Docker engine with the Go image (default
// local/golang:1.19.8, made by `scripts/test-env.sh up` with the tool's `image` command), the `docker` client, GNU tar, and GNU time for
// the peak RSS (`apt-get install -y time`, giving /usr/bin/time). The default tree is Debian's
// kubernetes 1.20.2 (test/.fixtures/kubernetes-1.20.2, unpacked from the .orig.tar.gz into a
// temp dir when absent) and the default tarball that .orig.tar.gz; with --tree the bench packs
// the tree into a .tar.gz with one top folder (like a release tarball) unless --tarball is given.
//
// Steps, in one run, each with its ratio to (a). Every tool build gets --no-verify and its own
// binary cache dir per group, so each cold build is a miss:
//   (a) baseline: `docker run ... go build ./cmd/kubeadm` of the tree (bind-mounted read-only at
//       /go/src/k8s.io/kubernetes, GO111MODULE=off, CGO_ENABLED=0, an empty GOCACHE), as the
//       manual procedure does it;
//   (b) the tool's cold build from --source-dir (a fresh Go cache volume, an empty cache dir, the
//       tool's source volume for the tree removed first);
//   (c) the tool's rebuild with another validity (same volumes);
//   (d) the same inputs as (c) again: a cache hit, which must start no container;
//   (e) the tool's peak RSS (GNU time's "Maximum resident set size"), max over every tool run of
//       the bench, (b) to (h);
//   (f1) the tool's cold build from --source-tarball (another fresh Go cache volume, another empty
//       cache dir, the tool's source volume for the tarball, named from its sha256, removed
//       first); (f2) its rebuild with another validity; (f3) its cache hit (no container);
//   (g1) start-up: `kubeadm-forever --help`, best of 5; (g2) `kubeadm-forever check` of a PKI the
//       tool made itself (`ca init`: three CAs; empty kubeconfig and kubelet dirs, --apiserver
//       none), best of 5;
//   (h1) ONE build of the tree for linux/amd64 and linux/arm64 (--platform twice, a fresh Go
//       cache volume; 2 containers); (h2) two single builds, amd64 then arm64, sharing another
//       fresh Go cache volume (1 container each); h1 is also given as a ratio to h2's sum. Both
//       reuse the tree's source volume (b) filled.
// Containers are counted from `docker events` (label kubeadm-forever.pid = the tool's pid),
// which also gives the breakdown of each tool build: before the container, streaming the tree
// in (create -> start: putArchive), compiling (start -> die), copying out and removing.
//
// Exit: 0 when every step ran (targets missed, or a build with an unexpected number of
// containers, are shown as FAIL; --strict makes them exit 3), 1 when a step failed to run, 2 on
// bad arguments, 130 on Ctrl-C. Everything it made (containers, volumes, temp dirs, the tarball)
// is removed in every case.

import { Buffer } from 'node:buffer';
import { spawn, execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cliPath = path.join(repoRoot, 'dist/cli.js');
const fixturesDir = process.env.KF_TEST_FIXTURES ?? path.join(repoRoot, 'test/.fixtures');
const k8sTarball = path.join(fixturesDir, 'kubernetes_1.20.5+really1.20.2.orig.tar.gz');
const GOPATH_DIR = '/go/src/k8s.io/kubernetes';
const TIME_BIN = '/usr/bin/time';

// `kubeadm version -o json` of Debian's 1.20.2, for the default tree.
const K8S_1202_VERSION_FILE = path.join(repoRoot, 'test/fixtures/kubeadm-version-v1.20.2.json');

// the performance targets, each a ratio to row (a) of the same run on the same machine
const TARGETS = {
  cold: { ratio: 1.25, text: '<= 1.25 x (a)' },
  rebuild: { ratio: 0.25, text: '<= 0.25 x (a)' },
  hit: { seconds: 0.3, text: '<= 0.30 s, 0 containers' },
  rss: { mb: 200, text: '<= 200 MB' },
  tarballCold: { ratio: 1.15, text: '<= 1.15 x (a)' },
  tarballRebuild: { ratio: 0.3, text: '<= 0.30 x (a)' },
  help: { seconds: 0.2, text: '<= 0.20 s' },
};
/** Start-up rows: the best of this many runs. */
const STARTUP_RUNS = 5;

class BenchError extends Error {
  constructor(what, next, code = 1) {
    super(what);
    this.next = next;
    this.code = code;
  }
}

const USAGE = `usage: node bench/run.mjs [--tree DIR --version-file FILE] [--tarball FILE] [--image IMG] [--json] [--strict]
       node bench/run.mjs --startup [--json] [--strict]
  --startup            start-up only: bare node, the npm-installed tool and the single executable
  --tree DIR           Kubernetes source tree (default: Debian's kubernetes 1.20.2)
  --version-file FILE  saved \`kubeadm version\` of that tree (required with --tree)
  --tarball FILE       .tar.gz of the same tree for (f) (default: Debian's .orig.tar.gz; with
                       --tree, a .tar.gz the bench packs from DIR)
  --image IMG          Go image on the engine (default local/golang:1.19.8)
  --json               also print the table as one JSON document on stdout
  --strict             exit 3 when a target is missed`;

export function parseArgs(argv) {
  const opts = {
    tree: undefined,
    versionFile: undefined,
    tarball: undefined,
    image: 'local/golang:1.19.8',
    json: false,
    strict: false,
    startup: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new BenchError(`${a} needs a value`, USAGE, 2);
      return v;
    };
    if (a === '--tree') opts.tree = value();
    else if (a === '--version-file') opts.versionFile = value();
    else if (a === '--tarball') opts.tarball = value();
    else if (a === '--image') opts.image = value();
    else if (a === '--json') opts.json = true;
    else if (a === '--strict') opts.strict = true;
    else if (a === '--startup') opts.startup = true;
    else if (a === '--help' || a === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else throw new BenchError(`unknown argument ${a}`, USAGE, 2);
  }
  if (opts.tree !== undefined && opts.versionFile === undefined) {
    throw new BenchError(
      '--tree needs --version-file',
      'pass the saved `kubeadm version` output of that tree',
      2,
    );
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9_./:@-]*$/.test(opts.image))
    throw new BenchError(`--image '${opts.image}' is not an image name`, USAGE, 2);
  return opts;
}

function log(text) {
  process.stderr.write(`bench: ${text}\n`);
}

function run(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 16 * 1024 * 1024, ...opts }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(err, { stdout, stderr }));
      else resolve({ stdout, stderr });
    });
  });
}

/** What the run made, removed by cleanup() whatever happens. */
const made = { work: '', dirs: [], containers: [], volumes: [], toolPids: [], children: new Set() };

async function cleanup() {
  for (const child of made.children) {
    // Children run in their own process groups; the whole group gets SIGINT (GNU time ignores
    // it, the tool under it removes its container, `docker run` passes it to the container).
    try {
      process.kill(-child.pid, 'SIGINT');
    } catch {
      /* gone */
    }
  }
  const deadline = Date.now() + 15_000;
  while (made.children.size > 0 && Date.now() < deadline) await sleep(100);
  for (const child of made.children) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  const ids = new Set(made.containers);
  for (const pid of made.toolPids) {
    try {
      const { stdout } = await run('docker', ['ps', '-aq', '--filter', `label=kubeadm-forever.pid=${pid}`]);
      for (const id of stdout.split('\n').filter(Boolean)) ids.add(id);
    } catch {
      /* engine gone: nothing to remove */
    }
  }
  for (const id of ids) await run('docker', ['rm', '-f', '-v', id]).catch(() => undefined);
  for (const v of made.volumes) await run('docker', ['volume', 'rm', '-f', v]).catch(() => undefined);
  for (const d of made.dirs) fs.rmSync(d, { recursive: true, force: true });
}

function tempDir(prefix) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.dirs.push(d);
  return d;
}

/** Spawns a child in its own process group (Ctrl-C reaches only the bench, which forwards it). */
function spawnChild(cmd, args, opts = {}) {
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  made.children.add(child);
  const out = [];
  const err = [];
  child.stdout.on('data', (d) => out.push(d));
  child.stderr.on('data', (d) => err.push(d));
  const done = new Promise((resolve) => {
    child.on('close', (code, signal) => {
      made.children.delete(child);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
    child.on('error', (e) => {
      made.children.delete(child);
      resolve({ code: -1, signal: null, stdout: '', stderr: String(e) });
    });
  });
  return { child, done };
}

function tail(text, n = 15) {
  return text
    .trimEnd()
    .split('\n')
    .slice(-n)
    .map((l) => `    ${l}`)
    .join('\n');
}

/** The default tree: the unpacked fixture, else the tarball unpacked into a temp dir. */
async function defaultTree() {
  const fixture = path.join(fixturesDir, 'kubernetes-1.20.2');
  if (fs.existsSync(path.join(fixture, 'cmd/kubeadm'))) return fixture;
  if (!fs.existsSync(k8sTarball)) {
    throw new BenchError(
      `Debian's kubernetes source tarball missing at ${k8sTarball}`,
      "run 'sudo bash scripts/test-env.sh up' first, or pass --tree",
    );
  }
  const dir = tempDir('kf-bench-tree-');
  log(`unpacking ${path.basename(k8sTarball)} into ${dir}`);
  await run('tar', ['-xzf', k8sTarball, '-C', dir, '--strip-components=1', '--no-same-owner']);
  return dir;
}

/** Reads every file once so that (a), measured first, does not pay for a cold page cache. */
function warmTree(dir) {
  const buf = Buffer.alloc(1 << 20);
  let bytes = 0;
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        const fd = fs.openSync(p, 'r');
        try {
          let n;
          while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) bytes += n;
        } finally {
          fs.closeSync(fd);
        }
      }
    }
  };
  walk(dir);
  return bytes;
}

/** Container events of the tool (label kubeadm-forever), for counting and the breakdown. */
function watchEvents() {
  const events = [];
  const { child } = spawnChild('docker', [
    'events',
    '--format',
    '{{json .}}',
    '--filter',
    'type=container',
    '--filter',
    'label=kubeadm-forever=1',
  ]);
  let pending = '';
  child.stdout.on('data', (d) => {
    pending += d.toString('utf8');
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      try {
        const e = JSON.parse(line);
        events.push({
          action: e.Action ?? e.status,
          id: e.Actor?.ID ?? e.id,
          pid: e.Actor?.Attributes?.['kubeadm-forever.pid'],
          t: Number(e.timeNano) / 1e9,
        });
      } catch {
        /* not an event line */
      }
    }
  });
  return {
    events,
    stop: () => {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        /* gone */
      }
    },
  };
}

/**
 * The name of the source volume the tool keeps for a source (its own code computes it):
 * `{ dir }` by the tree's fingerprint, `{ sha256 }` for a tarball by the file's digest.
 */
async function toolSourceVolume(source) {
  const dist = (m) => import(path.join(repoRoot, 'dist', m));
  const { sourceContentId, sourceVolumeName } = await dist('core/source-volume.js');
  const { KUBEADM_PACKAGE } = await dist('core/plan.js');
  let content;
  if (source.dir !== undefined) {
    const { treeFingerprint } = await dist('carry/cache/source-identity.js');
    content = { kind: 'dir', fingerprint: await treeFingerprint(source.dir) };
  } else content = { kind: 'tarball', sha256: source.sha256 };
  return sourceVolumeName(sourceContentId(content, KUBEADM_PACKAGE));
}

/** A fresh Go cache volume of the bench (removed at the end; the smoke test looks for the prefix). */
function freshGoCacheVolume(what) {
  const volume = `kf-bench-gocache-${what}-${process.pid}-${Date.now()}`;
  made.volumes.push(volume);
  return volume;
}

async function sha256File(file) {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk);
  return hash.digest('hex');
}

/** The tarball for (f): --tarball, else Debian's for the default tree, else `tree` packed. */
async function sourceTarball(opts, tree, work) {
  if (opts.tarball !== undefined) {
    const file = path.resolve(opts.tarball);
    if (!fs.statSync(file, { throwIfNoEntry: false })?.isFile())
      throw new BenchError(`--tarball ${file} is not a file`, 'pass a .tar.gz of the same tree', 2);
    return file;
  }
  if (opts.tree === undefined) {
    if (!fs.existsSync(k8sTarball))
      throw new BenchError(
        `Debian's kubernetes source tarball missing at ${k8sTarball}`,
        "run 'sudo bash scripts/test-env.sh up' first, or pass --tarball",
      );
    return k8sTarball;
  }
  // one top folder, like a release tarball: the tree's own name
  const file = path.join(work, 'source.tar.gz');
  log(`packing ${tree} into ${file}`);
  await run('tar', ['-czf', file, '-C', path.dirname(tree), '--', path.basename(tree)]);
  return file;
}

/** (a): the manual way, `docker run` of a plain go build with an empty Go cache. */
async function baseline(tree, image, outDir) {
  const name = `kf-bench-baseline-${process.pid}-${Date.now()}`;
  made.containers.push(name);
  const args = [
    'run',
    '--name',
    name,
    '--label',
    'kubeadm-forever-bench=1',
    '-v',
    `${tree}:${GOPATH_DIR}:ro`,
    '-v',
    `${outDir}:/out`,
    '-e',
    'GO111MODULE=off',
    '-e',
    'CGO_ENABLED=0',
    '-e',
    'GOCACHE=/tmp/gocache',
    '-w',
    GOPATH_DIR,
    image,
    'go',
    'build',
    '-o',
    '/out/kubeadm',
    './cmd/kubeadm',
  ];
  const start = performance.now();
  const r = await spawnChild('docker', args).done;
  const seconds = (performance.now() - start) / 1000;
  await run('docker', ['rm', '-f', name]).catch(() => undefined);
  if (r.code !== 0 || !fs.existsSync(path.join(outDir, 'kubeadm'))) {
    throw new BenchError(
      `(a) the plain go build failed (exit ${r.code ?? r.signal}):\n${tail(r.stdout + r.stderr)}`,
      'check the image and the tree; the baseline must build for the comparison to mean anything',
    );
  }
  return seconds;
}

/** Peak RSS of every tool run, for (e). */
const toolRss = [];

/**
 * One run of the tool under GNU time: wall seconds, peak RSS, and (with a watcher: builds) its
 * containers and their phases.
 */
async function toolRun(label, toolArgs, watcher, what = 'build') {
  const rssFile = path.join(made.work, `rss-${label}-${toolRss.length}`);
  const start = performance.now();
  const { child, done } = spawnChild(TIME_BIN, [
    '-f',
    '%M',
    '-o',
    rssFile,
    process.execPath,
    cliPath,
    ...toolArgs,
  ]);
  // The tool is GNU time's only child; its pid labels the containers it creates.
  const toolPid = await childPidOf(child.pid);
  if (toolPid) made.toolPids.push(toolPid);
  const r = await done;
  const seconds = (performance.now() - start) / 1000;
  if (r.code !== 0) {
    throw new BenchError(
      `(${label}) the tool's ${what} failed (exit ${r.code ?? r.signal}):\n${tail(r.stderr)}`,
      `run the same ${what} by hand${what === 'build' ? ' with --verbose' : ''} to see why`,
    );
  }
  if (!toolPid && watcher)
    throw new BenchError(
      `(${label}) could not find the tool's pid under ${TIME_BIN}`,
      'report it: the container count needs the pid',
    );
  const rssKb = Number(fs.readFileSync(rssFile, 'utf8').trim().split('\n').pop());
  toolRss.push({ label, rssMb: rssKb / 1024 });
  if (!watcher) return { seconds, rssMb: rssKb / 1024, stdout: r.stdout, stderr: r.stderr };
  await sleep(700); // the engine delivers the last events asynchronously
  const mine = watcher.events.filter((e) => e.pid === String(toolPid));
  const at = (id, action) => mine.find((e) => e.id === id && e.action === action)?.t;
  const ids = [...new Set(mine.filter((e) => e.action === 'create').map((e) => e.id))];
  const t0 = Date.now() / 1000 - (performance.now() - start) / 1000;
  const phases = ids.map((id) => {
    const [create, startT, die, destroy] = [
      at(id, 'create'),
      at(id, 'start'),
      at(id, 'die'),
      at(id, 'destroy'),
    ];
    const d = (a, b) => (a !== undefined && b !== undefined ? Math.round((b - a) * 10) / 10 : null);
    return {
      beforeContainer: d(t0, create),
      streamTree: d(create, startT),
      goBuild: d(startT, die),
      copyOutAndRemove: d(die, destroy),
    };
  });
  return { seconds, rssMb: rssKb / 1024, containers: ids.length, phases, stderr: r.stderr };
}

/** Start-up: the best wall time of STARTUP_RUNS runs of the tool (no container expected). */
async function startupRun(label, toolArgs) {
  let best = Infinity;
  for (let i = 0; i < STARTUP_RUNS; i++)
    best = Math.min(best, (await toolRun(label, toolArgs, undefined, 'run')).seconds);
  return { seconds: best };
}

/** The best wall time of STARTUP_RUNS runs of `node -e 0`: what (g) cannot go below. */
async function bareNodeStartup() {
  let best = Infinity;
  for (let i = 0; i < STARTUP_RUNS; i++) {
    const start = performance.now();
    const r = await spawnChild(process.execPath, ['-e', '0']).done;
    if (r.code !== 0)
      throw new BenchError(`node -e 0 failed (exit ${r.code ?? r.signal})`, 'check the Node installation');
    best = Math.min(best, (performance.now() - start) / 1000);
  }
  return best;
}

/** (h2): several single builds, summed: seconds, containers, and each build's own count. */
function sumBuilds(builds) {
  return {
    seconds: builds.reduce((t, b) => t + b.seconds, 0),
    containers: builds.reduce((t, b) => t + b.containers, 0),
    containersEach: builds.map((b) => b.containers),
    phases: builds.flatMap((b) => b.phases),
  };
}

async function childPidOf(pid) {
  for (let i = 0; i < 500; i++) {
    try {
      const children = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
      if (children) return Number(children.split(/\s+/)[0]);
    } catch {
      return undefined;
    }
    await sleep(5);
  }
  return undefined;
}

const round = (x, d = 2) => (x === null || x === undefined ? null : Math.round(x * 10 ** d) / 10 ** d);

/**
 * The rows, each with its ratio to (a). `pass`: true/false against the row's target; null when
 * it has none. A build whose container count is not the expected one fails (its comparison
 * would not be the one the row names).
 */
export function makeTable(m) {
  const ratio = (s) => round(s / m.baseline, 3);
  const build = (id, step, r, target, meets, expectedContainers) => {
    const containersOk = r.containers === expectedContainers;
    return {
      id,
      step,
      seconds: round(r.seconds),
      ratio: ratio(r.seconds),
      target: target ?? '-',
      pass: target === undefined ? (containersOk ? null : false) : meets(r.seconds) && containersOk,
      containers: r.containers,
      expectedContainers,
      phases: r.phases,
    };
  };
  const startup = (id, step, r, target) => ({
    id,
    step,
    seconds: round(r.seconds, 3),
    ratio: ratio(r.seconds),
    target: target?.text ?? '-',
    pass: target ? r.seconds <= target.seconds : null,
  });
  const underRatio = (t) => (s) => s <= t.ratio * m.baseline;
  const underSeconds = (t) => (s) => s <= t.seconds;
  const rows = [
    {
      id: 'a',
      step: '(a) plain go build (baseline)',
      seconds: round(m.baseline),
      ratio: 1,
      target: '-',
      pass: null,
    },
    build('b', '(b) tool cold build, dir', m.cold, TARGETS.cold.text, underRatio(TARGETS.cold), 1),
    build(
      'c',
      '(c) tool rebuild, dir, other validity',
      m.rebuild,
      TARGETS.rebuild.text,
      underRatio(TARGETS.rebuild),
      1,
    ),
    build('d', '(d) tool cache hit, dir', m.hit, TARGETS.hit.text, underSeconds(TARGETS.hit), 0),
    {
      id: 'e',
      step: '(e) tool peak RSS, max of all tool runs',
      seconds: null,
      ratio: null,
      rssMb: round(m.rss.rssMb, 1),
      rssAt: m.rss.label,
      target: TARGETS.rss.text,
      pass: m.rss.rssMb <= TARGETS.rss.mb,
    },
    build(
      'f1',
      '(f1) tool cold build, tarball',
      m.tarballCold,
      TARGETS.tarballCold.text,
      underRatio(TARGETS.tarballCold),
      1,
    ),
    build(
      'f2',
      '(f2) tool rebuild, tarball, other validity',
      m.tarballRebuild,
      TARGETS.tarballRebuild.text,
      underRatio(TARGETS.tarballRebuild),
      1,
    ),
    build('f3', '(f3) tool cache hit, tarball', m.tarballHit, TARGETS.hit.text, underSeconds(TARGETS.hit), 0),
    startup('g1', `(g1) start-up: --help, best of ${STARTUP_RUNS}`, m.help, TARGETS.help),
    startup('g2', `(g2) start-up: check, best of ${STARTUP_RUNS}`, m.check, undefined),
    {
      ...build('h1', '(h1) tool amd64+arm64, one build', m.multi, undefined, undefined, 2),
      ratioToH2: round(m.multi.seconds / m.singles.seconds, 3),
    },
    {
      ...build('h2', '(h2) tool amd64, then arm64: 2 builds', m.singles, undefined, undefined, 2),
      containersEach: m.singles.containersEach,
    },
  ];
  // h2 is two builds of one container each, not one build of two
  const h2 = rows.at(-1);
  if (h2.containersEach.some((n) => n !== 1)) h2.pass = false;
  return rows;
}

function formatTable(rows, machine) {
  const cells = rows.map((r) => [
    r.step,
    r.seconds === null ? `${r.rssMb} MB` : `${r.seconds.toFixed(r.seconds < 1 ? 3 : 2)} s`,
    r.ratio === null ? '-' : `${r.ratio.toFixed(3)}`,
    r.target,
    r.pass === null ? '-' : r.pass ? 'pass' : 'FAIL',
    r.containers === undefined ? '' : String(r.containers),
  ]);
  const head = ['step', 'time / RSS', 'x (a)', 'target', 'result', 'containers'];
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c) => `| ${c.map((x, i) => x.padEnd(widths[i])).join(' | ')} |`;
  const out = [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.map(line)];
  out.push('');
  out.push(
    `machine: ${machine.cores} cores, ${machine.memoryGiB} GiB; load average at start ${machine.loadAtStart.join(' ')}, at end ${machine.loadAtEnd.join(' ')}; bare \`node -e 0\` ${machine.bareNodeSeconds} s (best of ${STARTUP_RUNS})`,
  );
  out.push(`tree: ${machine.tree} (${machine.treeMiB} MiB read); image ${machine.image}; ${machine.when}`);
  out.push(
    `tarball: ${machine.tarball} (${machine.tarballMiB} MiB, sha256 ${machine.tarballSha256.slice(0, 16)}...)`,
  );
  for (const r of rows.filter((x) => x.phases?.length)) {
    for (const p of r.phases) {
      out.push(
        `(${r.id}) container phases: before ${p.beforeContainer} s, stream tree in ${p.streamTree} s, go build ${p.goBuild} s, copy out + remove ${p.copyOutAndRemove} s`,
      );
    }
  }
  const byId = Object.fromEntries(rows.map((r) => [r.id, r]));
  out.push(`(e) peak RSS at (${byId.e.rssAt})`);
  out.push(`(h1) / (h2): ${byId.h1.ratioToH2.toFixed(3)}`);
  for (const r of rows.filter((x) => x.expectedContainers !== undefined)) {
    const each = r.containersEach ? ` (${r.containersEach.join(' + ')})` : '';
    if (r.containers !== r.expectedContainers || r.containersEach?.some((n) => n !== 1))
      out.push(
        `WARNING: (${r.id}) ran ${r.containers} container(s)${each}, expected ${r.expectedContainers}`,
      );
  }
  out.push('baseline: tree bind-mounted read-only at /go/src/k8s.io/kubernetes');
  out.push(
    "tool: (b) streams the files of kubeadm's packages into a new source volume, (c) only the patched files (the 'stream' phase); (f) the same from the tarball",
  );
  out.push(
    `(g) wall seconds of the whole process, best of ${STARTUP_RUNS}; check reads a PKI of three CAs made by \`ca init\``,
  );
  if (machine.loaded)
    out.push(
      `WARNING: load average ${machine.loadAtStart[0]} > 1.5 at start: other work shared the CPUs, these numbers are not trustworthy`,
    );
  return out.join('\n');
}

const STARTUP_TARGET = { ratio: 1.5, text: '<= 1.5 x node -e 0' };

/** GNU time's wall and CPU (user+sys) seconds of one run; a failed run is an error. */
async function timedRun(label, cmd, args) {
  const file = path.join(made.work, `time-${label}`);
  const r = await spawnChild(TIME_BIN, ['-f', '%e %U %S', '-o', file, cmd, ...args], { env: {} }).done;
  if (r.code !== 0)
    throw new BenchError(
      `(${label}) exited ${r.code ?? r.signal}:\n${tail(r.stderr)}`,
      'run it by hand to see why',
    );
  const [wall, user, sys] = fs.readFileSync(file, 'utf8').trim().split('\n').at(-1).split(' ').map(Number);
  return { wall, cpu: user + sys };
}

/** --startup: see the header. */
async function startupMain(opts) {
  const arch = { x64: 'amd64', arm64: 'arm64' }[process.arch];
  const exe = path.join(repoRoot, 'dist-bin', `kubeadm-forever-linux-${arch}`);
  if (!fs.existsSync(exe)) throw new BenchError(`${exe} is missing`, "run 'npm run dist' first");
  const node24 = path.join(repoRoot, 'dist-bin/.work', `node-linux-${process.arch}`, 'package/bin/node');
  const work = tempDir('kf-bench-startup-');
  made.work = work;
  const pki = path.join(work, 'pki');
  await timedRun('ca-init', process.execPath, [cliPath, 'ca', 'init', '--out', pki]);
  for (const d of ['kubeconfigs', 'kubelet']) fs.mkdirSync(path.join(work, d));
  const check = [
    'check',
    '--pki-dir',
    pki,
    '--kubeconfig-dir',
    path.join(work, 'kubeconfigs'),
    '--kubelet-dir',
    path.join(work, 'kubelet'),
    '--apiserver',
    'none',
  ];
  const cases = [
    { id: 'node', step: 'bare node -e 0', cmd: process.execPath, args: ['-e', '0'] },
    // the executable's own Node (npm run dist keeps it): the floor of the executable's rows
    ...(fs.existsSync(node24)
      ? [{ id: 'node-sea', step: "the executable's Node -e 0", cmd: node24, args: ['-e', '0'] }]
      : []),
    { id: 'npm-help', step: 'npm-installed tool: --help', cmd: process.execPath, args: [cliPath, '--help'] },
    { id: 'exe-help', step: 'single executable: --help', cmd: exe, args: ['--help'], target: STARTUP_TARGET },
    { id: 'npm-check', step: 'npm-installed tool: check', cmd: process.execPath, args: [cliPath, ...check] },
    { id: 'exe-check', step: 'single executable: check', cmd: exe, args: check },
  ];
  const loadAtStart = os.loadavg().map((x) => round(x));
  // one untimed run each first: the executable's 130 MB into the page cache
  for (const c of cases) await timedRun(c.id, c.cmd, c.args);
  const best = Object.fromEntries(cases.map((c) => [c.id, { wall: Infinity, cpu: Infinity }]));
  for (let i = 0; i < STARTUP_RUNS; i++)
    for (const c of cases) {
      const t = await timedRun(c.id, c.cmd, c.args);
      best[c.id].wall = Math.min(best[c.id].wall, t.wall);
      best[c.id].cpu = Math.min(best[c.id].cpu, t.cpu);
    }
  const floor = best.node;
  const rows = cases.map((c) => {
    const b = best[c.id];
    const ratio = round(b.wall / floor.wall, 2);
    const cpuRatio = round(b.cpu / floor.cpu, 2);
    return {
      id: c.id,
      step: c.step,
      seconds: round(b.wall, 3),
      ratio,
      cpuSeconds: round(b.cpu, 3),
      cpuRatio,
      target: c.target?.text ?? '-',
      pass: c.target ? ratio <= c.target.ratio : null,
    };
  });
  const size = fs.statSync(exe).size;
  const { gzipSync } = await import('node:zlib');
  const gzipped = gzipSync(fs.readFileSync(exe), { level: 9 }).length;
  const head = [
    'step',
    `wall, best of ${STARTUP_RUNS}`,
    'x node',
    'CPU user+sys',
    'x node',
    'target',
    'result',
  ];
  const cells = rows.map((r) => [
    r.step,
    `${r.seconds.toFixed(3)} s`,
    r.ratio.toFixed(2),
    `${r.cpuSeconds.toFixed(3)} s`,
    r.cpuRatio.toFixed(2),
    r.target,
    r.pass === null ? '-' : r.pass ? 'pass' : 'FAIL',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c) => `| ${c.map((x, i) => x.padEnd(widths[i])).join(' | ')} |`;
  const machine = { cores: os.cpus().length, loadAtStart, loadAtEnd: os.loadavg().map((x) => round(x)) };
  const text = [
    line(head),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...cells.map(line),
    '',
    `executable ${path.relative(repoRoot, exe)}: ${(size / 1e6).toFixed(1)} MB, ${(gzipped / 1e6).toFixed(1)} MB gzipped (as a bundle carries it)`,
    `machine: ${machine.cores} cores; load average at start ${loadAtStart.join(' ')}, at end ${machine.loadAtEnd.join(' ')}; node ${process.version}`,
  ].join('\n');
  process.stderr.write(`${text}\n`);
  if (opts.json)
    process.stdout.write(`${JSON.stringify({ rows, executable: { size, gzipped }, machine }, null, 2)}\n`);
  return opts.strict && rows.some((r) => r.pass === false) ? 3 : 0;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(cliPath))
    throw new BenchError(`${cliPath} is missing`, "run 'npm run build' first (npm run bench does)");
  if (opts.startup) return startupMain(opts);
  if (!fs.existsSync(TIME_BIN))
    throw new BenchError(
      `${TIME_BIN} is missing (it measures the peak RSS)`,
      "install Debian's time package: apt-get install -y time",
    );
  try {
    await run('docker', ['image', 'inspect', '--format', '{{.Id}}', opts.image]);
  } catch (err) {
    throw new BenchError(
      `image ${opts.image} is not on the Docker engine: ${
        String(err.stderr || err.message)
          .trim()
          .split('\n')[0]
      }`,
      "make it with `bash scripts/test-env.sh up` (the tool's image command), or pass --image",
    );
  }
  const work = tempDir('kf-bench-');
  made.work = work;
  const tree = path.resolve(opts.tree ?? (await defaultTree()));
  if (!fs.existsSync(path.join(tree, 'cmd/kubeadm')))
    throw new BenchError(`${tree} has no cmd/kubeadm`, 'pass --tree the top of a Kubernetes source tree', 2);
  let versionFile = opts.versionFile && path.resolve(opts.versionFile);
  if (!versionFile) versionFile = K8S_1202_VERSION_FILE;

  const tarball = await sourceTarball(opts, tree, work);
  const tarballSha256 = await sha256File(tarball);
  log(`tarball ${tarball}: sha256 ${tarballSha256}`);

  const loadAtStart = os.loadavg().map((x) => round(x));
  if (loadAtStart[0] > 1.5)
    log(`WARNING: 1-minute load average is ${loadAtStart[0]} (> 1.5): the numbers will not be trustworthy`);
  const treeBytes = warmTree(tree);
  log(`tree ${tree}: ${(treeBytes / 2 ** 20).toFixed(0)} MiB read once to warm the page cache`);

  const watcher = watchEvents();
  try {
    // (b) and (f1) must be cold: the tool's source volumes for the tree and the tarball are
    // removed first, and at the end
    const sourceVolume = await toolSourceVolume({ dir: tree });
    const tarballSourceVolume = await toolSourceVolume({ sha256: tarballSha256 });
    for (const v of [sourceVolume, tarballSourceVolume]) {
      made.volumes.push(v);
      await run('docker', ['volume', 'rm', '-f', v]);
    }
    /** The tool's build flags of one group of rows: its own binary cache dir, output and Go cache volume. */
    const buildArgs = (group, source, goCacheVolume) => [
      'build',
      '--verbose',
      ...source,
      '--version-file',
      versionFile,
      '--image',
      opts.image,
      '--out',
      path.join(work, `kubeadm-${group}`),
      '--cache-dir',
      path.join(work, `cache-${group}`),
      '--go-cache-volume',
      goCacheVolume,
      '--no-verify',
    ];
    const dirSource = ['--source-dir', tree];
    const common = buildArgs('dir', dirSource, freshGoCacheVolume('dir'));
    const fromTarball = buildArgs('tarball', ['--source-tarball', tarball], freshGoCacheVolume('tarball'));

    log('(a) plain go build in the image, empty Go cache ...');
    const baseOut = path.join(work, 'baseline-out');
    fs.mkdirSync(baseOut);
    const m = { baseline: await baseline(tree, opts.image, baseOut) };
    log(`(a) ${m.baseline.toFixed(1)} s`);
    log('(b) tool cold build from the directory ...');
    m.cold = await toolRun('b', common, watcher);
    log(`(b) ${m.cold.seconds.toFixed(1)} s`);
    log('(c) tool rebuild with --validity 198y ...');
    m.rebuild = await toolRun('c', [...common, '--validity', '198y'], watcher);
    log(`(c) ${m.rebuild.seconds.toFixed(1)} s`);
    log('(d) tool cache hit (same inputs as (c)) ...');
    m.hit = await toolRun('d', [...common, '--validity', '198y'], watcher);
    log(`(d) ${m.hit.seconds.toFixed(2)} s, ${m.hit.containers} container(s)`);

    log('(f1) tool cold build from the tarball ...');
    m.tarballCold = await toolRun('f1', fromTarball, watcher);
    log(`(f1) ${m.tarballCold.seconds.toFixed(1)} s`);
    log('(f2) tool rebuild from the tarball with --validity 198y ...');
    m.tarballRebuild = await toolRun('f2', [...fromTarball, '--validity', '198y'], watcher);
    log(`(f2) ${m.tarballRebuild.seconds.toFixed(1)} s`);
    log('(f3) tool cache hit from the tarball (same inputs as (f2)) ...');
    m.tarballHit = await toolRun('f3', [...fromTarball, '--validity', '198y'], watcher);
    log(`(f3) ${m.tarballHit.seconds.toFixed(2)} s, ${m.tarballHit.containers} container(s)`);

    // the floor under (g): on a shared VM, bare Node's own start-up varies by 2x over a day
    m.bareNode = await bareNodeStartup();
    log(`bare node -e 0: ${m.bareNode.toFixed(3)} s (best of ${STARTUP_RUNS})`);
    log(`(g1) start-up: --help, ${STARTUP_RUNS} runs ...`);
    m.help = await startupRun('g1', ['--help']);
    log(`(g1) ${m.help.seconds.toFixed(3)} s`);
    const pki = path.join(work, 'pki');
    await toolRun('g2-setup', ['ca', 'init', '--out', pki], undefined, 'ca init');
    const emptyDir = (name) => {
      const d = path.join(work, name);
      fs.mkdirSync(d);
      return d;
    };
    const checkArgs = [
      'check',
      '--pki-dir',
      pki,
      '--kubeconfig-dir',
      emptyDir('kubeconfigs'),
      '--kubelet-dir',
      emptyDir('kubelet-pki'),
      '--apiserver',
      'none',
    ];
    log(`(g2) start-up: check, ${STARTUP_RUNS} runs ...`);
    m.check = await startupRun('g2', checkArgs);
    log(`(g2) ${m.check.seconds.toFixed(3)} s`);

    const platforms = ['linux/amd64', 'linux/arm64'];
    log(`(h1) tool build for ${platforms.join(' and ')} in one run ...`);
    const multi = buildArgs('h1', dirSource, freshGoCacheVolume('h1'));
    m.multi = await toolRun('h1', [...multi, ...platforms.flatMap((p) => ['--platform', p])], watcher);
    log(`(h1) ${m.multi.seconds.toFixed(1)} s, ${m.multi.containers} container(s)`);
    const h2Volume = freshGoCacheVolume('h2');
    const singles = [];
    for (const p of platforms) {
      log(`(h2) tool build for ${p} ...`);
      const single = buildArgs(`h2-${p.replace('/', '-')}`, dirSource, h2Volume);
      singles.push(await toolRun('h2', [...single, '--platform', p], watcher));
      log(`(h2) ${p}: ${singles.at(-1).seconds.toFixed(1)} s, ${singles.at(-1).containers} container(s)`);
    }
    m.singles = sumBuilds(singles);
    m.rss = toolRss.reduce((max, r) => (r.rssMb > max.rssMb ? r : max));

    const rows = makeTable(m);
    const machine = {
      cores: os.cpus().length,
      memoryGiB: round(os.totalmem() / 2 ** 30, 1),
      loadAtStart,
      loadAtEnd: os.loadavg().map((x) => round(x)),
      loaded: loadAtStart[0] > 1.5,
      tree,
      treeMiB: Math.round(treeBytes / 2 ** 20),
      tarball,
      tarballMiB: round(fs.statSync(tarball).size / 2 ** 20, 1),
      tarballSha256,
      image: opts.image,
      bareNodeSeconds: round(m.bareNode, 3),
      when: new Date().toISOString(),
    };
    // --json: the table for people on stderr, one JSON document on stdout.
    if (opts.json) {
      process.stderr.write(`\n${formatTable(rows, machine)}\n`);
      process.stdout.write(`${JSON.stringify({ rows, machine }, null, 2)}\n`);
    } else process.stdout.write(`\n${formatTable(rows, machine)}\n`);
    return opts.strict && rows.some((r) => r.pass === false) ? 3 : 0;
  } finally {
    watcher.stop();
  }
}

let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    log(`interrupted by ${signal}: removing containers, volumes and temp dirs`);
    void cleanup().finally(() => {
      process.stderr.write(`error: interrupted by ${signal}\nnext: run npm run bench again\n`);
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  let code;
  try {
    code = await main();
  } catch (err) {
    if (interrupted) await new Promise(() => undefined);
    process.stderr.write(
      `error: ${err instanceof BenchError ? err.message : (err?.stack ?? err)}\nnext: ${err instanceof BenchError ? err.next : 'report it'}\n`,
    );
    code = err instanceof BenchError ? err.code : 1;
  }
  if (!interrupted) {
    await cleanup();
    process.exit(code);
  }
}
