import { escapeControl, messageOf } from '../core/errors.js';

/**
 * The one place that answers SIGINT/SIGTERM. Stages and adapters register what must be undone
 * while they hold something (a container, a temp tree, parked manifests) and unregister when
 * they are done; on a signal this module alone prints the two-line error, runs the registered
 * clean-ups (newest first, each one whatever the others did, all within CLEANUP_TIMEOUT_MS) and
 * exits 130 (SIGINT) or 143 (SIGTERM). With nothing registered it does not listen at all, so a
 * signal then has its default effect.
 */
export interface InterruptCleanup {
  /** what the clean-up is doing, for the error line ("removing build container 0123abcd4567") */
  doing?: string | (() => string | undefined);
  /** the error's `next:` line; the newest registration that has one decides */
  next?: string;
  /** undoes what the registrant holds; may be async; a throw is reported and the others still run */
  run(): void | Promise<void>;
  /** the state left behind when `run` failed (which file is where), for the warning line */
  failed?: (err: unknown) => string;
}

/** All clean-ups together get this long; then the process exits anyway, naming the ones left. */
export const CLEANUP_TIMEOUT_MS = 20_000;
const DEFAULT_NEXT = 'run the command again';
const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

const registered: InterruptCleanup[] = [];
let signalled: NodeJS.Signals | undefined;
let timeoutMs = CLEANUP_TIMEOUT_MS;

/** Registers a clean-up; the returned function unregisters it (idempotent). */
export function onInterrupt(cleanup: InterruptCleanup): () => void {
  registered.push(cleanup);
  listen(true);
  return () => {
    const at = registered.indexOf(cleanup);
    if (at >= 0) registered.splice(at, 1);
    // while the clean-ups run, keep listening: a second Ctrl-C must not cut them short
    if (registered.length === 0 && !signalled) listen(false);
  };
}

/**
 * Runs `body` with `cleanup` registered, unregistering it afterwards. After a signal, `body`'s
 * outcome goes nowhere: its failure (its container or tree vanished under it) is not reported and
 * its result is not passed on, since the guard is exiting.
 */
export async function withInterruptCleanup<T>(cleanup: InterruptCleanup, body: () => Promise<T>): Promise<T> {
  const unregister = onInterrupt(cleanup);
  try {
    const result = await body();
    // finished while the guard cleans up: nothing after this point may run (it would write)
    if (signalled) await new Promise<never>(() => undefined);
    return result;
  } catch (err) {
    return failUnlessInterrupted(err);
  } finally {
    if (!signalled) unregister();
  }
}

/** True once a signal arrived: the process is cleaning up and will exit. */
export function interrupted(): boolean {
  return signalled !== undefined;
}

/**
 * Rethrows `err`, unless a signal arrived: then the failure is a consequence of the clean-up
 * (a container removed under a running step) and waiting for the exit avoids a second error.
 */
export function failUnlessInterrupted(err: unknown): Promise<never> {
  if (signalled) return new Promise<never>(() => undefined);
  throw err;
}

/** Tests only: a shorter bound for the clean-ups. */
export function setCleanupTimeoutForTests(ms: number): void {
  timeoutMs = ms;
}

function listen(on: boolean): void {
  for (const s of SIGNALS) {
    process.removeListener(s, handle);
    if (on) process.on(s, handle);
  }
}

function handle(signal: NodeJS.Signals): void {
  if (signalled) return; // already cleaning up: a second signal changes nothing
  signalled = signal;
  const cleanups = [...registered].reverse();
  const doing = cleanups
    .map((c) => (typeof c.doing === 'function' ? c.doing() : c.doing))
    .filter((d): d is string => Boolean(d));
  const next = cleanups.find((c) => c.next)?.next ?? DEFAULT_NEXT;
  const what = [`interrupted by ${signal}`, ...doing].join('; ');
  process.stderr.write(`\nerror: ${escapeControl(what)}\nnext: ${escapeControl(next)}\n`);
  void runAll(cleanups).finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
}

async function runAll(cleanups: InterruptCleanup[]): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const unfinished: string[] = [];
  for (const c of cleanups) {
    // past the deadline a clean-up still starts: a synchronous one (a temp tree) finishes at once
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), Math.max(deadline - Date.now(), 0));
    });
    try {
      const outcome = await Promise.race([Promise.resolve().then(() => c.run()), timedOut]);
      if (outcome === 'timeout') unfinished.push(describe(c));
    } catch (err) {
      warn(c.failed ? c.failed(err) : `${describe(c)} failed: ${messageOf(err).split('\n')[0]}`);
    } finally {
      clearTimeout(timer);
    }
  }
  if (unfinished.length > 0)
    warn(`clean-up did not finish within ${timeoutMs / 1000}s, exiting anyway: ${unfinished.join('; ')}`);
}

function describe(c: InterruptCleanup): string {
  return (typeof c.doing === 'function' ? c.doing() : c.doing) || 'a clean-up';
}

function warn(text: string): void {
  process.stderr.write(`warning: ${escapeControl(text)}\n`);
}
