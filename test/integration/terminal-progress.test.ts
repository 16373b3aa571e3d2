import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { k8s1202VersionFile, runCli } from '../helpers/env.js';
import { runCliInPty } from '../helpers/pty.js';
import { tempDirs } from './pki-support.js';

// Progress on odd terminals: a real pseudo-terminal from util-linux `script`, sized
// with `stty` inside it, running `plan` and `ca extend`. ora left alone on 0 columns never
// finished and wrote megabytes of escape codes; every case must end, exit 0 and stay small.

const { tmp, cleanup } = tempDirs();
afterAll(cleanup);

const inPty = (args: string[], cols: number, term: string) => runCliInPty(args, { cols, term });

/** A 10-year PKI from `ca init`, for `ca extend` to re-sign. */
function freshPki(): string {
  const pki = path.join(tmp('pty-pki'), 'pki');
  expect(runCli(['ca', 'init', '--out', pki, '--validity', '10y']).status).toBe(0);
  return pki;
}

const LIMIT = 64 * 1024;
const ESC = String.fromCharCode(27);
/** ESC [ … final: cursor movement, line clearing, colours, cursor show/hide */
const CSI = new RegExp(`${ESC}\\[[0-9;?]*[A-Za-z]`, 'g');
const MOVES = new RegExp(`${ESC}\\[\\d*[AGK]`);

describe('progress on terminals that cannot draw a spinner', () => {
  for (const [cols, term] of [
    [0, 'xterm-256color'],
    [0, 'dumb'],
    [5, 'xterm-256color'],
    [120, 'dumb'],
  ] as const) {
    it(`plan and ca extend finish with bounded output at ${cols} columns, TERM=${term}`, () => {
      const plan = inPty(['plan', '--version-file', k8s1202VersionFile], cols, term);
      expect(plan.status).toBe(0);
      expect(plan.bytes).toBeLessThan(LIMIT);
      expect(plan.text).toContain('v1.20.2');
      const extend = inPty(['ca', 'extend', '--pki-dir', freshPki()], cols, term);
      expect(extend.status).toBe(0);
      expect(extend.bytes).toBeLessThan(LIMIT);
      expect(extend.text).toMatch(/backed up to/);
      // plain lines: no cursor movement or line clearing at all
      expect(plan.text + extend.text).not.toMatch(MOVES);
    }, 120_000);
  }

  it('a terminal that can draw one gets a spinner that ends with the elapsed time', () => {
    const extend = inPty(['ca', 'extend', '--pki-dir', freshPki()], 100, 'xterm-256color');
    expect(extend.status).toBe(0);
    expect(extend.bytes).toBeLessThan(LIMIT);
    const plain = extend.text.replace(CSI, '');
    expect(plain).toMatch(/✔ re-signing the CAs in .* \(\d+\.\ds\)/);
    expect(plain).not.toMatch(/^- re-signing/m); // ora's own fallback would mean it drew no spinner
    expect(extend.text).toContain(`${ESC}[?25l`); // the spinner hid the cursor: it was live
  }, 120_000);

  it('a pipe gets plain lines and no escape codes', () => {
    const r = runCli(['ca', 'extend', '--pki-dir', freshPki()]);
    expect(r.status).toBe(0);
    expect(r.stderr).not.toContain(ESC);
    expect(r.stderr.length).toBeLessThan(LIMIT);
  }, 120_000);
});
