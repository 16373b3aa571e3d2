import { describe, expect, expectTypeOf, it } from 'vitest';
import type { RestartStrategy } from '../../src/node/renew/restart.js';
import { runCli } from '../helpers/env.js';

// Handlers get their argv typed from their builders (src/commands/options.ts defineCommand),
// and the shared flag groups are defined once. The type assertions below are checked by
// `npm run lint` (tsc over test/): a flag whose definition changes its type fails them.

type ArgvOf<M extends { handler: (argv: never) => unknown }> = Parameters<M['handler']>[0];
type BuildArgv = ArgvOf<typeof import('../../src/commands/build.js').default>;
type AuditArgv = ArgvOf<typeof import('../../src/commands/audit.js').default>;
type PlanArgv = ArgvOf<typeof import('../../src/commands/plan.js').default>;
type RenewArgv = ArgvOf<typeof import('../../src/commands/renew.js').default>;
type CheckArgv = ArgvOf<typeof import('../../src/commands/check.js').default>;
type VersionArgv = ArgvOf<typeof import('../../src/commands/version.js').default>;

describe('argv types come from the builders', () => {
  it('global, target, validity and source flags reach the handlers typed', () => {
    expectTypeOf<BuildArgv['cacheDir']>().toEqualTypeOf<string>();
    expectTypeOf<BuildArgv['json']>().toEqualTypeOf<boolean>();
    expectTypeOf<BuildArgv['kubernetesVersion']>().toEqualTypeOf<string | undefined>();
    expectTypeOf<BuildArgv['validity']>().toEqualTypeOf<string>();
    expectTypeOf<BuildArgv['caValidity']>().toEqualTypeOf<string>();
    expectTypeOf<BuildArgv['sourceTarball']>().toEqualTypeOf<string | undefined>();
    expectTypeOf<BuildArgv['goCacheVolume']>().toEqualTypeOf<string>();
    expectTypeOf<BuildArgv['verify']>().toEqualTypeOf<boolean>();
    expectTypeOf<PlanArgv['platform']>().toEqualTypeOf<string | undefined>();
    // audit takes the source group and --go-cache-volume from their one definition
    expectTypeOf<AuditArgv['sourceDir']>().toEqualTypeOf<string | undefined>();
    expectTypeOf<AuditArgv['repo']>().toEqualTypeOf<string | undefined>();
    expectTypeOf<AuditArgv['goCacheVolume']>().toEqualTypeOf<string>();
    expectTypeOf<AuditArgv['binary']>().toEqualTypeOf<string>();
    // choices keep their literal unions; numbers with a default are numbers
    expectTypeOf<RenewArgv['restart']>().toEqualTypeOf<RestartStrategy>();
    expectTypeOf<RenewArgv['caValidity']>().toEqualTypeOf<string>();
    expectTypeOf<CheckArgv['output']>().toEqualTypeOf<
      'table' | 'json' | 'prometheus' | 'kubeadm-json' | undefined
    >();
    expectTypeOf<VersionArgv['timeout']>().toEqualTypeOf<number>();
    // a flag no builder defines is not typed as if it were one
    expectTypeOf<BuildArgv['noSuchFlag']>().toBeUnknown();
  });
});

describe('one definition of the validity flags', () => {
  // Every --validity/--ca-validity comes from validity-options.ts: the next word is the value
  // even when it starts with "-" (renew, ca and kubelet-cert used to take "-1d" for flags and
  // say "Unknown arguments: 1, d").
  const negative: Array<[string, string[]]> = [
    ['plan', ['plan', '--kubernetes-version', 'v1.20.2', '--validity', '-1d']],
    ['build', ['build', '--kubernetes-version', 'v1.20.2', '--ca-validity', '-1d']],
    ['verify', ['verify', '/nonexistent/kubeadm', '--validity', '-1d']],
    ['patch', ['patch', '/nonexistent/tree', '--validity', '-1d']],
    ['renew', ['renew', '--kubeadm', '/nonexistent/kubeadm', '--validity', '-1d']],
    ['renew --ca-validity', ['renew', '--kubeadm', '/nonexistent/kubeadm', '--ca-validity', '-1d']],
    ['ca init', ['ca', 'init', '--out', '/nonexistent/pki', '--validity', '-1d']],
    ['ca extend', ['ca', 'extend', '--pki-dir', '/nonexistent/pki', '--validity', '-1d']],
    ['kubelet-cert', ['kubelet-cert', '--node', 'n', '--pki-dir', '/nonexistent/pki', '--validity', '-1d']],
  ];
  it.each(negative)('%s refuses --validity -1d as a validity, exit 2', (_name, args) => {
    const r = runCli(args);
    expect(r.stderr).toMatch(
      /^error: invalid --(ca-)?validity "-1d": a validity must be more than zero\nnext: /,
    );
    expect(r.status).toBe(2);
  });

  it('renew refuses a validity given twice as plan does', () => {
    for (const command of [
      ['plan', '--kubernetes-version', 'v1.20.2'],
      ['renew', '--kubeadm', '/nonexistent/kubeadm'],
    ]) {
      const r = runCli([...command, '--validity', '1y', '--validity', '2y']);
      expect(r.stderr).toMatch(/^error: --validity was given 2 times\nnext: pass --validity once\n$/);
      expect(r.status).toBe(2);
    }
  });
});
