import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { KfError, messageOf } from '../core/errors.js';
import { isProcessAlive } from './process.js';

/**
 * All-or-nothing replacement of several files (the one mechanism every multi-file write uses:
 * ca init/extend, kubelet-cert, patch, renew's own files).
 *
 * 1. stage: each new content goes to `.NAME.kf-PID-TOKEN.new.tmp` beside its target, with its
 *    final mode; the current target (if any) gets a hard link `.NAME.kf-PID-TOKEN.old.tmp`.
 * 2. journal: `.kf-txn-PID-TOKEN.json.tmp` in every directory touched, naming every file.
 * 3. swap: each staged file is renamed over its target (atomic per file).
 * 4. finish: the old links, then the journals are removed.
 * A failure during 3 renames the old links back (put back); if even that fails, the error says
 * which file is in which state and where its old content is. A run killed anywhere leaves only
 * these names; the next run touching those directories finds the journal of a dead process and
 * completes it (every file swapped) or rolls it back (otherwise), and removes stray temp files.
 *
 * Test-only fault hook: KF_TEST_FAULT (see faultPlan) makes the Nth swap fail,
 * every put-back fail, or SIGKILLs the process before step N. Not for production use.
 */

export interface StagedFile {
  file: string;
  data: string | Uint8Array;
  mode: number;
}

export interface StagedLink {
  file: string;
  /** a symlink pointing here replaces `file` */
  linkTo: string;
}

export type StagedEntry = StagedFile | StagedLink;

interface JournalEntry {
  target: string;
  staged: string;
  stagedIno: number;
  /** hard link (or copy) of the target as it was; null when the target did not exist */
  old: string | null;
}

interface Journal {
  pid: number;
  token: string;
  /** "rollback": a put-back failed; the next run must put back, never complete */
  state: 'swapping' | 'rollback';
  journals: string[];
  entries: JournalEntry[];
}

export interface TransactionOptions {
  /** where the command keeps its own copy of the old files, named in a failed put-back */
  backupDir?: string;
}

export const FAULT_ENV = 'KF_TEST_FAULT';

interface FaultPlan {
  killAtStep?: number;
  failSwap?: number;
  failRestore: boolean;
}

/**
 * Test-only: `kill-at:N` (SIGKILL before mutating step N, counted from 1 over staging, old
 * links, journals, swaps, removals), `fail-swap:N` (the Nth swap rename fails with EIO),
 * `fail-restore` (every put-back rename fails); comma-separated.
 */
function faultPlan(): FaultPlan {
  const plan: FaultPlan = { failRestore: false };
  for (const part of (process.env[FAULT_ENV] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^(kill-at|fail-swap):(\d+)$/.exec(part);
    if (m?.[1] === 'kill-at') plan.killAtStep = Number(m[2]);
    else if (m?.[1] === 'fail-swap') plan.failSwap = Number(m[2]);
    else if (part === 'fail-restore') plan.failRestore = true;
  }
  return plan;
}

function injected(op: string, file: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`EIO: i/o error (injected by ${FAULT_ENV}), ${op} '${file}'`);
  err.code = 'EIO';
  err.path = file;
  return err;
}

const NAME = /^\.(.+)\.kf-(\d+)-([0-9a-f]{12})\.(new|old)\.tmp$/;
const JOURNAL = /^\.kf-txn-(\d+)-([0-9a-f]{12})\.json\.tmp$/;
/** other temp names of this tool and of its earlier versions (staged files only; no target was touched) */
const LEGACY = [
  /^\..+\.kf-[0-9a-f]{8}\.tmp$/,
  /^\..+\.kf-(\d+)\.tmp$/,
  /^\.kubeadm-forever-(\d+)-.+$/,
  /^kubeadm-forever-.+\.tar\.gz\.(\d+)\.tmp$/, // renew's backup archive being written
];

function inoOf(file: string): number | undefined {
  return fs.lstatSync(file, { throwIfNoEntry: false })?.ino;
}

function rmQuiet(file: string): void {
  try {
    fs.rmSync(file, { force: true });
  } catch {
    /* a leftover that cannot be removed now is retried by the next run */
  }
}

/** What one file's state is after a failure, for the error text. */
function stateText(e: JournalEntry, restoreError?: string): string {
  const ino = inoOf(e.target);
  if (ino === e.stagedIno) {
    return `${e.target}: NEW content${restoreError ? ` (put back failed: ${restoreError})` : ''}${e.old ? `; old content at ${e.old}` : ''}`;
  }
  if (e.old === null) return `${e.target}: absent, as before`;
  return `${e.target}: old content`;
}

function restoreError(states: string[], opts: TransactionOptions, cause: string, journal: string): KfError {
  return new KfError(
    `${cause}, and putting the files back failed: ${states.join('; ')}`,
    `copy the old content back (${opts.backupDir ? `backup: ${opts.backupDir}; ` : ''}old copies named above); the next run retries the put-back (journal ${journal})`,
  );
}

class Stepper {
  private step = 0;
  constructor(private readonly plan: FaultPlan) {}
  next(): void {
    this.step++;
    if (this.plan.killAtStep === this.step) process.kill(process.pid, 'SIGKILL');
  }
}

/** Puts back every swapped entry; returns the entries whose put-back failed with the reason. */
function putBack(entries: JournalEntry[], plan: FaultPlan): Map<JournalEntry, string> {
  const failed = new Map<JournalEntry, string>();
  for (const e of [...entries].reverse()) {
    if (inoOf(e.target) !== e.stagedIno) continue; // never swapped
    try {
      if (plan.failRestore) throw injected('rename', e.target);
      if (e.old) fs.renameSync(e.old, e.target);
      else fs.rmSync(e.target);
    } catch (err) {
      failed.set(e, messageOf(err));
    }
  }
  return failed;
}

function removeLeftovers(j: Journal): void {
  for (const e of j.entries) {
    rmQuiet(e.staged);
    if (e.old) rmQuiet(e.old);
  }
  for (const f of j.journals) rmQuiet(f);
}

function writeJournal(j: Journal, file: string): void {
  const fd = fs.openSync(file, fs.existsSync(file) ? 'w' : 'wx', 0o600);
  try {
    fs.writeSync(fd, JSON.stringify(j));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export interface RecoveryReport {
  /** interrupted runs whose files were all swapped: finished */
  completed: string[];
  /** interrupted runs put back to the state before them */
  rolledBack: string[];
  /** stray temp files removed */
  removed: string[];
}

/**
 * Before a command reads the files it will change: finishes or rolls back what a killed run
 * left in `dirs` (journals of dead processes) and removes stray temp files of dead runs.
 */
export function recoverInterrupted(dirs: string[]): RecoveryReport {
  const report: RecoveryReport = { completed: [], rolledBack: [], removed: [] };
  const seen = new Set<string>();
  const unique = [...new Set(dirs.map((d) => path.resolve(d)))];
  // journals first: their entries may live in other directories
  for (const dir of unique) {
    for (const name of listDir(dir)) {
      const m = JOURNAL.exec(name);
      if (!m || isProcessAlive(Number(m[1])) || seen.has(m[2]!)) continue;
      const file = path.join(dir, name);
      let j: Journal | undefined;
      try {
        j = JSON.parse(fs.readFileSync(file, 'utf8')) as Journal;
      } catch {
        j = undefined; // cut short while written: no swap had started yet
      }
      if (!j || !Array.isArray(j.entries)) {
        rmQuiet(file);
        continue;
      }
      seen.add(m[2]!);
      const complete = j.state !== 'rollback' && j.entries.every((e) => inoOf(e.target) === e.stagedIno);
      if (complete) {
        removeLeftovers(j);
        report.completed.push(j.entries.map((e) => e.target).join(', '));
        continue;
      }
      const failed = putBack(j.entries, faultPlan());
      if (failed.size > 0) {
        throw restoreError(
          j.entries.map((e) => stateText(e, failed.get(e))),
          {},
          `an interrupted run (pid ${j.pid}) left files half replaced`,
          file,
        );
      }
      removeLeftovers(j);
      report.rolledBack.push(j.entries.map((e) => e.target).join(', '));
    }
  }
  for (const dir of unique) {
    for (const name of listDir(dir)) {
      const file = path.join(dir, name);
      const m = NAME.exec(name);
      let stray = false;
      if (m) stray = !isProcessAlive(Number(m[2])) && !hasJournal(unique, m[3]!);
      else {
        for (const re of LEGACY) {
          const l = re.exec(name);
          if (l && (l[1] === undefined || !isProcessAlive(Number(l[1])))) stray = true;
        }
      }
      if (stray && fs.lstatSync(file, { throwIfNoEntry: false })?.isDirectory() === false) {
        rmQuiet(file);
        report.removed.push(file);
      }
    }
  }
  return report;
}

function hasJournal(dirs: string[], token: string): boolean {
  return dirs.some((d) => listDir(d).some((n) => JOURNAL.exec(n)?.[2] === token));
}

function listDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * Stages every entry, swaps them all in, and removes the leftovers: all of `entries` replaced,
 * or (on any failure) none. Targets are real paths (resolve links first where the link must stay).
 */
export function replaceFiles(entries: StagedEntry[], opts: TransactionOptions = {}): void {
  if (entries.length === 0) return;
  const plan = faultPlan();
  const step = new Stepper(plan);
  const token = crypto.randomBytes(6).toString('hex');
  const targets = entries.map((e) => path.resolve(e.file));
  const dirs = [...new Set(targets.map((t) => path.dirname(t)))];
  recoverInterrupted(dirs);
  const tag = `kf-${process.pid}-${token}`;
  const journal: Journal = {
    pid: process.pid,
    token,
    state: 'swapping',
    journals: dirs.map((d) => path.join(d, `.kf-txn-${process.pid}-${token}.json.tmp`)),
    entries: [],
  };

  // 1. stage: nothing visible changes; any failure removes what was staged
  let current = targets[0]!;
  try {
    entries.forEach((e, i) => {
      const target = targets[i]!;
      current = target;
      const base = path.basename(target);
      const dir = path.dirname(target);
      const st = fs.lstatSync(target, { throwIfNoEntry: false });
      if (st?.isDirectory()) {
        const err: NodeJS.ErrnoException = new Error(
          `EISDIR: illegal operation on a directory, rename over '${target}'`,
        );
        err.code = 'EISDIR';
        err.path = target;
        throw err;
      }
      fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
      const staged = path.join(dir, `.${base}.${tag}.new.tmp`);
      const entry: JournalEntry = { target, staged, stagedIno: 0, old: null };
      journal.entries.push(entry); // before creating it, so that a failure removes it
      step.next();
      if ('linkTo' in e) fs.symlinkSync(e.linkTo, staged);
      else {
        const fd = fs.openSync(staged, 'wx', e.mode);
        try {
          fs.writeFileSync(fd, e.data);
          fs.fchmodSync(fd, e.mode); // the umask may have narrowed it
          fs.fsyncSync(fd);
        } finally {
          fs.closeSync(fd);
        }
      }
      entry.stagedIno = fs.lstatSync(staged).ino;
      if (st) {
        const old = path.join(dir, `.${base}.${tag}.old.tmp`);
        step.next();
        try {
          fs.linkSync(target, old);
        } catch {
          fs.copyFileSync(target, old, fs.constants.COPYFILE_EXCL); // no hard links here: a copy
          fs.chmodSync(old, st.mode & 0o7777);
        }
        entry.old = old;
      }
    });
    for (const f of journal.journals) {
      current = f;
      step.next();
      writeJournal(journal, f);
    }
  } catch (err) {
    removeLeftovers(journal);
    throw new KfError(
      `cannot stage ${current}: ${messageOf(err)}`,
      'check that the directory exists, is writable and has space; nothing was changed',
    );
  }

  // 2. swap
  let swaps = 0;
  for (const e of journal.entries) {
    try {
      step.next();
      swaps++;
      if (plan.failSwap === swaps) throw injected('rename', e.target);
      fs.renameSync(e.staged, e.target);
    } catch (err) {
      const cause = `cannot replace ${e.target}: ${messageOf(err)}`;
      const failed = putBack(journal.entries, plan);
      if (failed.size > 0) {
        journal.state = 'rollback';
        for (const f of journal.journals) {
          try {
            writeJournal(journal, f);
          } catch {
            /* the journal already on disk says "not all swapped": a later run still puts back */
          }
        }
        throw restoreError(
          journal.entries.map((x) => stateText(x, failed.get(x))),
          opts,
          cause,
          journal.journals[0]!,
        );
      }
      removeLeftovers(journal);
      const swapped = journal.entries.indexOf(e);
      throw new KfError(
        cause,
        `fix that and run again; nothing was changed${swapped > 0 ? ` (the ${swapped} file(s) already replaced were put back)` : ''}`,
      );
    }
  }

  // 3. finish
  for (const e of journal.entries) {
    if (!e.old) continue;
    step.next();
    rmQuiet(e.old);
  }
  for (const f of journal.journals) {
    step.next();
    rmQuiet(f);
  }
}

/** Lines for people about what recoverInterrupted did (none when it found nothing). */
export function describeRecovery(r: RecoveryReport): string[] {
  return [
    ...r.rolledBack.map((f) => `an interrupted earlier run was put back: ${f}`),
    ...r.completed.map((f) => `an interrupted earlier run had replaced every file; finished it: ${f}`),
    ...(r.removed.length > 0
      ? [`removed ${r.removed.length} temp file(s) an interrupted run left: ${r.removed.join(', ')}`]
      : []),
  ];
}
