import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { gzipSync } from 'node:zlib';
import { KfError } from '../src/core/errors.js';
import { formatTable } from '../src/core/text-table.js';
import { checkArgs } from './build-rows.js';
import {
  STARTUP_RUNS,
  TIME_BIN,
  cliPath,
  loadAverage,
  repoRoot,
  resultCell,
  round,
  spawnChild,
  stepFailed,
  tempDir,
} from './harness.js';

/**
 * --startup: start-up only, with no engine and no tree. In one run, interleaved so they share the
 * machine's state: bare `node -e 0`, the single executable's own Node, the npm-installed tool
 * (dist/cli.js) and the single executable (npm run dist), each `--help` and `check` of a PKI;
 * best wall time and best CPU time (user+sys, steadier on a loaded machine) of STARTUP_RUNS,
 * both as ratios to bare Node; and the executable's size, gzipped as a bundle carries it.
 */

const STARTUP_TARGET = { ratio: 1.5, text: '<= 1.5 x node -e 0' };

export interface StartupRow {
  id: string;
  step: string;
  seconds: number;
  ratio: number;
  cpuSeconds: number;
  cpuRatio: number;
  target: string;
  pass: boolean | null;
}

interface Scenario {
  id: string;
  step: string;
  cmd: string;
  args: string[];
  target?: typeof STARTUP_TARGET;
}

/** GNU time's wall and CPU (user+sys) seconds of one run; a failed run is an error. */
async function timedRun(work: string, s: Scenario): Promise<{ wall: number; cpu: number }> {
  const file = path.join(work, `time-${s.id}`);
  const r = await spawnChild(TIME_BIN, ['-f', '%e %U %S', '-o', file, s.cmd, ...s.args], { env: {} }).done;
  if (r.code !== 0)
    throw stepFailed(`(${s.id}) exited ${r.code ?? r.signal}`, r.stderr, 'run it by hand to see why');
  const [wall, user, sys] = fs.readFileSync(file, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number);
  return { wall: wall!, cpu: user! + sys! };
}

/** The single executable of this machine's platform, as npm run dist names it. */
export function singleExecutable(): string {
  const arch = ({ x64: 'amd64', arm64: 'arm64' } as Record<string, string>)[process.arch] ?? process.arch;
  return path.join(repoRoot, 'dist-bin', `kubeadm-forever-linux-${arch}`);
}

export async function startupRows(): Promise<{
  rows: StartupRow[];
  executable: { size: number; gzipped: number };
  machine: { cores: number; loadAtStart: number[]; loadAtEnd: number[] };
  text: string;
}> {
  const exe = singleExecutable();
  if (!fs.existsSync(exe)) throw new KfError(`${exe} is missing`, "run 'npm run dist' first");
  const node24 = path.join(repoRoot, 'dist-bin/.work', `node-linux-${process.arch}`, 'package/bin/node');
  const work = tempDir('kf-bench-startup-');
  const check = checkArgs(work);
  const scenarios: Scenario[] = [
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
  const loadAtStart = loadAverage();
  // one untimed run each first: the executable's 130 MB into the page cache
  for (const s of scenarios) await timedRun(work, s);
  const best = new Map(scenarios.map((s) => [s.id, { wall: Infinity, cpu: Infinity }]));
  for (let i = 0; i < STARTUP_RUNS; i++)
    for (const s of scenarios) {
      const t = await timedRun(work, s);
      const b = best.get(s.id)!;
      b.wall = Math.min(b.wall, t.wall);
      b.cpu = Math.min(b.cpu, t.cpu);
    }
  const floor = best.get('node')!;
  const rows = scenarios.map((s): StartupRow => {
    const b = best.get(s.id)!;
    const ratio = round(b.wall / floor.wall, 2);
    return {
      id: s.id,
      step: s.step,
      seconds: round(b.wall, 3),
      ratio,
      cpuSeconds: round(b.cpu, 3),
      cpuRatio: round(b.cpu / floor.cpu, 2),
      target: s.target?.text ?? '-',
      pass: s.target ? ratio <= s.target.ratio : null,
    };
  });
  const size = fs.statSync(exe).size;
  const gzipped = gzipSync(fs.readFileSync(exe), { level: 9 }).length;
  const machine = { cores: os.cpus().length, loadAtStart, loadAtEnd: loadAverage() };
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
    resultCell(r.pass),
  ]);
  const text = [
    formatTable(head, cells, 'markdown'),
    '',
    `executable ${path.relative(repoRoot, exe)}: ${(size / 1e6).toFixed(1)} MB, ${(gzipped / 1e6).toFixed(1)} MB gzipped (as a bundle carries it)`,
    `machine: ${machine.cores} cores; load average at start ${loadAtStart.join(' ')}, at end ${machine.loadAtEnd.join(' ')}; node ${process.version}`,
  ].join('\n');
  return { rows, executable: { size, gzipped }, machine, text };
}
