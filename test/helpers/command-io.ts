import { Readable } from 'node:stream';
import { expect } from 'vitest';
import type { CommandIo } from '../../src/core/command-io.js';
import { asKfError, type KfError } from '../../src/core/errors.js';

/** A CommandIo whose output is kept for the test, and what the command told people on the way. */
export interface CapturedIo extends CommandIo {
  /** what the command showed people (info lines, warnings as "warning: …"), one a line */
  told(): string;
  /** the progress steps it started, in order */
  steps: string[];
}

/**
 * The io a command function gets in a unit test: `env` (default this process's), `stdin` as a
 * stream of the given text (none without it), progress collected.
 */
export function captureIo(opts: { env?: NodeJS.ProcessEnv; stdin?: string } = {}): CapturedIo {
  const lines: string[] = [];
  const steps: string[] = [];
  const sink = { write: (t: string) => lines.push(t.replace(/\n$/, '')) };
  return {
    stdout: sink,
    stderr: sink,
    env: opts.env ?? process.env,
    stdin: opts.stdin === undefined ? undefined : Readable.from([Buffer.from(opts.stdin)]),
    progress: {
      step: (t) => steps.push(t),
      info: (t) => lines.push(t),
      warn: (t) => lines.push(`warning: ${t}`),
    },
    told: () => lines.map((l) => `${l}\n`).join(''),
    steps,
  };
}

/**
 * The two-line error a command's promise rejects with (a KfError, or a system error as the
 * runner maps it); the test fails when it resolves or throws anything else.
 */
export async function failureOf(promise: Promise<unknown>): Promise<KfError> {
  let thrown: unknown;
  try {
    await promise;
  } catch (err) {
    thrown = err;
  }
  expect(thrown, 'the command was expected to fail').toBeDefined();
  const known = asKfError(thrown);
  expect(known, `not a two-line error: ${String(thrown)}`).toBeDefined();
  return known!;
}

/** A failure's what (one line), its next (one line) and exit code checked at once. */
export async function expectFailure(
  promise: Promise<unknown>,
  exitCode: 1 | 2,
  what: RegExp,
): Promise<KfError> {
  const e = await failureOf(promise);
  expect(e.what).toMatch(what);
  expect(e.next).not.toBe('');
  expect(e.exitCode).toBe(exitCode);
  return e;
}
