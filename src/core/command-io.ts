import type { Progress } from './progress.js';

/**
 * What a command written as a plain function gets instead of process globals: its output
 * streams, its environment and where it reports progress. The CLI passes the real ones
 * (commands/run.ts runFunction); a test passes collectors.
 */
export interface CommandIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  env: NodeJS.ProcessEnv;
  progress: Progress;
  /** standard input, for a flag's "-" (absent: none to read) */
  stdin?: NodeJS.ReadableStream;
}
