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
import { runCommand } from './run.js';
import { resolveValidities, validityOptions } from './validity-options.js';

function humanRenew(r: RenewReport): string {
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

function humanRollback(r: RollbackReport): string {
  if (r.dryRun) return `dry run: ${r.restored.length} files would be restored from ${r.backup}`;
  return [
    `restored ${r.restored.length} files from ${r.backup} (taken ${r.createdAt})`,
    `the state before the rollback: ${r.preRollbackBackup ?? '-'}`,
    `restart: ${r.restart?.detail ?? '-'}`,
  ].join('\n');
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
    runCommand(argv, async (a, out) => {
      if (a.restartWait < 0 || !Number.isFinite(a.restartWait)) {
        throw new UsageError(
          `--restart-wait ${a.restartWait} is not a number of seconds`,
          'pass --restart-wait 20 (or another count of seconds)',
        );
      }
      if (a.config !== undefined)
        requireFlagFile(
          '--config',
          a.config,
          'pass --config with the kubeadm configuration file (ClusterConfiguration), or leave it out to use the kubeadm-config ConfigMap',
        );
      if (a.rollback !== undefined)
        requireFlagFile(
          '--rollback',
          a.rollback,
          'pass the path of a kubeadm-forever-*.tar.gz that renew wrote',
        );
      const layout = nodeLayout(a.kubernetesDir, a.kubeletPkiDir);
      if (a.rollback !== undefined) {
        // the backup, restart and PKI code (tar-stream, x509) only when they run, not for `renew --help`
        const { rollback } = await import('../node/renew/rollback.js');
        const r = await rollback({
          layout,
          backupFile: a.rollback,
          backupDir: a.backupDir,
          restart: a.restart,
          restartWaitSeconds: a.restartWait,
          crictl: a.crictl,
          dryRun: a.dryRun,
          progress: out,
        });
        out.result(r, humanRollback(r));
        return 0;
      }
      if (!a.kubeadm)
        throw new UsageError(
          'renew needs --kubeadm PATH (or --rollback BACKUP)',
          'pass the custom kubeadm built by `kubeadm-forever build`',
        );
      const { leaf, ca } = resolveValidities(a);
      const kubeletSigningDuration =
        a.kubeletSigningDuration === undefined
          ? undefined
          : parseValidity(a.kubeletSigningDuration, '--kubelet-signing-duration');
      const [{ renew }, { checkNode }] = await Promise.all([
        import('../node/renew/renew.js'),
        import('../node/renew/check.js'),
      ]);
      const r = await renew({
        layout,
        kubeadm: a.kubeadm,
        backupDir: a.backupDir,
        restart: a.restart,
        restartWaitSeconds: a.restartWait,
        crictl: a.crictl,
        kubectl: a.kubectl,
        dryRun: a.dryRun,
        leaf,
        ca,
        configFile: a.config,
        kubeletSigningDuration,
        allowShorter: a.allowShorter,
        check: checkNode,
        progress: out,
      });
      out.result(r, humanRenew(r));
      return r.check && !r.check.ok ? 1 : 0;
    }),
});
export default command;
