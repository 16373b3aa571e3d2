import type { CommandIo } from '../core/command-io.js';
import { asKfError, escapeControl, messageOf, type KfError } from '../core/errors.js';
import { openOutput, type Output } from '../ui/output.js';
import type { GlobalArgs } from './options.js';

/**
 * The one place every failure is rendered: "error: what" and "next: what to do" on stderr and,
 * with --json, `{"error": …, "next": …}` on stdout, control characters escaped in both. System
 * errors (ENOSPC, EACCES, ENOTDIR…) are named with their path; anything else unexpected keeps
 * its stack only with --verbose. Returns the exit code.
 */
export function reportFailure(err: unknown, opts: { json: boolean; verbose: boolean }): 1 | 2 {
  const known = asKfError(err);
  const what = escapeControl(known ? known.what : `unexpected failure: ${messageOf(err).split('\n')[0]}`);
  const next = escapeControl(
    known ? known.next : 'rerun with --verbose for details and report it if it persists',
  );
  process.stderr.write(`error: ${what}\nnext: ${next}\n`);
  if (!known && opts.verbose && err instanceof Error && err.stack)
    process.stderr.write(`${err.stack.split('\n').map(escapeControl).join('\n')}\n`);
  if (opts.json) process.stdout.write(`${JSON.stringify({ error: what, next }, null, 2)}\n`);
  return known ? known.exitCode : 1;
}

/** Runs a command body with an Output and turns every failure into the error contract above. */
export async function runCommand<A extends GlobalArgs>(
  argv: A,
  body: (argv: A, out: Output) => Promise<number | void>,
): Promise<void> {
  const out = await openOutput({ json: argv.json, verbose: argv.verbose });
  try {
    const code = await body(argv, out);
    process.exitCode = code ?? 0;
  } catch (err) {
    out.fail();
    // a command that printed its result document (e.g. verify's report) and then fails keeps
    // stdout to that one document; the two error lines still go to stderr
    process.exitCode = reportFailure(err, { json: argv.json && !out.resultWritten, verbose: argv.verbose });
  }
}

/** How a function command's result is shown and what exit code it gives. */
export interface ResultView<R> {
  /** the result for people (without --json) */
  human(result: R): string | Promise<string>;
  /** stdout instead of the document or `human` (e.g. Prometheus text); undefined: the usual */
  text?(result: R): string | undefined | Promise<string | undefined>;
  /** an error to report after the result is out (two lines on stderr, exit code from it) */
  failure?(result: R): KfError | undefined;
  /** a non-zero exit code without an error of its own (the result already says why) */
  exitCode?(result: R): number;
}

/**
 * The adapter for a command written as a plain function `fn(input, io) -> result`: yargs' argv is
 * mapped to input by the caller, the function gets the process' streams, environment and the
 * Output as its progress, and its result IS the --json document (or `view.human`). A failure
 * the result describes is rendered by the one error contract after the result.
 */
export async function runFunction<A extends GlobalArgs, R>(
  argv: A,
  call: (io: CommandIo) => Promise<R>,
  view: ResultView<R>,
): Promise<void> {
  await runCommand(argv, async (_a, out) => {
    const io: CommandIo = {
      stdout: process.stdout,
      stderr: process.stderr,
      env: process.env,
      progress: out,
      // opened only when a command reads it: process.stdin makes a stream of fd 0 when first touched
      get stdin() {
        return process.stdin;
      },
    };
    const result = await call(io);
    const text = await view.text?.(result);
    if (text !== undefined) {
      out.succeed();
      out.resultWritten = true;
      process.stdout.write(text);
    } else out.result(result, out.json ? undefined : await view.human(result));
    const failure = view.failure?.(result);
    if (failure) throw failure;
    return view.exitCode?.(result) ?? 0;
  });
}
