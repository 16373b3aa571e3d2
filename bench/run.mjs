#!/usr/bin/env node
// Benchmark of kubeadm-forever against a plain `go build` of the same tree in the same image.
//
//   npm run bench -- [--tree DIR --version-file FILE] [--image IMG] [--json] [--strict]
//
// Prerequisites (Debian 12): a running Docker engine with the Go image (default
// local/golang:1.19.8, see shared/environment.md), the `docker` client, and GNU time for the
// peak RSS (`apt-get install -y time`, giving /usr/bin/time). The default tree is Debian's
// kubernetes 1.20.2 (test/.fixtures/kubernetes-1.20.2, unpacked from the .orig.tar.gz into a
// temp dir when absent).
//
// Steps, in one run, sharing one fresh Go cache volume, one empty binary cache dir and the
// tool's source volume for the tree (removed before (b), so (b) fills it, and at the end):
//   (a) baseline: `docker run ... go build ./cmd/kubeadm` of the tree (bind-mounted read-only at
//       /go/src/k8s.io/kubernetes, GO111MODULE=off, CGO_ENABLED=0, an empty GOCACHE), as the
//       manual procedure does it;
//   (b) the tool's cold build (fresh --go-cache-volume, empty --cache-dir);
//   (c) the tool's rebuild with another validity (same volume);
//   (d) the same inputs as (c) again: a cache hit, which must start no container;
//   (e) the tool's peak RSS, max over (b)-(d) (GNU time's "Maximum resident set size").
// Containers are counted from `docker events` (label kubeadm-forever.pid = the tool's pid),
// which also gives the breakdown of each tool build: before the container, streaming the tree
// in (create -> start: putArchive), compiling (start -> die), copying out and removing.
//
// Exit: 0 when every step ran (targets missed are shown as FAIL; --strict makes them exit 3),
// 1 when a step failed to run, 2 on bad arguments, 130 on Ctrl-C. Everything it made
// (containers, the volume, temp dirs) is removed in every case.

import { Buffer } from 'node:buffer';
import { spawn, execFile } from 'node:child_process';
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

// `kubeadm version -o json` of Debian's 1.20.2 (shared/environment.md), for the default tree.
const K8S_1202_VERSION_FILE = path.join(repoRoot, 'test/fixtures/kubeadm-version-v1.20.2.json');

const TARGETS = {
  cold: { ratio: 1.25, text: '<= 1.25 x (a)' },
  rebuild: { ratio: 0.25, text: '<= 0.25 x (a)' },
  hit: { seconds: 1.5, text: '<= 1.5 s, 0 containers' },
  rss: { mb: 250, text: '<= 250 MB' },
};

class BenchError extends Error {
  constructor(what, next, code = 1) {
    super(what);
    this.next = next;
    this.code = code;
  }
}

const USAGE = `usage: node bench/run.mjs [--tree DIR --version-file FILE] [--image IMG] [--json] [--strict]
  --tree DIR           Kubernetes source tree (default: Debian's kubernetes 1.20.2)
  --version-file FILE  saved \`kubeadm version\` of that tree (required with --tree)
  --image IMG          Go image on the engine (default local/golang:1.19.8)
  --json               also print the table as one JSON document on stdout
  --strict             exit 3 when a target is missed`;

export function parseArgs(argv) {
  const opts = {
    tree: undefined,
    versionFile: undefined,
    image: 'local/golang:1.19.8',
    json: false,
    strict: false,
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
    else if (a === '--image') opts.image = value();
    else if (a === '--json') opts.json = true;
    else if (a === '--strict') opts.strict = true;
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

/** The name of the source volume the tool keeps for `tree` (its own code computes it). */
async function toolSourceVolume(tree) {
  const dist = (m) => import(path.join(repoRoot, 'dist', m));
  const { treeFingerprint } = await dist('carry/cache/source-identity.js');
  const { sourceContentId, sourceVolumeName } = await dist('core/source-volume.js');
  const { KUBEADM_PACKAGE } = await dist('core/plan.js');
  return sourceVolumeName(
    sourceContentId({ kind: 'dir', fingerprint: await treeFingerprint(tree) }, KUBEADM_PACKAGE),
  );
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

/** One run of the tool under GNU time: wall seconds, peak RSS, its containers and their phases. */
async function toolBuild(label, toolArgs, watcher) {
  const rssFile = path.join(made.work, `rss-${label}`);
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
      `(${label}) the tool's build failed (exit ${r.code ?? r.signal}):\n${tail(r.stderr)}`,
      'run the same build by hand with --verbose to see why',
    );
  }
  if (!toolPid)
    throw new BenchError(
      `(${label}) could not find the tool's pid under ${TIME_BIN}`,
      'report it: the container count needs the pid',
    );
  const rssKb = Number(fs.readFileSync(rssFile, 'utf8').trim().split('\n').pop());
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

export function makeTable(m) {
  const ratio = (s) => round(s / m.baseline, 3);
  return [
    { step: '(a) plain go build (baseline)', seconds: round(m.baseline), ratio: 1, target: '-', pass: null },
    {
      step: '(b) tool cold build',
      seconds: round(m.cold.seconds),
      ratio: ratio(m.cold.seconds),
      target: TARGETS.cold.text,
      pass: m.cold.seconds <= TARGETS.cold.ratio * m.baseline,
      containers: m.cold.containers,
      phases: m.cold.phases,
    },
    {
      step: '(c) tool rebuild, other validity',
      seconds: round(m.rebuild.seconds),
      ratio: ratio(m.rebuild.seconds),
      target: TARGETS.rebuild.text,
      pass: m.rebuild.seconds <= TARGETS.rebuild.ratio * m.baseline,
      containers: m.rebuild.containers,
      phases: m.rebuild.phases,
    },
    {
      step: '(d) tool cache hit',
      seconds: round(m.hit.seconds),
      ratio: ratio(m.hit.seconds),
      target: TARGETS.hit.text,
      pass: m.hit.seconds <= TARGETS.hit.seconds && m.hit.containers === 0,
      containers: m.hit.containers,
      phases: m.hit.phases,
    },
    {
      step: '(e) tool peak RSS, max of (b)-(d)',
      seconds: null,
      ratio: null,
      rssMb: round(m.rssMb, 1),
      target: TARGETS.rss.text,
      pass: m.rssMb <= TARGETS.rss.mb,
    },
  ];
}

function formatTable(rows, machine) {
  const cells = rows.map((r) => [
    r.step,
    r.seconds === null ? `${r.rssMb} MB` : `${r.seconds.toFixed(2)} s`,
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
    `machine: ${machine.cores} cores, ${machine.memoryGiB} GiB; load average at start ${machine.loadAtStart.join(' ')}, at end ${machine.loadAtEnd.join(' ')}`,
  );
  out.push(`tree: ${machine.tree} (${machine.treeMiB} MiB read); image ${machine.image}; ${machine.when}`);
  for (const r of rows.filter((x) => x.phases?.length)) {
    for (const p of r.phases) {
      out.push(
        `${r.step.slice(0, 3)} container phases: before ${p.beforeContainer} s, stream tree in ${p.streamTree} s, go build ${p.goBuild} s, copy out + remove ${p.copyOutAndRemove} s`,
      );
    }
  }
  out.push('baseline: tree bind-mounted read-only at /go/src/k8s.io/kubernetes');
  out.push(
    "tool: (b) streams the files of kubeadm's packages into a new source volume, (c) only the patched files (the 'stream' phase)",
  );
  if (machine.loaded)
    out.push(
      `WARNING: load average ${machine.loadAtStart[0]} > 1.5 at start: other work shared the CPUs, these numbers are not trustworthy`,
    );
  return out.join('\n');
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(cliPath))
    throw new BenchError(`${cliPath} is missing`, "run 'npm run build' first (npm run bench does)");
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
      'build it as shared/environment.md says, or pass --image',
    );
  }
  const work = tempDir('kf-bench-');
  made.work = work;
  const tree = path.resolve(opts.tree ?? (await defaultTree()));
  if (!fs.existsSync(path.join(tree, 'cmd/kubeadm')))
    throw new BenchError(`${tree} has no cmd/kubeadm`, 'pass --tree the top of a Kubernetes source tree', 2);
  let versionFile = opts.versionFile && path.resolve(opts.versionFile);
  if (!versionFile) versionFile = K8S_1202_VERSION_FILE;

  const loadAtStart = os.loadavg().map((x) => round(x));
  if (loadAtStart[0] > 1.5)
    log(`WARNING: 1-minute load average is ${loadAtStart[0]} (> 1.5): the numbers will not be trustworthy`);
  const treeBytes = warmTree(tree);
  log(`tree ${tree}: ${(treeBytes / 2 ** 20).toFixed(0)} MiB read once to warm the page cache`);

  const watcher = watchEvents();
  try {
    const volume = `kf-bench-gocache-${process.pid}-${Date.now()}`;
    made.volumes.push(volume);
    // (b) must be cold: the tool's source volume for this tree is removed first, and at the end
    const sourceVolume = await toolSourceVolume(tree);
    made.volumes.push(sourceVolume);
    await run('docker', ['volume', 'rm', '-f', sourceVolume]);
    const cacheDir = path.join(work, 'cache');
    const out = path.join(work, 'kubeadm-out');
    const common = [
      'build',
      '--verbose',
      '--source-dir',
      tree,
      '--version-file',
      versionFile,
      '--image',
      opts.image,
      '--out',
      out,
      '--cache-dir',
      cacheDir,
      '--go-cache-volume',
      volume,
      '--no-verify',
    ];

    log('(a) plain go build in the image, empty Go cache ...');
    const baseOut = path.join(work, 'baseline-out');
    fs.mkdirSync(baseOut);
    const m = { baseline: await baseline(tree, opts.image, baseOut) };
    log(`(a) ${m.baseline.toFixed(1)} s`);
    log('(b) tool cold build ...');
    m.cold = await toolBuild('b', common, watcher);
    log(`(b) ${m.cold.seconds.toFixed(1)} s`);
    log('(c) tool rebuild with --validity 198y ...');
    m.rebuild = await toolBuild('c', [...common, '--validity', '198y'], watcher);
    log(`(c) ${m.rebuild.seconds.toFixed(1)} s`);
    log('(d) tool cache hit (same inputs as (c)) ...');
    m.hit = await toolBuild('d', [...common, '--validity', '198y'], watcher);
    log(`(d) ${m.hit.seconds.toFixed(1)} s, ${m.hit.containers} container(s)`);
    m.rssMb = Math.max(m.cold.rssMb, m.rebuild.rssMb, m.hit.rssMb);

    const rows = makeTable(m);
    const machine = {
      cores: os.cpus().length,
      memoryGiB: round(os.totalmem() / 2 ** 30, 1),
      loadAtStart,
      loadAtEnd: os.loadavg().map((x) => round(x)),
      loaded: loadAtStart[0] > 1.5,
      tree,
      treeMiB: Math.round(treeBytes / 2 ** 20),
      image: opts.image,
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
    log(`interrupted by ${signal}: removing containers, volume and temp dirs`);
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
