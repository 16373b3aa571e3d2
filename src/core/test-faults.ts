/**
 * The test-only fault hook, KF_TEST_FAULT: a comma-separated list of faults a test asks the tool
 * to inject, so that what a crash, a failed disk or a failed gate would leave can be tested with
 * the real code paths. Honoured only under the test runner (VITEST set in the environment), so a
 * variable left in an operator's shell cannot make the tool fail.
 *
 * - `kill-at:N`: SIGKILL before the multi-file write's mutating step N (counted from 1 over
 *   staging, old links, journals, swaps, removals);
 * - `fail-swap:N`: the Nth swap rename of a multi-file write fails with EIO;
 * - `fail-restore`: every put-back rename fails;
 * - `rollout-stop-at:STEP`: the rollout SIGKILLs itself when plan step STEP begins (as Ctrl-C or a
 *   lost admin host would leave it);
 * - `fail-gate:GATE@NODE`: that rollout gate on that node fails at once, as if it had timed out.
 */

export const FAULT_ENV = 'KF_TEST_FAULT';

export interface TestFaults {
  killAtStep?: number;
  failSwap?: number;
  failRestore: boolean;
  rolloutStopAt?: string;
  failGate?: { gate: string; node: string };
}

/** The faults `text` names; parts it does not know are ignored (a test names only what it means). */
export function parseTestFaults(text: string): TestFaults {
  const faults: TestFaults = { failRestore: false };
  for (const part of text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const n = /^(kill-at|fail-swap):(\d+)$/.exec(part);
    if (n?.[1] === 'kill-at') faults.killAtStep = Number(n[2]);
    else if (n?.[1] === 'fail-swap') faults.failSwap = Number(n[2]);
    else if (part === 'fail-restore') faults.failRestore = true;
    else if (part.startsWith('rollout-stop-at:'))
      faults.rolloutStopAt = part.slice('rollout-stop-at:'.length);
    else {
      const g = /^fail-gate:([^@]+)@(.+)$/.exec(part);
      if (g) faults.failGate = { gate: g[1]!, node: g[2]! };
    }
  }
  return faults;
}

/** The faults of this environment: none unless the test runner set VITEST. */
export function testFaults(env: NodeJS.ProcessEnv): TestFaults {
  return env.VITEST ? parseTestFaults(env[FAULT_ENV] ?? '') : { failRestore: false };
}
