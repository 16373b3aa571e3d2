import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/env.js';

// The guard is driven in a child process: it exits, and it owns the process's signal handlers.
const guardModule = pathToFileURL(path.join(repoRoot, 'dist/adapters/interrupt.js')).href;

interface ChildRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * Runs `script` (an ES module body with `g` the guard module and `say(text)` writing a line to
 * stdout) in a child, waits for its "ready" line, sends `signals` and collects what it did.
 */
async function runGuarded(script: string, signals: NodeJS.Signals[], gapMs = 50): Promise<ChildRun> {
  if (!fs.existsSync(new URL(guardModule)))
    throw new Error(`${guardModule} is missing: run 'npm run build' before the unit tests`);
  const source = `
    const g = await import(${JSON.stringify(guardModule)});
    const say = (t) => process.stdout.write(t + '\\n');
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    ${script}
    say('ready');
    setInterval(() => undefined, 1000);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', source], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const ready = new Promise<void>((resolve) =>
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      if (stdout.includes('ready\n')) resolve();
    }),
  );
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('exit', (code, signal) => resolve([code, signal])),
  );
  await Promise.race([ready, exited]);
  const started = Date.now();
  for (const s of signals) {
    child.kill(s);
    await new Promise((r) => setTimeout(r, gapMs));
  }
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  const [code, signal] = await exited;
  clearTimeout(timer);
  return { code, signal, stdout, stderr, ms: Date.now() - started };
}

describe('interrupt guard (adapters/interrupt.ts)', () => {
  it('runs every registered clean-up newest first, a failing one does not stop the others, one two-line error, exit 130', async () => {
    const r = await runGuarded(
      `
      g.onInterrupt({ next: 'first next', doing: 'removing the tree', run: () => say('ran tree') });
      const gone = g.onInterrupt({ doing: 'never shown', run: () => say('ran unregistered') });
      g.onInterrupt({ doing: () => 'removing container abc', run: async () => { await sleep(200); say('ran container'); } });
      g.onInterrupt({
        next: 'newest next',
        run: () => { say('ran failing'); throw new Error('disk on fire'); },
        failed: (err) => 'the manifests are in /parked: ' + err.message,
      });
      g.onInterrupt({ run: () => { say('ran plain'); throw new Error('plain failure'); } });
      gone();
      `,
      ['SIGINT'],
    );
    expect(r.code).toBe(130);
    expect(r.stdout.split('\n').filter((l) => l.startsWith('ran '))).toEqual([
      'ran plain',
      'ran failing',
      'ran container',
      'ran tree',
    ]);
    expect(r.stderr.match(/^error: /gm)).toHaveLength(1);
    expect(r.stderr).toContain(
      '\nerror: interrupted by SIGINT; removing container abc; removing the tree\nnext: newest next\n',
    );
    // the error first, then what went wrong while cleaning up
    expect(r.stderr.indexOf('error:')).toBeLessThan(r.stderr.indexOf('warning:'));
    expect(r.stderr).toContain('warning: the manifests are in /parked: disk on fire\n');
    expect(r.stderr).toContain('warning: a clean-up failed: plain failure\n');
  });

  it('SIGTERM exits 143; a second signal while cleaning up changes nothing', async () => {
    const r = await runGuarded(
      `g.onInterrupt({ next: 'n', run: async () => { await sleep(400); say('ran slow'); } });`,
      ['SIGTERM', 'SIGINT', 'SIGTERM'],
    );
    expect(r.code).toBe(143);
    expect(r.stdout).toContain('ran slow');
    expect(r.stderr).toBe('\nerror: interrupted by SIGTERM\nnext: n\n');
  });

  it('a clean-up that hangs is bounded: the later ones still run, the warning names it, the exit comes', async () => {
    const r = await runGuarded(
      `
      g.setCleanupTimeoutForTests(300);
      g.onInterrupt({ doing: 'removing the tree', run: () => say('ran tree') });
      g.onInterrupt({ doing: 'removing container abc', run: () => new Promise(() => undefined) });
      `,
      ['SIGINT'],
    );
    expect(r.code).toBe(130);
    expect(r.ms).toBeLessThan(5000);
    expect(r.stdout).toContain('ran tree');
    expect(r.stderr).toContain('next: run the command again\n');
    expect(r.stderr).toMatch(
      /warning: clean-up did not finish within 0\.3s, exiting anyway: removing container abc\n$/,
    );
  });

  it('control characters in what a clean-up names are escaped, never echoed raw', async () => {
    const r = await runGuarded(
      `g.onInterrupt({ doing: 'removing /tmp/a\\x1b[31mb', run: () => undefined });`,
      ['SIGINT'],
    );
    expect(r.code).toBe(130);
    expect(r.stderr).not.toContain('\x1b');
    expect(r.stderr).toMatch(/error: interrupted by SIGINT; removing \/tmp\/a\\x1b\[31mb\n/);
  });

  it('with nothing registered (all unregistered) it does not listen: the signal has its default effect', async () => {
    const r = await runGuarded(
      `
      const a = g.onInterrupt({ run: () => say('ran a') });
      const b = g.onInterrupt({ run: () => say('ran b') });
      a(); b(); a();
      say('listeners ' + process.listenerCount('SIGINT') + ' ' + process.listenerCount('SIGTERM'));
      `,
      ['SIGINT'],
    );
    expect(r.stdout).toContain('listeners 0 0');
    expect(r.signal).toBe('SIGINT');
    expect(r.stdout).not.toContain('ran ');
    expect(r.stderr).toBe('');
  });

  it('withInterruptCleanup: after a signal the body neither reports its failure nor passes on its result', async () => {
    const r = await runGuarded(
      `
      // the bodies end only after the signal arrived, while the clean-up still runs
      const signalled = new Promise((r) => process.once('SIGINT', r));
      const failing = g.withInterruptCleanup(
        { doing: 'removing container abc', run: async () => { await sleep(500); say('removed'); } },
        async () => { await signalled; await sleep(100); throw new Error('container vanished'); },
      );
      failing.then(() => say('resolved'), (e) => say('reported ' + e.message));
      const finishing = g.withInterruptCleanup({ run: () => undefined }, async () => { await signalled; await sleep(50); return 'value'; });
      finishing.then((v) => say('passed on ' + v));
      `,
      ['SIGINT'],
      0,
    );
    expect(r.code).toBe(130);
    expect(r.stdout).toContain('removed');
    expect(r.stdout).not.toMatch(/reported|resolved|passed on/);
    expect(r.stderr.match(/^error: /gm)).toHaveLength(1);
  });
});
