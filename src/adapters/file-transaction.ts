import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { KfError, messageOf } from '../core/errors.js';
import { FAULT_ENV, testFaults, type TestFaults } from '../core/test-faults.js';
import { isProcessAlive } from './process.js';

/**
 * All-or-nothing replacement of several files (the one mechanism every multi-file write uses:
 * ca init/extend, kubelet-cert, patch, renew's own files).
 *
 * 1. stage: each new content goes to `.NAME.kf-PID-TOKEN.new.tmp` beside its target, with its
 *    final mode; the current target (if any) gets a hard link `.NAME.kf-PID-TOKEN.old.tmp`.
 * 2. journal: `.kf-txn-PID-TOKEN.json.tmp` in the deepest directory holding every target (its
 *    "home"), naming each file by its path below that directory; every other directory touched
 *    gets an empty marker `.kf-txn-PID-TOKEN.ref.tmp`, so that a run touching only that
 *    directory finds the journal by looking up its parents.
 * 3. swap: each staged file is renamed over its target (atomic per file).
 * 4. finish: the old links, then the markers and the journal are removed.
 * A failure during 3 renames the old links back (put back); if even that fails, the error says
 * which file is in which state and where its old content is. A run killed anywhere leaves only
 * these names; the next run touching those directories finds the journal of a dead process and
 * completes it (every file swapped) or rolls it back (otherwise), and removes stray temp files.
 *
 * A journal is an instruction to rename and remove files, so it is followed only when this tool
 * could have written it: a regular file with one link, owned by the running user or root, not
 * writable by group or others, every entry a plain path below the journal's own directory (no
 * `..`, no absolute path, no link on the way). A journal planted in a directory others can write
 * (a textfile collector directory, a source tree) is reported and left alone.
 *
 * Test-only fault hook: KF_TEST_FAULT (core/test-faults.ts) makes the Nth swap fail, every
 * put-back fail, or SIGKILLs the process before step N; only under the test runner.
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

/** In memory: absolute paths. On disk: `file`, below the journal's directory (see JournalFile). */
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
  /** the directory of the journal file: every entry lies below it */
  home: string;
  entries: JournalEntry[];
}

/** The journal as written: paths relative to its directory, the temp names derived from them. */
interface JournalFile {
  version: 2;
  pid: number;
  token: string;
  state: Journal['state'];
  entries: { file: string; stagedIno: number; old: boolean }[];
}

export interface TransactionOptions {
  /** where the command keeps its own copy of the old files, named in a failed put-back */
  backupDir?: string;
  /**
   * false: do not finish or put back what earlier runs left (a source tree someone else gave us:
   * whatever journal it holds is theirs, not ours to follow)
   */
  recover?: boolean;
}

type FaultPlan = TestFaults;
const faultPlan = () => testFaults(process.env);

function injected(op: string, file: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`EIO: i/o error (injected by ${FAULT_ENV}), ${op} '${file}'`);
  err.code = 'EIO';
  err.path = file;
  return err;
}

const NAME = /^\.(.+)\.kf-(\d+)-([0-9a-f]{12})\.(new|old)\.tmp$/;
const JOURNAL = /^\.kf-txn-(\d+)-([0-9a-f]{12})\.json\.tmp$/;
const MARKER = /^\.kf-txn-(\d+)-([0-9a-f]{12})\.ref\.tmp$/;
/** a journal names a handful of files: anything bigger was not written by this tool */
const MAX_JOURNAL_BYTES = 1 << 20;

const journalName = (pid: number, token: string) => `.kf-txn-${pid}-${token}.json.tmp`;
const markerName = (pid: number, token: string) => `.kf-txn-${pid}-${token}.ref.tmp`;
const tempName = (target: string, pid: number, token: string, kind: 'new' | 'old') =>
  path.join(path.dirname(target), `.${path.basename(target)}.kf-${pid}-${token}.${kind}.tmp`);
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
    `copy the old content back (${opts.backupDir ? `backup: ${opts.backupDir}; ` : ''}old copies named above)${opts.recover === false ? '' : `; the next run retries the put-back (journal ${journal})`}`,
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

/** The markers of a journal (every directory of its entries but its own), then the journal. */
function journalFiles(j: Journal): string[] {
  if (j.home === '') return []; // failed before any journal was written
  const dirs = [...new Set(j.entries.map((e) => path.dirname(e.target)))].filter((d) => d !== j.home);
  return [
    ...dirs.map((d) => path.join(d, markerName(j.pid, j.token))),
    path.join(j.home, journalName(j.pid, j.token)),
  ];
}

function removeLeftovers(j: Journal): void {
  for (const e of j.entries) {
    rmQuiet(e.staged);
    if (e.old) rmQuiet(e.old);
  }
  for (const f of journalFiles(j)) rmQuiet(f);
}

function writeFileSynced(file: string, text: string): void {
  const fd = fs.openSync(file, fs.existsSync(file) ? 'w' : 'wx', 0o600);
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function writeJournal(j: Journal): void {
  const doc: JournalFile = {
    version: 2,
    pid: j.pid,
    token: j.token,
    state: j.state,
    entries: j.entries.map((e) => ({
      file: path.relative(j.home, e.target),
      stagedIno: e.stagedIno,
      old: e.old !== null,
    })),
  };
  writeFileSynced(path.join(j.home, journalName(j.pid, j.token)), JSON.stringify(doc));
}

/** The deepest directory holding all of `dirs` (absolute paths). */
function commonDir(dirs: string[]): string {
  let parts = dirs[0]!.split(path.sep);
  for (const d of dirs.slice(1)) {
    const other = d.split(path.sep);
    let i = 0;
    while (i < parts.length && i < other.length && parts[i] === other[i]) i++;
    parts = parts.slice(0, i);
  }
  return parts.join(path.sep) || path.sep;
}

class Untrusted extends Error {}

/**
 * Reads a journal left by a dead run and checks that this tool could have written it (see the
 * top of this file); throws Untrusted with the reason otherwise. undefined: a journal of ours
 * cut short while written (no swap had started yet).
 */
function loadJournal(file: string, pid: number, token: string): Journal | undefined {
  const home = path.dirname(file);
  const st = fs.lstatSync(file);
  if (!st.isFile()) throw new Untrusted('not a regular file');
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid && st.uid !== 0)
    throw new Untrusted(`owned by uid ${st.uid}, neither this user (uid ${uid}) nor root`);
  if ((st.mode & 0o022) !== 0)
    throw new Untrusted(
      `writable by group or others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')})`,
    );
  if (st.nlink !== 1) throw new Untrusted(`has ${st.nlink} hard links`);
  if (st.size > MAX_JOURNAL_BYTES) throw new Untrusted(`${st.size} bytes, more than a journal holds`);
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  let text: string;
  try {
    if (fs.fstatSync(fd).ino !== st.ino) throw new Untrusted('replaced while being read');
    text = fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return undefined;
  }
  const d = doc as Partial<JournalFile> & { entries?: unknown };
  if (d.pid !== pid || d.token !== token || !Array.isArray(d.entries) || d.entries.length === 0)
    throw new Untrusted('its contents do not match its name');
  const state = d.state === 'rollback' ? 'rollback' : d.state === 'swapping' ? 'swapping' : undefined;
  if (!state) throw new Untrusted(`unknown state ${JSON.stringify(d.state)}`);
  const entries = (d.entries as unknown[]).map((raw) => journalEntry(raw, home, pid, token));
  return { pid, token, state, home, entries };
}

/**
 * One entry, as this version writes it ({file, stagedIno, old}) or as earlier versions did
 * (absolute target, staged and old paths): in both cases a path below `home` with no link on
 * the way, the temp names the ones this tool derives from it.
 */
function journalEntry(raw: unknown, home: string, pid: number, token: string): JournalEntry {
  const r = (raw ?? {}) as Record<string, unknown>;
  const rel =
    typeof r.file === 'string'
      ? r.file
      : typeof r.target === 'string' && path.isAbsolute(r.target)
        ? path.relative(home, r.target)
        : undefined;
  if (rel === undefined || typeof r.stagedIno !== 'number') throw new Untrusted('an entry without a file');
  const parts = rel.split('/');
  if (path.isAbsolute(rel) || parts.some((p) => p === '' || p === '.' || p === '..' || p.includes('\0')))
    throw new Untrusted(`entry ${JSON.stringify(rel)} is not a path below ${home}`);
  let dir = home;
  for (const p of parts.slice(0, -1)) {
    dir = path.join(dir, p);
    const st = fs.lstatSync(dir, { throwIfNoEntry: false });
    if (!st?.isDirectory())
      throw new Untrusted(`entry ${JSON.stringify(rel)}: ${dir} is not a directory (a link?)`);
  }
  const target = path.join(home, rel);
  const staged = tempName(target, pid, token, 'new');
  const old = tempName(target, pid, token, 'old');
  const hasOld =
    typeof r.old === 'boolean' ? r.old : r.old === old ? true : r.old === null ? false : undefined;
  if (hasOld === undefined || (r.staged !== undefined && r.staged !== staged))
    throw new Untrusted(`entry ${JSON.stringify(rel)} names temp files this tool does not write`);
  return { target, staged, stagedIno: r.stagedIno, old: hasOld ? old : null };
}

/** The journal a marker in `dir` stands for: in `dir` or the nearest parent that has it. */
function journalForMarker(dir: string, pid: number, token: string): string | undefined {
  for (let d = dir; ; d = path.dirname(d)) {
    const f = path.join(d, journalName(pid, token));
    if (fs.lstatSync(f, { throwIfNoEntry: false })) return f;
    if (path.dirname(d) === d) return undefined;
  }
}

export interface RecoveryReport {
  /** interrupted runs whose files were all swapped: finished */
  completed: string[];
  /** interrupted runs put back to the state before them */
  rolledBack: string[];
  /** stray temp files removed */
  removed: string[];
  /** journals not followed (not written by this tool as far as can be told): file: reason */
  refused: string[];
}

/**
 * Before a command reads the files it will change: finishes or rolls back what a killed run
 * left in `dirs` (journals of dead processes) and removes stray temp files of dead runs.
 */
export function recoverInterrupted(dirs: string[]): RecoveryReport {
  const report: RecoveryReport = { completed: [], rolledBack: [], removed: [], refused: [] };
  const unique = [...new Set(dirs.map((d) => path.resolve(d)))];
  // journals first: their entries may live in the directories below theirs
  const candidates = new Set<string>();
  for (const dir of unique) {
    for (const name of listDir(dir)) {
      const j = JOURNAL.exec(name);
      const m = MARKER.exec(name);
      if (j && !isProcessAlive(Number(j[1]))) candidates.add(path.join(dir, name));
      else if (m && !isProcessAlive(Number(m[1]))) {
        const found = journalForMarker(dir, Number(m[1]), m[2]!);
        if (found) candidates.add(found);
      }
    }
  }
  const handled = new Set<string>();
  const refusedByToken = new Map<string, string[]>();
  // outer directories first: an earlier version wrote one journal per directory, the outermost
  // one naming every file below it
  for (const file of [...candidates].sort((a, b) => a.length - b.length)) {
    const [, pid, token] = JOURNAL.exec(path.basename(file))!;
    if (handled.has(token!)) continue;
    let j: Journal | undefined;
    try {
      j = loadJournal(file, Number(pid), token!);
    } catch (err) {
      const why = err instanceof Untrusted ? err.message : messageOf(err);
      refusedByToken.set(token!, [...(refusedByToken.get(token!) ?? []), `${file}: ${why}`]);
      continue;
    }
    handled.add(token!);
    if (!j) {
      rmQuiet(file);
      continue;
    }
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
  for (const [token, why] of refusedByToken) if (!handled.has(token)) report.refused.push(...why);
  // runs whose journal is still there (alive, or left alone above): their temp files stay
  const live = new Set<string>();
  for (const dir of unique) {
    for (const name of listDir(dir)) {
      const j = JOURNAL.exec(name);
      const m = MARKER.exec(name);
      if (j) live.add(j[2]!);
      else if (m && journalForMarker(dir, Number(m[1]), m[2]!)) live.add(m[2]!);
    }
  }
  for (const dir of unique) {
    for (const name of listDir(dir)) {
      const file = path.join(dir, name);
      const m = NAME.exec(name);
      const marker = MARKER.exec(name);
      let stray = false;
      if (m) stray = !isProcessAlive(Number(m[2])) && !live.has(m[3]!);
      else if (marker)
        stray =
          !isProcessAlive(Number(marker[1])) &&
          journalForMarker(dir, Number(marker[1]), marker[2]!) === undefined;
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
export function replaceFiles(entries: StagedEntry[], opts: TransactionOptions = {}): RecoveryReport {
  const none: RecoveryReport = { completed: [], rolledBack: [], removed: [], refused: [] };
  if (entries.length === 0) return none;
  const plan = faultPlan();
  const step = new Stepper(plan);
  const token = crypto.randomBytes(6).toString('hex');
  let targets = entries.map((e) => path.resolve(e.file));
  const recovered = opts.recover === false ? none : recoverInterrupted(targets.map((t) => path.dirname(t)));
  const tag = `kf-${process.pid}-${token}`;
  const journal: Journal = { pid: process.pid, token, state: 'swapping', home: '', entries: [] };
  let files: string[] = [];

  // 1. stage: nothing visible changes; any failure removes what was staged
  let current = targets[0]!;
  try {
    entries.forEach((e, i) => {
      current = targets[i]!;
      const st = fs.lstatSync(current, { throwIfNoEntry: false });
      if (st?.isDirectory()) {
        const err: NodeJS.ErrnoException = new Error(
          `EISDIR: illegal operation on a directory, rename over '${current}'`,
        );
        err.code = 'EISDIR';
        err.path = current;
        throw err;
      }
      fs.mkdirSync(path.dirname(current), { recursive: true, mode: 0o755 });
      // the journal names files below its own directory with no link on the way: real paths
      const target = path.join(fs.realpathSync(path.dirname(current)), path.basename(current));
      const dir = path.dirname(target);
      const base = path.basename(target);
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
    targets = journal.entries.map((e) => e.target);
    journal.home = commonDir([...new Set(targets.map((t) => path.dirname(t)))]);
    files = journalFiles(journal);
    for (const f of files) {
      current = f;
      step.next();
      if (f.endsWith('.ref.tmp')) writeFileSynced(f, '');
      else writeJournal(journal);
    }
  } catch (err) {
    if (journal.home === '' && journal.entries.length > 0)
      journal.home = commonDir(journal.entries.map((e) => path.dirname(e.target)));
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
        {
          try {
            writeJournal(journal);
          } catch {
            /* the journal already on disk says "not all swapped": a later run still puts back */
          }
        }
        throw restoreError(
          journal.entries.map((x) => stateText(x, failed.get(x))),
          opts,
          cause,
          files[files.length - 1]!,
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
  for (const f of files) {
    step.next();
    rmQuiet(f);
  }
  return recovered;
}

/** Warnings for people: the journals recoverInterrupted did not follow, each with its reason. */
export function recoveryWarnings(r: RecoveryReport): string[] {
  return r.refused.map((f) => `left alone a transaction journal this tool did not write: ${f}`);
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
