import { describe, expect, it } from 'vitest';
import { formatGap, parseProbeLines, probeFigures, type ProbeSample } from '../helpers/probe-figures.js';

const A = 'https://192.0.2.11:6443/readyz';
const B = 'https://192.0.2.12:6443/readyz';
const s = (t: number, url: string, ok: boolean): ProbeSample => ({ round: t, t, url, ok });

describe('probeFigures', () => {
  it('counts the success rate and the longest time between two successes, per URL and for any', () => {
    const samples = [
      s(1000, A, true),
      s(1000, B, true),
      s(2000, A, false),
      s(2000, B, true),
      s(3000, A, false),
      s(3000, B, false),
      s(4000, A, false),
      s(4000, B, false),
      s(5000, A, true),
      s(5000, B, true),
    ];
    const f = probeFigures(samples, 1000, 5000);
    expect(f.perUrl[A]).toEqual({ requests: 5, successes: 2, rate: 0.4, longestGapMs: 4000, gapFrom: 1000 });
    expect(f.perUrl[B]).toEqual({ requests: 5, successes: 3, rate: 0.6, longestGapMs: 3000, gapFrom: 2000 });
    // any endpoint: rounds 1, 2 and 5 had a success
    expect(f.any).toEqual({ requests: 5, successes: 3, rate: 0.6, longestGapMs: 3000, gapFrom: 2000 });
  });

  it('counts the window edges as gaps: before the first success and after the last', () => {
    const f = probeFigures([s(1000, A, false), s(2000, A, true), s(3000, A, false)], 0, 10_000);
    expect(f.perUrl[A]!.longestGapMs).toBe(8000);
    expect(f.perUrl[A]!.gapFrom).toBe(2000);
    const early = probeFigures([s(9000, A, true)], 0, 10_000);
    expect(early.any.longestGapMs).toBe(9000);
    expect(early.any.gapFrom).toBe(0);
  });

  it('gives the whole window as the gap when nothing succeeded, and rate 0 without requests', () => {
    const f = probeFigures([s(1000, A, false), s(2000, A, false)], 500, 2500);
    expect(f.any).toEqual({ requests: 2, successes: 0, rate: 0, longestGapMs: 2000, gapFrom: 500 });
    expect(probeFigures([], 0, 100).any).toEqual({
      requests: 0,
      successes: 0,
      rate: 0,
      longestGapMs: 100,
      gapFrom: 0,
    });
  });

  it('leaves out samples outside the window and refuses a window that ends before it starts', () => {
    const f = probeFigures([s(100, A, false), s(1000, A, true), s(5000, A, false)], 1000, 2000);
    expect(f.perUrl[A]).toMatchObject({ requests: 1, successes: 1, rate: 1, longestGapMs: 1000 });
    expect(() => probeFigures([], 2, 1)).toThrow(/ends .* before it starts/);
  });

  it('reads the probe lines, leaving out a torn last line and lines that are not samples', () => {
    const text = `${JSON.stringify(s(1, A, true))}\n{"t":2}\nnot json\n${JSON.stringify(s(3, B, false))}\n{"t":4,"ur`;
    expect(parseProbeLines(text)).toEqual([s(1, A, true), s(3, B, false)]);
  });

  it('formats a line with the rate, the gap and where it began', () => {
    expect(
      formatGap({ requests: 4, successes: 3, rate: 0.75, longestGapMs: 2500, gapFrom: Date.UTC(2026, 0, 1) }),
    ).toBe('3/4 ok (75.0 %), longest gap 2.5 s from 2026-01-01T00:00:00.000Z');
  });
});
