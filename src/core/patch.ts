import { createTwoFilesPatch } from 'diff';
import { locateTargets, type PatchOptions, type SourceFiles, type TargetSpan } from './patch-targets.js';
import type { FilePatch, TreePatch, TargetChange, Validities } from './types.js';
import { goDurationExpr } from './validity.js';

/**
 * patch (pure): rewrites the validity durations in kubeadm's source and shows the change as a
 * unified diff. Which expressions those are, and the drift errors, come from patch-targets.ts.
 * Inputs and outputs are file contents keyed by their path relative to the tree root; the adapter
 * does the I/O.
 */

interface Edit {
  start: number;
  end: number;
  text: string;
  target: string;
  line: number;
}

function editOf(span: TargetSpan, validity: Validities): Edit {
  const hours = span.role === 'leaf' ? validity.leaf.hours : validity.ca.hours;
  return {
    start: span.start,
    end: span.end,
    text: goDurationExpr(hours, span.timePackage),
    target: span.target,
    line: span.line,
  };
}

function applyEdits(src: string, edits: Edit[]): string {
  let out = src;
  for (const e of [...edits].sort((a, b) => b.start - a.start))
    out = out.slice(0, e.start) + e.text + out.slice(e.end);
  return out;
}

/** Unified diff of one file, `a/` and `b/` prefixed, no index header. */
export function unifiedDiff(file: string, before: string, after: string): string {
  if (before === after) return '';
  const diff = createTwoFilesPatch(`a/${file}`, `b/${file}`, before, after, undefined, undefined, {
    context: 3,
    headerOptions: { includeIndex: false, includeUnderline: false, includeFileHeaders: true },
  });
  // The diff package ends the ---/+++ lines with a tab before the (empty) header; git does not.
  return diff.replace(/^((?:---|\+\+\+) [^\n]*?)\t\n/gm, '$1\n');
}

/**
 * Computes the patch for a tree: every target rewritten to the wanted validity, whatever duration
 * expression stood there (so patching again, with other values, works). Throws KfError naming
 * file and target on drift (missing) or ambiguity (declared twice); nothing is written by anyone
 * in that case because the result is only returned when every target was found.
 */
export function computePatch(files: SourceFiles, validity: Validities, opts: PatchOptions = {}): TreePatch {
  const { spans, notes } = locateTargets(files, opts);
  const editsByFile = new Map<string, Edit[]>();
  for (const span of spans) {
    const edits = editsByFile.get(span.file) ?? [];
    edits.push(editOf(span, validity));
    editsByFile.set(span.file, edits);
  }
  const changed: FilePatch[] = [];
  const changes: TargetChange[] = [];
  for (const [file, edits] of editsByFile) {
    const before = files[file]!;
    const after = applyEdits(before, edits);
    for (const e of edits)
      changes.push({
        file,
        target: e.target,
        line: e.line,
        before: before.slice(e.start, e.end),
        after: e.text,
      });
    if (after !== before) {
      changed.push({
        file,
        targets: edits.filter((e) => before.slice(e.start, e.end) !== e.text).map((e) => e.target),
        before,
        after,
      });
    }
  }
  const diff = changed.map((f) => unifiedDiff(f.file, f.before, f.after)).join('');
  return { files: changed, diff, changes, notes };
}
