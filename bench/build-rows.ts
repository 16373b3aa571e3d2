import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { KfError, UsageError, messageOf } from '../src/core/errors.js';
import { KUBEADM_PACKAGE } from '../src/core/plan.js';
import { sourceContentId, sourceVolumeName, type SourceContent } from '../src/core/source-volume.js';
import { formatTable } from '../src/core/text-table.js';
import { DEFAULT_CA_VALIDITY } from '../src/core/validity.js';
import { treeFingerprint } from '../src/carry/cache/source-identity.js';
import { fixturesDir, k8s1202VersionFile, k8sTarball } from '../test/helpers/env.js';
import { makeClusterPki } from '../test/helpers/files-nodes.js';
import {
  STARTUP_RUNS,
  TIME_BIN,
  bareNodeStartup,
  cliPath,
  loadAverage,
  log,
  resultCell,
  round,
  run,
  spawnChild,
  stepFailed,
  tempDir,
  trackContainer,
  trackToolPid,
  trackVolume,
  type Finished,
} from './harness.js';

/**
 * The build rows: the tool against a plain `go build` of the same tree in the same image (the
 * baseline (a)), every row a scenario with its measurement and its target as a ratio to (a) of
 * the same run (or seconds/MB where a ratio means nothing). docs/performance.md describes them.
 */

export interface BuildOptions {
  tree?: string;
  versionFile?: string;
  tarball?: string;
  image: string;
}

const GOPATH_DIR = '/go/src/k8s.io/kubernetes';

/** The timings of one container of a tool build. */
interface Phases {
  beforeContainer: number | null;
  streamTree: number | null;
  goBuild: number | null;
  copyOutAndRemove: number | null;
}

/** One tool run (or several summed): wall seconds, containers and their phases. */
interface Measured {
  seconds: number;
  containers?: number;
  containersEach?: number[];
  phases?: Phases[];
}

/** A row of the table, as --json prints it. */
export interface BuildRow {
  id: string;
  step: string;
  seconds: number | null;
  ratio: number | null;
  target: string;
  pass: boolean | null;
  containers?: number;
  expectedContainers?: number;
  phases?: Phases[];
  rssMb?: number;
  rssAt?: string;
  ratioToH2?: number;
  containersEach?: number[];
}

type Target =
  { text: string; ratio: number } | { text: string; seconds: number } | { text: string; mb: number };

/** The targets, each a ratio to row (a) of the same run on the same machine, or an absolute bound. */
export const TARGETS = {
  cold: { ratio: 1.25, text: '<= 1.25 x (a)' },
  rebuild: { ratio: 0.25, text: '<= 0.25 x (a)' },
  hit: { seconds: 0.3, text: '<= 0.30 s, 0 containers' },
  rss: { mb: 200, text: '<= 200 MB' },
  tarballCold: { ratio: 1.15, text: '<= 1.15 x (a)' },
  tarballRebuild: { ratio: 0.3, text: '<= 0.30 x (a)' },
  help: { seconds: 0.2, text: '<= 0.20 s' },
} satisfies Record<string, Target>;

/** What the scenarios share: the tree, the tarball, the build flags and the docker events. */
interface Context {
  opts: BuildOptions;
  work: string;
  tree: string;
  versionFile: string;
  tarball: string;
  watcher: Watcher;
  /** the flags of a group of builds: its own output, binary cache dir and Go cache volume */
  buildArgs(group: string, source: string[], goCacheVolume: string): string[];
  dirBuild: string[];
  tarballBuild: string[];
  /** peak RSS of every tool run, for (e) */
  rss: { label: string; rssMb: number }[];
  /** measured by the scenarios that ran so far, by id */
  measured: Map<string, Measured>;
  bareNode: number;
}

interface Scenario {
  id: string;
  step: string;
  /** the measurement; rows without one are computed from the others after every run */
  measure?(ctx: Context): Promise<Measured>;
  target?: Target;
  /** containers the build must start: another count makes the row FAIL (it measured something else) */
  expectedContainers?: number;
  kind: 'baseline' | 'build' | 'startup' | 'rss';
}

const WITH_198Y = ['--validity', '198y'];

const SCENARIOS: Scenario[] = [
  {
    id: 'a',
    step: '(a) plain go build (baseline)',
    kind: 'baseline',
    measure: async (ctx) => ({ seconds: await baseline(ctx) }),
  },
  {
    id: 'b',
    step: '(b) tool cold build, dir',
    kind: 'build',
    target: TARGETS.cold,
    expectedContainers: 1,
    measure: (ctx) => toolRun(ctx, 'b', ctx.dirBuild),
  },
  {
    id: 'c',
    step: '(c) tool rebuild, dir, other validity',
    kind: 'build',
    target: TARGETS.rebuild,
    expectedContainers: 1,
    measure: (ctx) => toolRun(ctx, 'c', [...ctx.dirBuild, ...WITH_198Y]),
  },
  {
    id: 'd',
    step: '(d) tool cache hit, dir',
    kind: 'build',
    target: TARGETS.hit,
    expectedContainers: 0,
    measure: (ctx) => toolRun(ctx, 'd', [...ctx.dirBuild, ...WITH_198Y]),
  },
  { id: 'e', step: '(e) tool peak RSS, max of all tool runs', kind: 'rss', target: TARGETS.rss },
  {
    id: 'f1',
    step: '(f1) tool cold build, tarball',
    kind: 'build',
    target: TARGETS.tarballCold,
    expectedContainers: 1,
    measure: (ctx) => toolRun(ctx, 'f1', ctx.tarballBuild),
  },
  {
    id: 'f2',
    step: '(f2) tool rebuild, tarball, other validity',
    kind: 'build',
    target: TARGETS.tarballRebuild,
    expectedContainers: 1,
    measure: (ctx) => toolRun(ctx, 'f2', [...ctx.tarballBuild, ...WITH_198Y]),
  },
  {
    id: 'f3',
    step: '(f3) tool cache hit, tarball',
    kind: 'build',
    target: TARGETS.hit,
    expectedContainers: 0,
    measure: (ctx) => toolRun(ctx, 'f3', [...ctx.tarballBuild, ...WITH_198Y]),
  },
  {
    id: 'g1',
    step: `(g1) start-up: --help, best of ${STARTUP_RUNS}`,
    kind: 'startup',
    target: TARGETS.help,
    measure: async (ctx) => {
      // the floor under (g): on a shared VM, bare Node's own start-up varies by 2x over a day
      ctx.bareNode = await bareNodeStartup();
      log(`bare node -e 0: ${ctx.bareNode.toFixed(3)} s (best of ${STARTUP_RUNS})`);
      return startupRun(ctx, 'g1', ['--help']);
    },
  },
  {
    id: 'g2',
    step: `(g2) start-up: check, best of ${STARTUP_RUNS}`,
    kind: 'startup',
    measure: (ctx) => startupRun(ctx, 'g2', checkArgs(ctx.work)),
  },
  {
    id: 'h1',
    step: '(h1) tool amd64+arm64, one build',
    kind: 'build',
    expectedContainers: 2,
    measure: (ctx) => {
      const multi = ctx.buildArgs('h1', ['--source-dir', ctx.tree], freshGoCacheVolume('h1'));
      return toolRun(ctx, 'h1', [...multi, ...PLATFORMS.flatMap((p) => ['--platform', p])]);
    },
  },
  {
    id: 'h2',
    step: '(h2) tool amd64, then arm64: 2 builds',
    kind: 'build',
    expectedContainers: 2,
    measure: async (ctx) => {
      const volume = freshGoCacheVolume('h2');
      const singles: Measured[] = [];
      for (const p of PLATFORMS) {
        log(`(h2) tool build for ${p} ...`);
        const single = ctx.buildArgs(`h2-${p.replace('/', '-')}`, ['--source-dir', ctx.tree], volume);
        singles.push(await toolRun(ctx, 'h2', [...single, '--platform', p]));
      }
      return {
        seconds: singles.reduce((t, b) => t + b.seconds, 0),
        containers: singles.reduce((t, b) => t + (b.containers ?? 0), 0),
        containersEach: singles.map((b) => b.containers ?? 0),
        phases: singles.flatMap((b) => b.phases ?? []),
      };
    },
  },
];

const PLATFORMS = ['linux/amd64', 'linux/arm64'];

/**
 * The rows, each with its ratio to (a). `pass`: true/false against the row's target; null when
 * it has none. A build whose container count is not the expected one fails (its comparison
 * would not be the one the row names).
 */
export function makeRows(ctx: Pick<Context, 'measured' | 'rss'>): BuildRow[] {
  const base = ctx.measured.get('a')!.seconds;
  const rows = SCENARIOS.map((s): BuildRow => {
    const target = s.target?.text ?? '-';
    if (s.kind === 'rss') {
      const max = ctx.rss.reduce((m, r) => (r.rssMb > m.rssMb ? r : m));
      const mb = 'mb' in s.target! ? s.target.mb : Infinity;
      return {
        id: s.id,
        step: s.step,
        seconds: null,
        ratio: null,
        rssMb: round(max.rssMb, 1),
        rssAt: max.label,
        target,
        pass: max.rssMb <= mb,
      };
    }
    const m = ctx.measured.get(s.id)!;
    const meets = (t: Target) =>
      'ratio' in t ? m.seconds <= t.ratio * base : 'seconds' in t ? m.seconds <= t.seconds : true;
    if (s.kind === 'baseline')
      return { id: s.id, step: s.step, seconds: round(m.seconds), ratio: 1, target, pass: null };
    if (s.kind === 'startup')
      return {
        id: s.id,
        step: s.step,
        seconds: round(m.seconds, 3),
        ratio: round(m.seconds / base, 3),
        target,
        pass: s.target ? meets(s.target) : null,
      };
    const containersOk =
      m.containers === s.expectedContainers && (m.containersEach ?? []).every((n) => n === 1);
    return {
      id: s.id,
      step: s.step,
      seconds: round(m.seconds),
      ratio: round(m.seconds / base, 3),
      target,
      pass: s.target ? meets(s.target) && containersOk : containersOk ? null : false,
      containers: m.containers,
      expectedContainers: s.expectedContainers,
      phases: m.phases,
      ...(m.containersEach ? { containersEach: m.containersEach } : {}),
    };
  });
  const h1 = rows.find((r) => r.id === 'h1')!;
  h1.ratioToH2 = round(ctx.measured.get('h1')!.seconds / ctx.measured.get('h2')!.seconds, 3);
  return rows;
}

export interface BuildMachine {
  cores: number;
  memoryGiB: number;
  loadAtStart: number[];
  loadAtEnd: number[];
  loaded: boolean;
  tree: string;
  treeMiB: number;
  tarball: string;
  tarballMiB: number;
  tarballSha256: string;
  image: string;
  bareNodeSeconds: number;
  when: string;
}

export function formatBuildTable(rows: readonly BuildRow[], machine: BuildMachine): string {
  const cells = rows.map((r) => [
    r.step,
    r.seconds === null ? `${r.rssMb} MB` : `${r.seconds.toFixed(r.seconds < 1 ? 3 : 2)} s`,
    r.ratio === null ? '-' : `${r.ratio.toFixed(3)}`,
    r.target,
    resultCell(r.pass),
    r.containers === undefined ? '' : String(r.containers),
  ]);
  const out = [
    formatTable(['step', 'time / RSS', 'x (a)', 'target', 'result', 'containers'], cells, 'markdown'),
    '',
    `machine: ${machine.cores} cores, ${machine.memoryGiB} GiB; load average at start ${machine.loadAtStart.join(' ')}, at end ${machine.loadAtEnd.join(' ')}; bare \`node -e 0\` ${machine.bareNodeSeconds} s (best of ${STARTUP_RUNS})`,
    `tree: ${machine.tree} (${machine.treeMiB} MiB read); image ${machine.image}; ${machine.when}`,
    `tarball: ${machine.tarball} (${machine.tarballMiB} MiB, sha256 ${machine.tarballSha256.slice(0, 16)}...)`,
  ];
  for (const r of rows)
    for (const p of r.phases ?? [])
      out.push(
        `(${r.id}) container phases: before ${p.beforeContainer} s, stream tree in ${p.streamTree} s, go build ${p.goBuild} s, copy out + remove ${p.copyOutAndRemove} s`,
      );
  const byId = new Map(rows.map((r) => [r.id, r]));
  out.push(`(e) peak RSS at (${byId.get('e')!.rssAt})`);
  out.push(`(h1) / (h2): ${byId.get('h1')!.ratioToH2!.toFixed(3)}`);
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

/** The default tree: the unpacked fixture, else the tarball unpacked into a temp dir. */
async function defaultTree(): Promise<string> {
  const fixture = path.join(fixturesDir, 'kubernetes-1.20.2');
  if (fs.existsSync(path.join(fixture, 'cmd/kubeadm'))) return fixture;
  if (!fs.existsSync(k8sTarball)) {
    throw new KfError(
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
function warmTree(dir: string): number {
  const buf = Buffer.alloc(1 << 20);
  let bytes = 0;
  const walk = (d: string) => {
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

interface ContainerEvent {
  action: string;
  id: string;
  pid: string | undefined;
  t: number;
}

interface Watcher {
  events: ContainerEvent[];
  stop(): void;
}

/** Container events of the tool (label kubeadm-forever), for counting and the breakdown. */
function watchEvents(): Watcher {
  const events: ContainerEvent[] = [];
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
  child.stdout!.on('data', (d: Buffer) => {
    pending += d.toString('utf8');
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      try {
        const e = JSON.parse(line) as {
          Action?: string;
          status?: string;
          id?: string;
          timeNano: number;
          Actor?: { ID?: string; Attributes?: Record<string, string> };
        };
        events.push({
          action: e.Action ?? e.status ?? '',
          id: e.Actor?.ID ?? e.id ?? '',
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
        process.kill(-child.pid!, 'SIGTERM');
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
async function toolSourceVolume(source: { dir: string } | { sha256: string }): Promise<string> {
  const content: SourceContent =
    'dir' in source
      ? { kind: 'dir', fingerprint: await treeFingerprint(source.dir) }
      : { kind: 'tarball', sha256: source.sha256 };
  return sourceVolumeName(sourceContentId(content, KUBEADM_PACKAGE));
}

/** A fresh Go cache volume of the bench (removed at the end; the smoke test looks for the prefix). */
function freshGoCacheVolume(what: string): string {
  const volume = `kf-bench-gocache-${what}-${process.pid}-${Date.now()}`;
  trackVolume(volume);
  return volume;
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The tarball for (f): --tarball, else Debian's for the default tree, else `tree` packed. */
async function sourceTarball(opts: BuildOptions, tree: string, work: string): Promise<string> {
  if (opts.tarball !== undefined) {
    const file = path.resolve(opts.tarball);
    if (!fs.statSync(file, { throwIfNoEntry: false })?.isFile())
      throw new UsageError(`--tarball ${file} is not a file`, 'pass a .tar.gz of the same tree');
    return file;
  }
  if (opts.tree === undefined) {
    if (!fs.existsSync(k8sTarball))
      throw new KfError(
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
async function baseline(ctx: Context): Promise<number> {
  const outDir = path.join(ctx.work, 'baseline-out');
  fs.mkdirSync(outDir);
  const name = `kf-bench-baseline-${process.pid}-${Date.now()}`;
  trackContainer(name);
  const args = [
    'run',
    '--name',
    name,
    '--label',
    'kubeadm-forever-bench=1',
    '-v',
    `${ctx.tree}:${GOPATH_DIR}:ro`,
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
    ctx.opts.image,
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
  if (r.code !== 0 || !fs.existsSync(path.join(outDir, 'kubeadm')))
    throw stepFailed(
      `(a) the plain go build failed (exit ${r.code ?? r.signal})`,
      r.stdout + r.stderr,
      'check the image and the tree; the baseline must build for the comparison to mean anything',
    );
  return seconds;
}

/**
 * One run of the tool under GNU time: wall seconds, peak RSS, and (with `watch`: builds) its
 * containers and their phases.
 */
async function toolRun(
  ctx: Context,
  label: string,
  toolArgs: string[],
  what = 'build',
  watch = true,
): Promise<Measured & { result: Finished }> {
  const rssFile = path.join(ctx.work, `rss-${label}-${ctx.rss.length}`);
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
  const toolPid = await childPidOf(child.pid!);
  if (toolPid) trackToolPid(toolPid);
  const r = await done;
  const seconds = (performance.now() - start) / 1000;
  if (r.code !== 0)
    throw stepFailed(
      `(${label}) the tool's ${what} failed (exit ${r.code ?? r.signal})`,
      r.stderr,
      `run the same ${what} by hand${what === 'build' ? ' with --verbose' : ''} to see why`,
    );
  if (!toolPid && watch)
    throw new KfError(
      `(${label}) could not find the tool's pid under ${TIME_BIN}`,
      'report it: the container count needs the pid',
    );
  const rssKb = Number(fs.readFileSync(rssFile, 'utf8').trim().split('\n').pop());
  ctx.rss.push({ label, rssMb: rssKb / 1024 });
  if (!watch) return { seconds, result: r };
  await sleep(700); // the engine delivers the last events asynchronously
  const mine = ctx.watcher.events.filter((e) => e.pid === String(toolPid));
  const at = (id: string, action: string) => mine.find((e) => e.id === id && e.action === action)?.t;
  const ids = [...new Set(mine.filter((e) => e.action === 'create').map((e) => e.id))];
  const t0 = Date.now() / 1000 - (performance.now() - start) / 1000;
  const d = (a: number | undefined, b: number | undefined) =>
    a !== undefined && b !== undefined ? Math.round((b - a) * 10) / 10 : null;
  const phases = ids.map((id) => ({
    beforeContainer: d(t0, at(id, 'create')),
    streamTree: d(at(id, 'create'), at(id, 'start')),
    goBuild: d(at(id, 'start'), at(id, 'die')),
    copyOutAndRemove: d(at(id, 'die'), at(id, 'destroy')),
  }));
  return { seconds, containers: ids.length, phases, result: r };
}

/** Start-up: the best wall time of STARTUP_RUNS runs of the tool (no container expected). */
async function startupRun(ctx: Context, label: string, toolArgs: string[]): Promise<Measured> {
  let best = Infinity;
  for (let i = 0; i < STARTUP_RUNS; i++)
    best = Math.min(best, (await toolRun(ctx, label, toolArgs, 'run', false)).seconds);
  return { seconds: best };
}

/**
 * `check` of a PKI of three CAs the tool made (`ca init`, as the tests make a cluster's CAs),
 * with empty kubeconfig and kubelet dirs and no API server: what (g2) and --startup run.
 */
export function checkArgs(work: string): string[] {
  const pki = path.join(work, 'pki');
  if (!fs.existsSync(pki)) makeClusterPki(pki, DEFAULT_CA_VALIDITY);
  const emptyDir = (name: string) => {
    const d = path.join(work, name);
    fs.mkdirSync(d, { recursive: true });
    return d;
  };
  return [
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
}

async function childPidOf(pid: number): Promise<number | undefined> {
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

/** The build rows, one run: see the module comment. */
export async function buildRows(opts: BuildOptions): Promise<{ rows: BuildRow[]; machine: BuildMachine }> {
  if (!fs.existsSync(TIME_BIN))
    throw new KfError(
      `${TIME_BIN} is missing (it measures the peak RSS)`,
      "install Debian's time package: apt-get install -y time",
    );
  try {
    await run('docker', ['image', 'inspect', '--format', '{{.Id}}', opts.image]);
  } catch (err) {
    const why = String((err as { stderr?: string }).stderr || messageOf(err))
      .trim()
      .split('\n')[0];
    throw new KfError(
      `image ${opts.image} is not on the Docker engine: ${why}`,
      "make it with `bash scripts/test-env.sh up` (the tool's image command), or pass --image",
    );
  }
  const work = tempDir('kf-bench-');
  const tree = path.resolve(opts.tree ?? (await defaultTree()));
  if (!fs.existsSync(path.join(tree, 'cmd/kubeadm')))
    throw new UsageError(`${tree} has no cmd/kubeadm`, 'pass --tree the top of a Kubernetes source tree');
  const versionFile = opts.versionFile ? path.resolve(opts.versionFile) : k8s1202VersionFile;
  const tarball = await sourceTarball(opts, tree, work);
  const tarballSha256 = await sha256File(tarball);
  log(`tarball ${tarball}: sha256 ${tarballSha256}`);

  const loadAtStart = loadAverage();
  if (loadAtStart[0]! > 1.5)
    log(`WARNING: 1-minute load average is ${loadAtStart[0]} (> 1.5): the numbers will not be trustworthy`);
  const treeBytes = warmTree(tree);
  log(`tree ${tree}: ${(treeBytes / 2 ** 20).toFixed(0)} MiB read once to warm the page cache`);

  const watcher = watchEvents();
  try {
    // (b) and (f1) must be cold: the tool's source volumes for the tree and the tarball are
    // removed first, and at the end
    for (const v of [
      await toolSourceVolume({ dir: tree }),
      await toolSourceVolume({ sha256: tarballSha256 }),
    ]) {
      trackVolume(v);
      await run('docker', ['volume', 'rm', '-f', v]);
    }
    const buildArgs = (group: string, source: string[], goCacheVolume: string) => [
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
    const ctx: Context = {
      opts,
      work,
      tree,
      versionFile,
      tarball,
      watcher,
      buildArgs,
      dirBuild: buildArgs('dir', ['--source-dir', tree], freshGoCacheVolume('dir')),
      tarballBuild: buildArgs('tarball', ['--source-tarball', tarball], freshGoCacheVolume('tarball')),
      rss: [],
      measured: new Map(),
      bareNode: 0,
    };
    for (const s of SCENARIOS) {
      if (!s.measure) continue;
      log(`${s.step} ...`);
      const m = await s.measure(ctx);
      ctx.measured.set(s.id, m);
      const count = m.containers === undefined ? '' : `, ${m.containers} container(s)`;
      log(`(${s.id}) ${m.seconds.toFixed(m.seconds < 1 ? 3 : 1)} s${count}`);
    }
    const rows = makeRows(ctx);
    const machine: BuildMachine = {
      cores: os.cpus().length,
      memoryGiB: round(os.totalmem() / 2 ** 30, 1),
      loadAtStart,
      loadAtEnd: loadAverage(),
      loaded: loadAtStart[0]! > 1.5,
      tree,
      treeMiB: Math.round(treeBytes / 2 ** 20),
      tarball,
      tarballMiB: round(fs.statSync(tarball).size / 2 ** 20, 1),
      tarballSha256,
      image: opts.image,
      bareNodeSeconds: round(ctx.bareNode, 3),
      when: new Date().toISOString(),
    };
    return { rows, machine };
  } finally {
    watcher.stop();
  }
}
