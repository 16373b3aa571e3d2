import type { Options as OraOptions, Ora } from 'ora';
import { escapeControl } from '../core/errors.js';

/**
 * Informational text may echo input (file names, subjects): control characters escaped as in
 * errors, but the line breaks and tabs of a multi-line message kept.
 */
export function escapeLines(text: string): string {
  return text
    .split('\n')
    .map((line) => line.split('\t').map(escapeControl).join('\t'))
    .join('\n');
}

/**
 * JSON.stringify escapes C0 controls but writes DEL, the C1 controls (0x9b is a CSI on some
 * terminals) and the line and direction marks raw: those become \u escapes too. The document
 * means the same; only how it is spelled changes.
 */
export function jsonDocument(doc: unknown, indent = 2): string {
  return JSON.stringify(doc, null, indent).replace(
    /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

export interface OutputOptions {
  json: boolean;
  verbose: boolean;
  /** where progress and text go (default process.stderr) */
  stream?: NodeJS.WriteStream;
  env?: NodeJS.ProcessEnv;
  /** milliseconds clock (tests) */
  now?: () => number;
  /** ora: without it progress is plain lines (openOutput loads it when a spinner is drawn) */
  spinner?: (options: OraOptions) => Ora;
}

/** Narrower than this (or 0: unknown, as on serial consoles and `ssh -t` without a size) gets plain lines. */
export const MIN_SPINNER_COLUMNS = 20;

/** Without a TTY, a phase that took at least this long gets its line with the elapsed time. */
export const LONG_PHASE_MS = 2000;

/**
 * How progress is shown on `stream`: a live spinner only on a terminal that can draw one (a TTY,
 * TERM neither unset nor "dumb", a known width of at least MIN_SPINNER_COLUMNS, no CI variable); plain
 * lines everywhere else. ora left to itself on a 0-column terminal computes an infinite number of
 * lines to clear and writes escape codes without end.
 */
export function progressMode(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv): 'spinner' | 'lines' {
  if (stream.isTTY !== true) return 'lines';
  if (!env.TERM || env.TERM === 'dumb') return 'lines';
  // as ora's is-interactive decides: any CI variable means a log, not a person
  if ('CI' in env) return 'lines';
  const columns = stream.columns;
  if (typeof columns !== 'number' || !Number.isFinite(columns) || columns < MIN_SPINNER_COLUMNS)
    return 'lines';
  return 'spinner';
}

/** 950 -> "0.9s", 62_000 -> "1m02s". */
export function formatElapsed(ms: number): string {
  if (ms < 60_000) return `${(Math.floor(ms / 100) / 10).toFixed(1)}s`;
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

interface Phase {
  text: string;
  started: number;
  /** "how far", shown after the text on a spinner (e.g. "12.0/33.1 MB") */
  detail?: string;
}

/**
 * An Output for a command: ora (with chalk, cli-cursor and the rest it brings) is loaded only
 * when a spinner will be drawn, not by every command that might show progress.
 */
export async function openOutput(opts: OutputOptions): Promise<Output> {
  const stream = opts.stream ?? process.stderr;
  const drawsSpinner = !opts.json && progressMode(stream, opts.env ?? process.env) === 'spinner';
  const spinner = opts.spinner ?? (drawsSpinner ? (await import('ora')).default : undefined);
  return new Output({ ...opts, spinner });
}

/**
 * Human text and progress go to stderr; stdout carries only the single `--json` result
 * document (or, without --json, the human result). Progress: a spinner with the elapsed time
 * (and how far, where a stage reports it) on a terminal that can draw one; without one, a line
 * per phase that took LONG_PHASE_MS or more, with its elapsed time (with --verbose every phase's
 * start too). Under --json only --verbose's start lines, on stderr: stdout stays the document.
 */
export class Output {
  readonly json: boolean;
  readonly verbose: boolean;
  private readonly stream: NodeJS.WriteStream;
  private mode: 'spinner' | 'lines';
  private readonly now: () => number;
  private readonly ora: ((options: OraOptions) => Ora) | undefined;
  private spinner: Ora | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private phase: Phase | undefined;
  private lastDraw = 0;

  constructor(opts: OutputOptions) {
    this.json = opts.json;
    this.verbose = opts.verbose;
    this.stream = opts.stream ?? process.stderr;
    this.ora = opts.spinner;
    this.mode = this.ora ? progressMode(this.stream, opts.env ?? process.env) : 'lines';
    this.now = opts.now ?? Date.now;
    // a terminal resized below MIN_SPINNER_COLUMNS (0 included) mid-run: ora would compute an
    // infinite number of lines to clear at its next frame. tty streams update `columns` and emit
    // 'resize' synchronously, before any of ora's timers, so the spinner stops first.
    if (this.mode === 'spinner') this.stream.on?.('resize', () => this.onResize());
  }

  private onResize(): void {
    if (progressMode(this.stream, { TERM: 'xterm' }) === 'spinner') return;
    this.mode = 'lines';
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = undefined;
    this.spinner?.stop();
    this.spinner = undefined;
  }

  /** Starts a progress step; the previous one, if still running, is marked done. */
  step(text: string): void {
    this.succeed();
    this.phase = { text, started: this.now() };
    // under --json no spinner and no elapsed-time lines; --verbose still names each phase on
    // stderr (stdout stays the one document)
    if (this.mode === 'spinner' && this.ora && !this.json) {
      this.spinner = this.ora({ text, stream: this.stream, discardStdin: false }).start();
      // the elapsed time ticks on its own; unref: a forgotten step never keeps the process alive
      this.ticker = setInterval(() => this.render(), 1000);
      this.ticker.unref();
    } else if (this.verbose) {
      this.stream.write(`• ${text}\n`);
    }
  }

  /** How far the running step is, e.g. "12.0/33.1 MB" (spinner only: never floods a log). */
  progress(detail: string): void {
    if (!this.phase) return;
    this.phase.detail = detail;
    this.render();
    // drawn now rather than at ora's next frame (a short step would end first), at most 10 times a second
    if (this.spinner && this.now() - this.lastDraw >= 100) {
      this.lastDraw = this.now();
      this.spinner.render();
    }
  }

  succeed(text?: string): void {
    const phase = this.endPhase();
    if (!phase || this.json) return;
    const elapsed = formatElapsed(this.now() - phase.started);
    if (this.spinner) {
      this.spinner.succeed(`${text ?? phase.text} (${elapsed})`);
      this.spinner = undefined;
    } else if (this.now() - phase.started >= LONG_PHASE_MS) {
      this.stream.write(`✔ ${text ?? phase.text} (${elapsed})\n`);
    }
  }

  /** The running step failed: its error lines (printed by the caller) tell the rest. */
  fail(text?: string): void {
    const phase = this.endPhase();
    if (this.spinner) {
      this.spinner.fail(text ?? phase?.text);
      this.spinner = undefined;
    }
  }

  /** Informational text for people: stderr, always (also under --json). */
  info(text: string): void {
    this.pauseSpinner(() => this.stream.write(`${escapeLines(text)}\n`));
  }

  warn(text: string): void {
    this.pauseSpinner(() => this.stream.write(`warning: ${escapeLines(text)}\n`));
  }

  /** Build logs and other detail, only with --verbose. */
  detail(text: string): void {
    if (!this.verbose) return;
    this.pauseSpinner(() => this.stream.write(text.endsWith('\n') ? text : `${text}\n`));
  }

  /** Set once the result is out: a failure after it must not put a second document on stdout. */
  resultWritten = false;

  /**
   * The command's result: with --json the document on stdout; otherwise `human` (if given)
   * on stdout.
   */
  result(doc: unknown, human?: string): void {
    this.succeed();
    this.resultWritten = true;
    if (this.json) {
      process.stdout.write(`${jsonDocument(doc)}\n`);
    } else if (human !== undefined) {
      process.stdout.write(human.endsWith('\n') ? human : `${human}\n`);
    }
  }

  private endPhase(): Phase | undefined {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = undefined;
    const phase = this.phase;
    this.phase = undefined;
    return phase;
  }

  private render(): void {
    if (!this.spinner || !this.phase) return;
    const { text, detail, started } = this.phase;
    this.spinner.text = `${text}${detail ? ` ${detail}` : ''} (${formatElapsed(this.now() - started)})`;
  }

  private pauseSpinner(write: () => void): void {
    if (this.spinner?.isSpinning) {
      this.spinner.clear();
      write();
      this.spinner.render();
    } else {
      write();
    }
  }
}
