import type { BuildProvenance } from '../core/cache-manifest.js';
import {
  formatBuildDate,
  parseSourceDateEpoch,
  reproducibilityOf,
  type BuildDate,
} from '../core/reproducible.js';
import type { BuildPlan, Platform } from '../core/types.js';
import { goBuildInvocation } from '../core/go-invocation.js';
import type { SourceProvenance } from './source.js';

/**
 * The provenance of one built binary: where the source came from, the buildDate and
 * its origin, the exact `go build` arguments and environment inside the container, and what
 * the Go that built it can promise about reproducibility (measured from the binary's own build
 * info, not assumed from the plan).
 */
export function buildProvenance(b: {
  plan: BuildPlan;
  platform: Platform;
  source: SourceProvenance;
  date: BuildDate;
  /** the Go that built it, from its build info ("" when unreadable) */
  goVersion: string;
}): BuildProvenance {
  const go = goBuildInvocation(b.plan, b.platform);
  const repro = reproducibilityOf(b.goVersion || b.plan.buildGoVersion);
  const notes = [...repro.notes];
  if (b.goVersion && b.plan.buildGoVersion && b.goVersion !== b.plan.buildGoVersion) {
    notes.push(`flags were chosen for ${b.plan.buildGoVersion} but ${b.goVersion} built it`);
  }
  return {
    source: { ...b.source },
    buildDate: b.date.buildDate,
    buildDateOrigin: b.date.origin,
    ...(b.date.origin === 'SOURCE_DATE_EPOCH' ? { sourceDateEpoch: b.date.epoch } : {}),
    env: go.env,
    args: go.cmd,
    workingDir: go.workingDir,
    reproducible: repro.reproducible && notes.length === 0,
    notes,
  };
}

/** buildDate forced by SOURCE_DATE_EPOCH in the environment, or undefined when it is not set. */
export function envBuildDate(env: NodeJS.ProcessEnv): string | undefined {
  const v = env.SOURCE_DATE_EPOCH;
  return v === undefined || v.trim() === '' ? undefined : formatBuildDate(parseSourceDateEpoch(v));
}
