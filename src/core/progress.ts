/**
 * What a long operation reports as it goes, the one shape for the build pipeline and its
 * stages, the binary cache, the Go image, renew and restart: ui/output.ts's Output in the CLI,
 * a collector in tests, any subset of it for a caller that wants less. Operations print nothing
 * themselves; they call through `reporter`, so a member left out is simply not shown.
 */
export interface Progress {
  /** a new phase starts (the one before is done) */
  step?(text: string): void;
  /** how far the running phase is (e.g. "12.0/33.1 MB"), for a spinner */
  progress?(detail: string): void;
  /** for people, shown even without a TTY (e.g. "waiting for another build") */
  info?(text: string): void;
  warn?(text: string): void;
  /** build logs and other detail (shown with --verbose) */
  detail?(text: string): void;
  /** the running phase failed; its error follows */
  fail?(): void;
  /** the running phase is done (what follows is about its outcome) */
  succeed?(): void;
}

/** Every member of `p`, absent ones as no-ops (called as methods: an Output keeps its `this`). */
export function reporter(p: Progress = {}): Required<Progress> {
  return {
    step: (text) => p.step?.(text),
    progress: (detail) => p.progress?.(detail),
    info: (text) => p.info?.(text),
    warn: (text) => p.warn?.(text),
    detail: (text) => p.detail?.(text),
    fail: () => p.fail?.(),
    succeed: () => p.succeed?.(),
  };
}
