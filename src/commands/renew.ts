import { parseValidity } from '../core/validity.js';
import { UsageError } from '../core/errors.js';
import { ALLOW_SHORTER_DESCRIPTION } from '../core/lifetime.js';
import { nodeLayout } from '../node/renew/node.js';
import { DEFAULT_KUBELET_PKI_DIR, DEFAULT_KUBERNETES_DIR } from '../node/paths.js';
import type { RenewReport } from '../node/renew/renew.js';
import { restartStrategies, type RestartStrategy } from '../node/renew/restart.js';
import type { RollbackReport } from '../node/renew/rollback.js';
import { defineCommand, requireFlagFile } from './options.js';
import { commandSummaries } from './catalog.js';
import { runFunction } from './run.js';
import type { CommandIo } from '../core/command-io.js';
import { resolveValidities, validityOptions } from './validity-options.js';

/** What `renew` is asked: the custom kubeadm (or a backup to roll back to) and the node's layout. */
export interface RenewInput {
  /** the custom kubeadm (same version as the control plane) */
  kubeadm?: string;
  kubernetesDir: string;
  kubeletPkiDir: string;
  /** where backups are written */
  backupDir: string;
  restart: RestartStrategy;
  /** seconds the manifests stay out when crictl cannot confirm the pods stopped */
  restartWait: number;
  dryRun: boolean;
  /** restore this backup instead of renewing */
  rollback?: string;
  validity?: string;
  caValidity?: string;
  /** a kubeadm config file with the ClusterConfiguration */
  config?: string;
  /** set kube-controller-manager --cluster-signing-duration */
  kubeletSigningDuration?: string;
  kubectl: string;
  crictl: string;
  allowShorter: boolean;
}

/** The `renew --json` document: the renewal's report, or (with --rollback) the rollback's. */
export type RenewResult = RenewReport | RollbackReport;

function formatRenew(r: RenewReport): string {
  if (r.dryRun) return `dry run for kubeadm ${r.kubeadm.gitVersion} on ${r.kubernetesDir}: nothing changed`;
  const lines = [
    `renewed with kubeadm ${r.kubeadm.gitVersion} on ${r.kubernetesDir}`,
    `backup: ${r.backup ?? '-'}  (restore: kubeadm-forever renew --rollback ${r.backup ?? 'BACKUP'})`,
    `restart: ${r.restart?.detail ?? '-'}`,
    `changed (${r.changed.length}): ${r.changed.join(', ') || 'nothing'}`,
  ];
  if (r.check) lines.push(`check: ${r.check.ok ? 'ok' : 'FAILED'}: ${r.check.summary}`);
  return lines.join('\n');
}

function formatRollback(r: RollbackReport): string {
  if (r.dryRun) return `dry run: ${r.restored.length} files would be restored from ${r.backup}`;
  return [
    `restored ${r.restored.length} files from ${r.backup} (taken ${r.createdAt})`,
    `the state before the rollback: ${r.preRollbackBackup ?? '-'}`,
    `restart: ${r.restart?.detail ?? '-'}`,
  ].join('\n');
}

/** The renewal (or the rollback) for people. */
export function formatRenewResult(r: RenewResult): string {
  return 'restored' in r ? formatRollback(r) : formatRenew(r);
}

/**
 * `renew`, on a control-plane node: back up, `kubeadm certs renew all` with the custom kubeadm,
 * restart, check (a failed check is in the result, not thrown); or, with `rollback`, restore a
 * backup renew wrote.
 */
export async function runRenew(input: RenewInput, io: CommandIo): Promise<RenewResult> {
  if (input.restartWait < 0 || !Number.isFinite(input.restartWait)) {
    throw new UsageError(
      `--restart-wait ${input.restartWait} is not a number of seconds`,
      'pass --restart-wait 20 (or another count of seconds)',
    );
  }
  if (input.config !== undefined)
    requireFlagFile(
      '--config',
      input.config,
      'pass --config with the kubeadm configuration file (ClusterConfiguration), or leave it out to use the kubeadm-config ConfigMap',
    );
  if (input.rollback !== undefined)
    requireFlagFile(
      '--rollback',
      input.rollback,
      'pass the path of a kubeadm-forever-*.tar.gz that renew wrote',
    );
  const layout = nodeLayout(input.kubernetesDir, input.kubeletPkiDir);
  if (input.rollback !== undefined) {
    // the backup, restart and PKI code (tar-stream, x509) only when they run, not for `renew --help`
    const { rollback } = await import('../node/renew/rollback.js');
    return rollback({
      layout,
      backupFile: input.rollback,
      backupDir: input.backupDir,
      restart: input.restart,
      restartWaitSeconds: input.restartWait,
      crictl: input.crictl,
      dryRun: input.dryRun,
      progress: io.progress,
    });
  }
  if (!input.kubeadm)
    throw new UsageError(
      'renew needs --kubeadm PATH (or --rollback BACKUP)',
      'pass the custom kubeadm built by `kubeadm-forever build`',
    );
  const { leaf, ca } = resolveValidities(input);
  const kubeletSigningDuration =
    input.kubeletSigningDuration === undefined
      ? undefined
      : parseValidity(input.kubeletSigningDuration, '--kubelet-signing-duration');
  const [{ renew }, { checkNode }] = await Promise.all([
    import('../node/renew/renew.js'),
    import('../node/renew/post-renew-check.js'),
  ]);
  return renew({
    layout,
    kubeadm: input.kubeadm,
    backupDir: input.backupDir,
    restart: input.restart,
    restartWaitSeconds: input.restartWait,
    crictl: input.crictl,
    kubectl: input.kubectl,
    dryRun: input.dryRun,
    leaf,
    ca,
    configFile: input.config,
    kubeletSigningDuration,
    allowShorter: input.allowShorter,
    check: checkNode,
    progress: io.progress,
  });
}

const command = defineCommand({
  ...commandSummaries.renew,
  builder: (y) =>
    y
      .option('kubeadm', {
        type: 'string',
        describe: 'the custom kubeadm (same version as the control plane)',
      })
      .option('kubernetes-dir', {
        type: 'string',
        default: DEFAULT_KUBERNETES_DIR,
        describe: 'pki/, kubeconfigs and manifests/',
      })
      .option('kubelet-pki-dir', {
        type: 'string',
        default: DEFAULT_KUBELET_PKI_DIR,
        describe: 'kubelet certificates (backed up)',
      })
      .option('backup-dir', {
        type: 'string',
        default: '/var/backups/kubeadm-forever',
        describe: 'where backups are written (0600 tar.gz)',
      })
      .option('restart', {
        choices: restartStrategies,
        default: 'auto' as RestartStrategy,
        describe:
          'manifests: move the static pod manifests out and back; crictl: stop the containers; auto: crictl if it answers, else manifests',
      })
      .option('restart-wait', {
        type: 'number',
        default: 20,
        describe: 'seconds the manifests stay out when crictl cannot confirm the pods stopped',
      })
      .option('dry-run', { type: 'boolean', default: false, describe: 'print every step, change nothing' })
      .option('rollback', {
        type: 'string',
        describe: 'restore this backup (verified first) instead of renewing',
      })
      .options(
        validityOptions({
          validity: 'leaf validity the custom kubeadm issues (CA check, 1.31+ config)',
          caValidity: 'CA validity for the 1.31+ caCertificateValidityPeriod',
        }),
      )
      .option('config', {
        type: 'string',
        describe:
          'kubeadm config file with the ClusterConfiguration (instead of the kubeadm-config ConfigMap)',
      })
      .option('kubelet-signing-duration', {
        type: 'string',
        describe: 'set kube-controller-manager --cluster-signing-duration, e.g. 1752000h',
      })
      .option('kubectl', { type: 'string', default: 'kubectl', describe: 'kubectl binary (1.31+ ConfigMap)' })
      .option('crictl', { type: 'string', default: 'crictl', describe: 'crictl binary (restart)' })
      .option('allow-shorter', {
        type: 'boolean',
        default: false,
        describe: ALLOW_SHORTER_DESCRIPTION,
      }),
  handler: (argv) =>
    runFunction(argv, (io) => runRenew(argv, io), {
      human: formatRenewResult,
      exitCode: (r) => ('check' in r && r.check && !r.check.ok ? 1 : 0),
    }),
});
export default command;
