import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLIENT_GO_CERT_FILE, CONSTANTS_FILE } from '../../src/core/patch-targets.js';
import { runCli } from '../helpers/env.js';
import { makeMiniTree, snapshot } from '../unit/fixtures/mini-tree.js';

// patch's transaction across its files, through the CLI: the fault hook (KF_TEST_FAULT) is read
// from the environment of a process, and one case kills it.

const temps: string[] = [];
const temp = (p: string) => (temps.push(p), p);
afterEach(() => {
  for (const t of temps.splice(0)) fs.rmSync(t, { recursive: true, force: true });
});

/** The two-line error contract: exactly `error: ...` and `next: ...`, no stack trace. */
function expectTwoLineError(
  r: { status: number | null; stderr: string; stdout: string },
  code: number,
  what: RegExp,
) {
  expect(r.status).toBe(code);
  expect(r.stderr).toMatch(/^error: [^\n]+\nnext: [^\n]+\n$/);
  expect(r.stderr.split('\n')[0]).toMatch(what);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.stdout).toBe('');
}

describe('patch: all or nothing across its files (test-only fault hook)', () => {
  const fault = (v: string) => ({ env: { KF_TEST_FAULT: v } });
  const tmpNames = (root: string) => Object.keys(snapshot(root)).filter((f) => f.endsWith('.tmp'));

  it('a failing second rename puts the first file back and says so', () => {
    const root = temp(makeMiniTree());
    const before = snapshot(root);
    const r = runCli(['patch', root], fault('fail-swap:2'));
    expectTwoLineError(r, 1, /^error: cannot replace .+: EIO/);
    expect(r.stderr).toMatch(
      /next: .*nothing was changed \(the 1 file\(s\) already replaced were put back\)/,
    );
    expect(snapshot(root)).toEqual(before);
  });

  it('when putting back fails too, it does not claim a restore: each file state and its old copy are named; the next run puts it back', () => {
    const root = temp(makeMiniTree());
    const before = snapshot(root);
    const r = runCli(['patch', root], fault('fail-swap:2,fail-restore'));
    expect(r.status).toBe(1);
    expect(r.stderr).not.toMatch(/were restored|were put back/);
    expect(r.stderr).toMatch(
      new RegExp(
        `${CONSTANTS_FILE.replace(/\./g, '\\.')}: NEW content \\(put back failed: EIO[^;]*\\); old content at \\S+\\.old\\.tmp`,
      ),
    );
    expect(r.stderr).toMatch(/client-go\/util\/cert\/cert\.go: old content/);
    // a journal in a source tree is never followed (the tree is someone else's): a later run
    // patches from the state the files are in, and leaves the temp files alone
    expect(r.stderr).not.toMatch(/next run retries/);
    const leftBehind = tmpNames(root);
    const again = runCli(['patch', root, '--json']);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).not.toMatch(/interrupted/);
    expect(tmpNames(root)).toEqual(leftBehind);
    const after = Object.fromEntries(Object.entries(snapshot(root)).filter(([k]) => !k.endsWith('.tmp')));
    expect(
      Object.keys(after)
        .filter((k) => after[k] !== before[k])
        .sort(),
    ).toEqual([CONSTANTS_FILE, CLIENT_GO_CERT_FILE].sort());
  });

  it('killed between the two renames: the next run patches what is left', () => {
    const root = temp(makeMiniTree());
    // steps: 2 staged + 2 old links + the journal (in the tree root) and a marker in each of the
    // two directories + swaps ...: kill at the 2nd swap
    const r = runCli(['patch', root], fault(`kill-at:${4 + 3 + 2}`));
    expect(r.status).toBe(null); // SIGKILL
    expect(fs.readFileSync(path.join(root, CONSTANTS_FILE), 'utf8')).toContain('365 * 199'); // half done
    const again = runCli(['patch', root, '--json']);
    expect(again.status, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).written.sort()).toEqual([CLIENT_GO_CERT_FILE]);
    expect(tmpNames(root).length).toBeGreaterThan(0); // the killed run's, not followed nor removed
    expect(fs.readFileSync(path.join(root, CLIENT_GO_CERT_FILE), 'utf8')).toContain('365 * 200');
  });
});
