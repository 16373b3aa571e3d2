import { spawn } from 'node:child_process';

/** The outcome of one process run: argument arrays only, never a shell. */
export interface ExecResult {
  /** exit code; null when the process could not start or was killed */
  code: number | null;
  stdout: string;
  stderr: string;
  /** set when the binary could not be started (ENOENT, EACCES, ...) */
  startError?: NodeJS.ErrnoException;
  timedOut: boolean;
}

export interface ExecOptions {
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** called with each complete output line (stdout and stderr) as it arrives */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
}

/** Runs `file args...` without a shell, collecting output and optionally streaming its lines. */
export function execFile(file: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = spawn(file, [...args], { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
    const out = { stdout: '', stderr: '' };
    const partial = { stdout: '', stderr: '' };
    let timedOut = false;
    let startError: NodeJS.ErrnoException | undefined;
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
          }, opts.timeoutMs);
    const take = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      out[stream] += text;
      if (!opts.onLine) return;
      const lines = (partial[stream] + text).split('\n');
      partial[stream] = lines.pop() ?? '';
      for (const line of lines) opts.onLine(line, stream);
    };
    child.stdout.on('data', take('stdout'));
    child.stderr.on('data', take('stderr'));
    child.on('error', (err: NodeJS.ErrnoException) => {
      startError = err;
    });
    child.on('close', (code) => {
      if (timer) clearTimeout(timer);
      for (const stream of ['stdout', 'stderr'] as const) {
        if (opts.onLine && partial[stream]) opts.onLine(partial[stream], stream);
      }
      resolve({ code: startError ? null : code, ...out, startError, timedOut });
    });
  });
}

/** First non-empty line of a process's error output, for one-line error messages. */
export function firstLine(r: ExecResult): string {
  const text = r.startError?.message ?? (r.stderr.trim() || r.stdout.trim());
  return (
    text
      .split('\n')
      .find((l) => l.trim() !== '')
      ?.trim() ?? `exit code ${String(r.code)}`
  );
}
