/**
 * `npm run bench`: the tool measured against what it replaces, every row a ratio to a baseline
 * measured in the same run on the same machine (docs/performance.md describes the rows and the
 * latest results). Four groups, one per run:
 *
 *   npm run bench -- [--tree DIR --version-file FILE] [--tarball FILE] [--image IMG] [--json] [--strict]
 *   npm run bench -- --startup [--json] [--strict]
 *   npm run bench -- --rollout [--workers 2,4,8] [--max-unavailable 1,4] [--json]
 *   npm run bench -- --rollout-cluster [--runs N] [--json]
 *
 * The build rows (bench/build-rows.ts) need a Docker engine with the Go image and GNU time; the
 * start-up rows (bench/startup-rows.ts) the single executable of `npm run dist`; the rollout
 * rows (bench/rollout-rows.ts) root and Debian's sshd, as the rollout tests do; the cluster rows
 * (bench/cluster-rows.ts) a machine prepared for the multi-node cluster (scripts/test-env.sh up).
 *
 * Exit: 0 when every row was measured (targets missed are shown as FAIL; --strict makes them
 * exit 3), 1 when a step failed to run, 2 on bad arguments, 130/143 on SIGINT/SIGTERM.
 * Everything the run made (containers, volumes, temp dirs, servers) is removed in every case.
 */
import process from 'node:process';
import yargs from 'yargs';
import { onInterrupt, failUnlessInterrupted } from '../src/adapters/interrupt.js';
import { UsageError } from '../src/core/errors.js';
import { jsonDocument } from '../src/ui/output.js';
import { reportFailure } from '../src/commands/run.js';
import { buildRows, formatBuildTable } from './build-rows.js';
import { clusterRows } from './cluster-rows.js';
import { cleanup, requireBuilt } from './harness.js';
import { DEFAULT_ROLLOUT, rolloutRows } from './rollout-rows.js';
import { startupRows } from './startup-rows.js';

const NEXT_USAGE = "see 'npm run bench -- --help'";

/** "2,4,8" as numbers; anything else refused naming the flag. */
function numberList(flag: string) {
  return (v: unknown): number[] => {
    const text = String(Array.isArray(v) ? v.at(-1) : v);
    if (!/^\d+(,\d+)*$/.test(text))
      throw new UsageError(
        `${flag} ${JSON.stringify(text)} is not a list of whole numbers`,
        'pass e.g. 2,4,8',
      );
    return text.split(',').map(Number);
  };
}

function parse(argv: string[]) {
  return yargs(argv)
    .scriptName('npm run bench --')
    .usage(
      '$0 [--tree DIR --version-file FILE] [--tarball FILE] [--image IMG] [--json] [--strict]\n$0 --startup [--json] [--strict]\n$0 --rollout [--workers LIST] [--max-unavailable LIST] [--json]\n$0 --rollout-cluster [--runs N] [--json]',
    )
    .option('startup', {
      type: 'boolean',
      default: false,
      describe: 'start-up only: bare node, the npm-installed tool and the single executable',
    })
    .option('rollout', {
      type: 'boolean',
      default: false,
      describe: 'rollout only: its cost per node and its total over files-only worker nodes',
    })
    .option('rollout-cluster', {
      type: 'boolean',
      default: false,
      describe: 'rollout on a real 3+2 kubeadm cluster: its cost per node and per step against plain ssh',
    })
    .option('tree', {
      type: 'string',
      describe: "Kubernetes source tree (default: Debian's kubernetes 1.20.2)",
    })
    .option('version-file', {
      type: 'string',
      describe: 'saved `kubeadm version` of that tree (required with --tree)',
    })
    .option('tarball', {
      type: 'string',
      describe:
        "a .tar.gz of the same tree for (f) (default: Debian's .orig.tar.gz; with --tree, one packed from it)",
    })
    .option('image', { type: 'string', default: 'local/golang:1.19.8', describe: 'Go image on the engine' })
    .option('workers', {
      type: 'string',
      default: DEFAULT_ROLLOUT.workers.join(','),
      coerce: numberList('--workers'),
      describe: 'worker counts of the rollout runs',
    })
    .option('max-unavailable', {
      type: 'string',
      default: DEFAULT_ROLLOUT.maxUnavailable.join(','),
      coerce: numberList('--max-unavailable'),
      describe: '--max-unavailable of the rollout runs',
    })
    .option('runs', {
      type: 'number',
      default: DEFAULT_ROLLOUT.runs,
      describe: 'the rollout and cluster rows per node: best of this many',
    })
    .option('json', {
      type: 'boolean',
      default: false,
      describe: 'also print the rows as one JSON document on stdout',
    })
    .option('strict', { type: 'boolean', default: false, describe: 'exit 3 when a target is missed' })
    .check((a) => {
      if ([a.startup, a.rollout, a.rolloutCluster].filter(Boolean).length > 1)
        throw new UsageError(
          'more than one of --startup, --rollout and --rollout-cluster given',
          'pass one of them',
        );
      if (a.tree !== undefined && a['version-file'] === undefined)
        throw new UsageError(
          '--tree needs --version-file',
          'pass the saved `kubeadm version` output of that tree',
        );
      if (!/^[A-Za-z0-9][A-Za-z0-9_./:@-]*$/.test(a.image))
        throw new UsageError(`--image '${a.image}' is not an image name`, NEXT_USAGE);
      if (!Number.isInteger(a.runs) || a.runs < 1)
        throw new UsageError(
          `invalid --runs ${JSON.stringify(String(a.runs))}`,
          'pass a positive whole number',
        );
      return true;
    })
    .strict()
    .help()
    .alias('h', 'help')
    .version(false)
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err) => {
      // yargs' own parse errors are usage errors; ours (from check and coerce) pass as they are
      throw err instanceof UsageError
        ? err
        : new UsageError(String(msg ?? err?.message).replace(/\s*\n\s*/g, ': '), NEXT_USAGE);
    })
    .parseAsync();
}

/** The table for people on stdout, or with --json on stderr beside the document on stdout. */
function print(text: string, doc: unknown, json: boolean): void {
  if (json) {
    process.stderr.write(`\n${text}\n`);
    process.stdout.write(`${jsonDocument(doc)}\n`);
  } else process.stdout.write(`\n${text}\n`);
}

async function main(argv: Awaited<ReturnType<typeof parse>>): Promise<number> {
  requireBuilt();
  const failed = (rows: readonly { pass: boolean | null }[]) =>
    argv.strict && rows.some((r) => r.pass === false) ? 3 : 0;
  if (argv.startup) {
    const r = await startupRows();
    print(r.text, { rows: r.rows, executable: r.executable, machine: r.machine }, argv.json);
    return failed(r.rows);
  }
  if (argv.rolloutCluster) {
    const r = await clusterRows({ runs: argv.runs });
    print(r.text, { rows: r.rows, machine: r.machine }, argv.json);
    return failed(r.rows);
  }
  if (argv.rollout) {
    const r = await rolloutRows({
      workers: argv.workers,
      maxUnavailable: argv.maxUnavailable,
      runs: argv.runs,
    });
    print(r.text, { rows: r.rows, growth: r.growth, machine: r.machine }, argv.json);
    return failed(r.rows);
  }
  const { rows, machine } = await buildRows({
    tree: argv.tree,
    versionFile: argv.versionFile,
    tarball: argv.tarball,
    image: argv.image,
  });
  print(formatBuildTable(rows, machine), { rows, machine }, argv.json);
  return failed(rows);
}

// a reader that went away (a pipe its parent closed on a timeout) must not end the run before
// its clean-up: a write error on stdout or stderr is dropped instead of thrown
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);

const args = process.argv.slice(2);
const json = args.includes('--json');
let code: number;
try {
  const argv = await parse(args);
  onInterrupt({
    doing: "removing the bench's containers, volumes, servers and temp dirs",
    next: 'run npm run bench again',
    run: cleanup,
  });
  code = await main(argv).catch(failUnlessInterrupted);
} catch (err) {
  code = reportFailure(err, { json, verbose: true });
}
await cleanup();
process.exit(code);
