import { describe, expectTypeOf, it } from 'vitest';
import type { RestartStrategy } from '../../src/node/renew/restart.js';

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
