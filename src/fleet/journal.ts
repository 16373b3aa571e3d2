import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { KfError, UsageError, withPath } from '../core/errors.js';
import type { GateRecord, RolloutPlan } from '../core/rollout-plan.js';

/**
 * The rollout's journal on the admin host: which step of which plan is done, failed or was
 * running when the rollout stopped. Written atomically (a 0600 temp file beside it, fsync,
 * rename), so a crash leaves the old or the new journal, never half of one. `--resume` continues
 * the same plan (same nodes, seed and batches: its digest) and skips the steps marked done.
 */

export type StepState = 'running' | 'done' | 'failed';

export interface JournalEntry {
  state: StepState;
  at: string;
  /** when the step began running (kept when it is marked done or failed) */
  startedAt?: string;
  detail?: string;
  /** what the step's gates saw (the step is the entry's key), so a later reader knows why it passed */
  gates?: Omit<GateRecord, 'step'>[];
}

export interface JournalDoc {
  kind: 'kubeadm-forever-rollout-journal';
  version: 1;
  planDigest: string;
  seed: string;
  startedAt: string;
  updatedAt: string;
  steps: Record<string, JournalEntry>;
}

export const MAX_JOURNAL_BYTES = 4 * 1024 * 1024;

/** What identifies a plan: its steps in order (ids, nodes, batches, actions) and its seed. */
export function planDigest(plan: RolloutPlan): string {
  const shape = plan.steps.map((s) => [s.id, s.node ?? '', s.batch ?? 0, s.actions.join(',')]);
  return createHash('sha256')
    .update(JSON.stringify({ seed: plan.seed, clusterSteps: plan.clusterSteps, shape }))
    .digest('hex');
}

function readJournal(file: string): JournalDoc | undefined {
  const st = fs.lstatSync(file, { throwIfNoEntry: false });
  if (!st) return undefined;
  const bad = (what: string) =>
    new KfError(
      `rollout journal ${file} ${what}`,
      'move it away only if no rollout ran with it; then run again',
    );
  if (!st.isFile()) throw bad('is not a regular file');
  if (st.size > MAX_JOURNAL_BYTES) throw bad(`is ${st.size} bytes, over ${MAX_JOURNAL_BYTES}`);
  let doc: JournalDoc;
  try {
    doc = JSON.parse(fs.readFileSync(file, 'utf8')) as JournalDoc;
  } catch (err) {
    if (err instanceof SyntaxError) throw bad('is not JSON');
    throw withPath(err, file);
  }
  if (doc?.kind !== 'kubeadm-forever-rollout-journal' || doc.version !== 1 || typeof doc.steps !== 'object')
    throw bad('is not a rollout journal of this version');
  return doc;
}

export class Journal {
  private constructor(
    readonly file: string,
    private doc: JournalDoc,
  ) {}

  /**
   * The journal for this plan: a new one, or (with resume) the existing one of the same plan.
   * An existing journal without resume, or of another plan, is refused before anything runs.
   */
  static open(file: string, plan: RolloutPlan, opts: { resume: boolean; now?: Date }): Journal {
    const digest = planDigest(plan);
    const existing = readJournal(file);
    const now = (opts.now ?? new Date()).toISOString();
    if (existing) {
      const done = Object.values(existing.steps).filter((e) => e.state === 'done').length;
      if (!opts.resume) {
        throw new UsageError(
          `a rollout journal exists at ${file} (${done} of ${plan.steps.length} steps done, last written ${existing.updatedAt})`,
          'pass --resume to continue that rollout, or --journal FILE for a new one',
        );
      }
      if (existing.planDigest !== digest) {
        throw new UsageError(
          `the rollout journal ${file} is of another plan (other nodes, seed or batches)`,
          'resume with the same inventory, --seed and --max-unavailable, or pass --journal FILE for a new rollout',
        );
      }
      return new Journal(file, existing);
    }
    if (opts.resume) {
      throw new UsageError(
        `no rollout journal at ${file} to resume`,
        'run without --resume, or pass --journal FILE',
      );
    }
    const j = new Journal(file, {
      kind: 'kubeadm-forever-rollout-journal',
      version: 1,
      planDigest: digest,
      seed: plan.seed,
      startedAt: now,
      updatedAt: now,
      steps: {},
    });
    j.write();
    return j;
  }

  get document(): Readonly<JournalDoc> {
    return this.doc;
  }

  isDone(stepId: string): boolean {
    return this.doc.steps[stepId]?.state === 'done';
  }

  /** Records a step's state (and what its gates saw) and writes the journal before returning. */
  mark(
    stepId: string,
    state: StepState,
    opts: { detail?: string; gates?: readonly GateRecord[]; now?: Date } = {},
  ): void {
    const { detail, now = new Date() } = opts;
    const gates = (opts.gates ?? []).map(({ step: _step, ...g }) => g);
    const prev = this.doc.steps[stepId];
    const startedAt =
      state === 'running' ? now.toISOString() : prev?.state === 'running' ? prev.at : undefined;
    this.doc = {
      ...this.doc,
      updatedAt: now.toISOString(),
      steps: {
        ...this.doc.steps,
        [stepId]: {
          state,
          at: now.toISOString(),
          ...(startedAt ? { startedAt } : {}),
          ...(detail ? { detail } : {}),
          ...(gates.length > 0 ? { gates } : {}),
        },
      },
    };
    this.write();
  }

  private write(): void {
    const dir = path.dirname(this.file);
    const tmp = path.join(dir, `.${path.basename(this.file)}.${process.pid}.tmp`);
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      fs.rmSync(tmp, { force: true });
      const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
      try {
        fs.writeFileSync(fd, `${JSON.stringify(this.doc, null, 2)}\n`);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, this.file);
      const dfd = fs.openSync(dir, fs.constants.O_RDONLY);
      try {
        fs.fsyncSync(dfd);
      } finally {
        fs.closeSync(dfd);
      }
    } catch (err) {
      fs.rmSync(tmp, { force: true });
      throw withPath(err, this.file);
    }
  }
}
