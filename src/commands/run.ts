import { isKfError, messageOf } from '../errors.js';
import { Output } from '../ui/output.js';
import type { GlobalArgs } from './options.js';

/**
 * Runs a command body with an Output and turns every failure into the two-line error contract:
 * "error: what" and "next: what to do". Unexpected errors keep their stack only with --verbose.
 */
export async function runCommand<A extends GlobalArgs>(
  argv: A,
  body: (argv: A, out: Output) => Promise<number | void>,
): Promise<void> {
  const out = new Output({ json: argv.json, verbose: argv.verbose });
  try {
    const code = await body(argv, out);
    process.exitCode = code ?? 0;
  } catch (err) {
    out.fail();
    if (isKfError(err)) {
      process.stderr.write(`error: ${err.what}\nnext: ${err.next}\n`);
      process.exitCode = err.exitCode;
    } else {
      process.stderr.write(
        `error: unexpected failure: ${messageOf(err).split('\n')[0]}\n` +
          `next: rerun with --verbose for details and report it if it persists\n`,
      );
      if (argv.verbose && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
      process.exitCode = 1;
    }
  }
}
