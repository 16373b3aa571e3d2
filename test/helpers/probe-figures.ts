/**
 * The figures of a client that kept asking the control plane (api-probe.mjs): its success rate
 * and its longest gap, over a window. Pure, so that the arithmetic is tested on its own.
 */

export interface ProbeSample {
  /** when the request was sent, ms since the epoch */
  t: number;
  /** the round it was sent in (every URL once per round), ms since the epoch */
  round?: number;
  url: string;
  ok: boolean;
  status?: number;
  error?: string;
}

export interface GapFigures {
  requests: number;
  successes: number;
  /** successes / requests, 0 when there was no request */
  rate: number;
  /**
   * The longest time without a success: between two successes in a row, or from the window's
   * start to the first success, or from the last success to the window's end (the whole window
   * when nothing succeeded).
   */
  longestGapMs: number;
  /** where that gap began (the last success before it, or the window's start) */
  gapFrom: number;
}

export interface ProbeFigures {
  /** a success at any endpoint counts: what a client that tries each control plane would see */
  any: GapFigures;
  perUrl: Record<string, GapFigures>;
}

function gapFigures(samples: readonly ProbeSample[], from: number, to: number): GapFigures {
  const inside = samples.filter((s) => s.t >= from && s.t <= to).sort((a, b) => a.t - b.t);
  const successes = inside.filter((s) => s.ok).map((s) => s.t);
  let longestGapMs = 0;
  let gapFrom = from;
  let last = from;
  for (const t of [...successes, to]) {
    if (t - last > longestGapMs) {
      longestGapMs = t - last;
      gapFrom = last;
    }
    last = t;
  }
  return {
    requests: inside.length,
    successes: successes.length,
    rate: inside.length === 0 ? 0 : successes.length / inside.length,
    longestGapMs,
    gapFrom,
  };
}

/** The figures over [from, to] (ms since the epoch); samples outside the window are left out. */
export function probeFigures(samples: readonly ProbeSample[], from: number, to: number): ProbeFigures {
  if (!(to >= from)) throw new Error(`window ends (${to}) before it starts (${from})`);
  const urls = [...new Set(samples.map((s) => s.url))].filter((u) => u !== '*').sort();
  // "any": a round's requests are sent together; a round with one success is a success
  const rounds = new Map<number, boolean>();
  for (const s of samples) {
    const r = s.round ?? s.t;
    rounds.set(r, (rounds.get(r) ?? false) || s.ok);
  }
  const any = gapFigures(
    [...rounds].map(([t, ok]) => ({ t, url: '*', ok })),
    from,
    to,
  );
  return {
    any,
    perUrl: Object.fromEntries(
      urls.map((u) => [
        u,
        gapFigures(
          samples.filter((s) => s.url === u),
          from,
          to,
        ),
      ]),
    ),
  };
}

/** Parses the probe's JSON lines; a torn last line (the probe killed mid-write) is left out. */
export function parseProbeLines(text: string): ProbeSample[] {
  const out: ProbeSample[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const v = JSON.parse(line) as ProbeSample;
      if (typeof v.t === 'number' && typeof v.url === 'string' && typeof v.ok === 'boolean') out.push(v);
    } catch {
      /* torn line */
    }
  }
  return out;
}

export function formatGap(g: GapFigures): string {
  return `${g.successes}/${g.requests} ok (${(g.rate * 100).toFixed(1)} %), longest gap ${(g.longestGapMs / 1000).toFixed(1)} s from ${new Date(g.gapFrom).toISOString()}`;
}
