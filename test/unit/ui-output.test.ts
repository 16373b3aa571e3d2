import { describe, expect, it } from 'vitest';
import { formatElapsed, LONG_PHASE_MS, Output, progressMode } from '../../src/ui/output.js';

// Which progress a stream gets, and the plain lines a log gets, with a fake stream and clock.

function fakeStream(over: { isTTY?: boolean; columns?: number } = {}) {
  const chunks: string[] = [];
  const stream = {
    isTTY: over.isTTY ?? false,
    columns: over.columns,
    write: (s: string) => chunks.push(s) > 0,
  } as unknown as NodeJS.WriteStream;
  return { stream, text: () => chunks.join('') };
}

describe('progressMode', () => {
  const tty = (columns?: number) => fakeStream({ isTTY: true, columns }).stream;
  it('draws a spinner only on a sized terminal with a real TERM and no CI', () => {
    expect(progressMode(tty(80), { TERM: 'xterm' })).toBe('spinner');
    expect(progressMode(tty(0), { TERM: 'xterm' })).toBe('lines');
    expect(progressMode(tty(undefined), { TERM: 'xterm' })).toBe('lines');
    expect(progressMode(tty(5), { TERM: 'xterm' })).toBe('lines');
    expect(progressMode(tty(80), { TERM: 'dumb' })).toBe('lines');
    expect(progressMode(tty(80), {})).toBe('lines');
    expect(progressMode(tty(80), { TERM: 'xterm', CI: 'true' })).toBe('lines');
    expect(progressMode(fakeStream({ columns: 80 }).stream, { TERM: 'xterm' })).toBe('lines');
  });
});

describe('formatElapsed', () => {
  it('gives tenths under a minute, minutes and seconds above', () => {
    expect(formatElapsed(950)).toBe('0.9s');
    expect(formatElapsed(59_999)).toBe('59.9s');
    expect(formatElapsed(62_000)).toBe('1m02s');
  });
});

describe('Output without a terminal', () => {
  it('writes one line per long phase with its elapsed time, none for short ones, none under --json', () => {
    let t = 0;
    const { stream, text } = fakeStream();
    const out = new Output({ json: false, verbose: false, stream, env: {}, now: () => t });
    out.step('short');
    t += 100;
    out.step('building');
    out.progress('12.0/33.0 MB'); // a log never gets these
    t += 116_300;
    out.step('verifying');
    t += LONG_PHASE_MS;
    out.succeed();
    expect(text()).toBe('✔ building (1m56s)\n✔ verifying (2.0s)\n');

    const quiet = fakeStream();
    const json = new Output({ json: true, verbose: false, stream: quiet.stream, env: {}, now: () => t });
    json.step('building');
    t += 10_000;
    json.succeed();
    expect(quiet.text()).toBe('');
  });

  it('with --verbose also names each phase as it starts; a failed phase prints no success line', () => {
    let t = 0;
    const { stream, text } = fakeStream();
    const out = new Output({ json: false, verbose: true, stream, env: {}, now: () => t });
    out.step('filling');
    t += 5000;
    out.fail();
    expect(text()).toBe('• filling\n');
  });
});

describe('informational lines echo input escaped', () => {
  it('escapes control characters in info and warn, keeping line breaks and tabs', () => {
    const chunks: string[] = [];
    const stream = {
      isTTY: false,
      write: (c: string) => (chunks.push(c), true),
    } as unknown as NodeJS.WriteStream;
    const out = new Output({ json: false, verbose: false, stream, env: {} });
    out.info('file a\x1b[2Jb\nsecond\tline');
    out.warn('subject \x07\u009b');
    expect(chunks.join('')).toBe('file a\\x1b[2Jb\nsecond\tline\nwarning: subject \\x07\\x9b\n');
  });
});
