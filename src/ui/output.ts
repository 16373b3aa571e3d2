import ora, { type Ora } from 'ora';

export interface OutputOptions {
  json: boolean;
  verbose: boolean;
}

/**
 * Human text and progress go to stderr; stdout carries only the single `--json` result
 * document (or, without --json, the human result). ora disables itself when stderr is not a
 * TTY, and we keep it quiet under --json so machine readers see no spinner noise.
 */
export class Output {
  readonly json: boolean;
  readonly verbose: boolean;
  private spinner: Ora | undefined;

  constructor(opts: OutputOptions) {
    this.json = opts.json;
    this.verbose = opts.verbose;
  }

  /** Starts a progress step; the previous one, if still spinning, is marked done. */
  step(text: string): void {
    this.succeed();
    if (process.stderr.isTTY && !this.json) {
      this.spinner = ora({ text, stream: process.stderr, discardStdin: false }).start();
    } else if (this.verbose) {
      process.stderr.write(`• ${text}\n`);
    }
  }

  succeed(text?: string): void {
    if (this.spinner) {
      this.spinner.succeed(text);
      this.spinner = undefined;
    }
  }

  fail(text?: string): void {
    if (this.spinner) {
      this.spinner.fail(text);
      this.spinner = undefined;
    }
  }

  /** Informational text for people: stderr, always (also under --json). */
  info(text: string): void {
    this.pauseSpinner(() => process.stderr.write(`${text}\n`));
  }

  warn(text: string): void {
    this.pauseSpinner(() => process.stderr.write(`warning: ${text}\n`));
  }

  /** Build logs and other detail, only with --verbose. */
  detail(text: string): void {
    if (!this.verbose) return;
    this.pauseSpinner(() => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`));
  }

  /**
   * The command's result: with --json the document on stdout; otherwise `human` (if given)
   * on stdout.
   */
  result(doc: unknown, human?: string): void {
    this.succeed();
    if (this.json) {
      process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
    } else if (human !== undefined) {
      process.stdout.write(human.endsWith('\n') ? human : `${human}\n`);
    }
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
