import fs from 'node:fs';
import path from 'node:path';
import { KfError } from '../../core/errors.js';
import { readBoundedText } from '../../adapters/bounded-read.js';
import { reporter, type Progress } from '../../core/progress.js';
import { DEFAULT_KUBERNETES_DIR } from '../paths.js';
import { changedFiles, snapshot, writeBackup, type Snapshot } from './backup.js';
import {
  fixConfigFile,
  fixConfigMap,
  Kubectl,
  needsConfigFix,
  unifiedDiff,
  upgradeAdvice,
  type ValidityFix,
} from './cluster-config.js';
import { setClusterSigningDuration } from './controller-manager.js';
import { certsRenewArgs, runCertsRenew } from './kubeadm.js';
import type { NodeLayout } from './node.js';
import { preflight, type PreflightResult } from './preflight.js';
import {
  describeRecovery,
  recoverInterrupted,
  recoveryWarnings,
  replaceFiles,
  type StagedFile,
} from '../../adapters/file-transaction.js';
import { restartAsChosen, type RestartReport, type RestartStrategy } from './restart.js';
import type { NodeCheck, NodeChecker } from './post-renew-check.js';

/** The options with their progress made complete, as renew's steps get them. */
type Ready = RenewOptions & { progress: Required<Progress> };

export interface Hours {
  hours: number;
  text: string;
}

export interface RenewOptions {
  layout: NodeLayout;
  kubeadm: string;
  backupDir: string;
  restart: RestartStrategy;
  restartWaitSeconds: number;
  crictl: string;
  kubectl: string;
  dryRun: boolean;
  leaf: Hours;
  ca: Hours;
  /** a kubeadm config file with the ClusterConfiguration (instead of the ConfigMap) */
  configFile?: string;
  kubeletSigningDuration?: Hours;
  /** renew even when the CAs end before the new leaves, or a leaf would end earlier (core/lifetime) */
  allowShorter?: boolean;
  check: NodeChecker;
  /** what renew reports as it goes: Output in the CLI, a collector in tests */
  progress: Progress;
}

export interface ConfigChange {
  source: 'configmap' | 'file';
  /** the file, or "kube-system/kubeadm-config" */
  name: string;
  fixes: ValidityFix[];
  diff: string;
  note?: string;
}

export interface RenewReport {
  dryRun: boolean;
  kubeadm: { path: string; gitVersion: string };
  kubernetesDir: string;
  backup?: string;
  commands: string[][];
  config?: ConfigChange;
  kubeletSigning?: { file: string; before: string | undefined; after: string; diff: string };
  restart?: RestartReport;
  changed: string[];
  check?: NodeCheck;
  warnings: string[];
  advice: string[];
}

/**
 * kubeadm writes kubeconfigs to /etc/kubernetes whatever --cert-dir says, so a renewal of
 * another directory would renew the real node's kubeconfigs. Same directory = same device and
 * inode (a bind mount of it counts).
 */
export function isEtcKubernetes(dir: string): boolean {
  try {
    const a = fs.statSync(dir);
    const b = fs.statSync(DEFAULT_KUBERNETES_DIR);
    return a.dev === b.dev && a.ino === b.ino;
  } catch {
    return false;
  }
}

/** A file renew itself rewrites, with its mode kept. */
function rewrite(file: string, text: string): StagedFile {
  return { file, data: text, mode: fs.statSync(file).mode & 0o7777 };
}

interface PlannedConfig {
  change: ConfigChange;
  /** the ConfigMap replacement (an API call, after the files) */
  apply?: () => Promise<void>;
  /** the config file rewrite (in the same transaction as renew's other files) and its original */
  write?: StagedFile;
  unwrite?: StagedFile;
  original: { name: string; text: string };
}

/** 1.31+: where the ClusterConfiguration's validity fields are short, plan to set them. */
async function planConfig(o: Ready, pre: PreflightResult): Promise<PlannedConfig | undefined> {
  if (!needsConfigFix(pre.kubeadm)) return undefined;
  const asked = { certificateValidityPeriod: o.leaf.hours, caCertificateValidityPeriod: o.ca.hours };
  if (o.configFile) {
    const file = path.resolve(o.configFile);
    if (!fs.existsSync(file))
      throw new KfError(
        `config file ${file} does not exist`,
        'pass --config with a kubeadm configuration file',
      );
    const before = readBoundedText(file, 'config');
    const fixed = fixConfigFile(before, asked);
    return {
      change: {
        source: 'file',
        name: file,
        fixes: fixed.fixes,
        diff: unifiedDiff(path.basename(file), before, fixed.text),
        note: fixed.note,
      },
      write: fixed.fixes.length > 0 ? rewrite(file, fixed.text) : undefined,
      unwrite: rewrite(file, before),
      original: { name: 'config-file.yaml', text: before },
    };
  }
  const kubectl = new Kubectl(o.kubectl, path.join(o.layout.kubernetesDir, 'admin.conf'));
  const before = await kubectl.getKubeadmConfig();
  const fixed = fixConfigMap(before, asked);
  return {
    change: {
      source: 'configmap',
      name: 'kube-system/kubeadm-config',
      fixes: fixed.fixes,
      diff: unifiedDiff('ClusterConfiguration', fixed.clusterConfigurationBefore, fixed.clusterConfiguration),
      note: fixed.note,
    },
    apply: async () => {
      if (fixed.fixes.length > 0) await kubectl.replaceConfigMap(fixed.text);
    },
    original: { name: 'kubeadm-config.yaml', text: before },
  };
}

/** The preflight, refused off /etc/kubernetes unless a dry run; its findings told as they are. */
async function checkBeforeRenew(o: Ready): Promise<{ pre: PreflightResult; warnings: string[] }> {
  const { layout, progress } = o;
  progress.step('preflight: kubeadm binary, control-plane versions, PKI files, CA lifetimes');
  const onEtc = isEtcKubernetes(layout.kubernetesDir);
  if (!onEtc && !o.dryRun) {
    throw new KfError(
      `kubeadm renews the kubeconfigs in /etc/kubernetes only, but --kubernetes-dir is ${layout.kubernetesDir}`,
      'run renew on the control-plane node with the default --kubernetes-dir (or bind-mount the directory on /etc/kubernetes)',
    );
  }
  const pre = await preflight(layout, {
    kubeadm: o.kubeadm,
    leafHours: o.leaf.hours,
    leafText: o.leaf.text,
    allowShorter: o.allowShorter,
  });
  const warnings = [...pre.warnings];
  if (!onEtc)
    warnings.push(`${layout.kubernetesDir} is not /etc/kubernetes: a real renewal would be refused`);
  for (const w of pre.warnings) progress.warn(w);
  progress.info(
    `kubeadm ${pre.kubeadm.gitVersion} matches the control plane (${
      pre.images
        .filter((i) => i.component !== 'etcd')
        .map((i) => i.image)
        .join(', ') || 'no images found'
    })`,
  );
  return { pre, warnings };
}

function tellConfigPlan(planned: PlannedConfig | undefined, progress: Required<Progress>): void {
  if (!planned) return;
  const c = planned.change;
  if (c.fixes.length === 0)
    progress.info(`${c.name}: validity fields already long enough${c.note ? ` (${c.note})` : ''}`);
  else
    progress.info(
      `${c.name}: ${c.fixes.map((f) => `${f.field} ${f.before ?? '(unset)'} -> ${f.after}`).join(', ')}\n${c.diff}`,
    );
}

interface PlannedSigning {
  report: NonNullable<RenewReport['kubeletSigning']>;
  /** the manifest as it is, and as it is to be written (undefined: already set) */
  before: string;
  text?: string;
}

/** --kubelet-signing-duration: the controller-manager manifest's new --cluster-signing-duration. */
function planSigning(o: Ready): PlannedSigning | undefined {
  if (!o.kubeletSigningDuration) return undefined;
  const file = path.join(o.layout.manifestsDir, 'kube-controller-manager.yaml');
  if (!fs.existsSync(file))
    throw new KfError(
      `no ${file} to set --cluster-signing-duration in`,
      'leave out --kubelet-signing-duration on nodes without kube-controller-manager',
    );
  const before = readBoundedText(file, 'manifest');
  const after = `${o.kubeletSigningDuration.hours}h`;
  const change = setClusterSigningDuration(before, after);
  const report = {
    file,
    before: change.before,
    after,
    diff: unifiedDiff('kube-controller-manager.yaml', before, change.text),
  };
  if (change.changed) {
    o.progress.info(
      `kube-controller-manager --cluster-signing-duration ${change.before ?? '(default 8760h)'} -> ${after}\n${report.diff}`,
    );
    return { report, before, text: change.text };
  }
  o.progress.info(`kube-controller-manager already has --cluster-signing-duration=${after}`);
  return { report, before };
}

function dryRunSummary(
  o: RenewOptions,
  command: string[],
  planned: PlannedConfig | undefined,
  signing: PlannedSigning | undefined,
): string {
  const { layout } = o;
  return [
    'dry run: nothing changed. renew would:',
    `  1. back up ${layout.kubernetesDir} and ${layout.kubeletPkiDir} to ${o.backupDir}/kubeadm-forever-renew-<time>.tar.gz (0600)`,
    ...(planned && planned.change.fixes.length > 0
      ? [`  -. set the validity fields of ${planned.change.name} (diff above)`]
      : []),
    ...(signing?.text
      ? ['  -. set --cluster-signing-duration in kube-controller-manager.yaml (diff above)']
      : []),
    `  2. run: ${command.join(' ')}`,
    `  3. restart the control plane (--restart ${o.restart})`,
    '  4. check the renewed certificates',
  ].join('\n');
}

/**
 * renew's own changes before kubeadm runs: the config file and the controller-manager manifest
 * in one transaction, then the ConfigMap; a ConfigMap that cannot be replaced puts the files back.
 */
async function applyOwnChanges(
  o: Ready,
  planned: PlannedConfig | undefined,
  signing: PlannedSigning | undefined,
  backupFile: string,
): Promise<void> {
  const { progress } = o;
  const files: StagedFile[] = [];
  const originals: StagedFile[] = [];
  if (planned?.write && planned.unwrite) {
    files.push(planned.write);
    originals.push(planned.unwrite);
  }
  if (signing?.text !== undefined) {
    files.push(rewrite(signing.report.file, signing.text));
    originals.push(rewrite(signing.report.file, signing.before));
  }
  if (files.length > 0) {
    progress.step(`writing ${files.map((f) => path.basename(f.file)).join(', ')}`);
    const recovered = recoverInterrupted(files.map((f) => path.dirname(f.file)));
    for (const line of describeRecovery(recovered)) progress.info(line);
    for (const w of recoveryWarnings(recovered)) progress.info(`warning: ${w}`);
    replaceFiles(files, { backupDir: backupFile });
  }
  if (planned?.apply && planned.change.fixes.length > 0) {
    progress.step(`setting the validity fields of ${planned.change.name}`);
    try {
      await planned.apply();
    } catch (err) {
      // the ConfigMap was not replaced: put the files back so that nothing changed
      if (originals.length > 0) replaceFiles(originals, { backupDir: backupFile });
      throw err;
    }
  }
}

export async function renew(given: RenewOptions): Promise<RenewReport> {
  // every step below reports through the one complete reporter (absent members: no-ops)
  const o: Ready = { ...given, progress: reporter(given.progress) };
  const { layout, progress } = o;
  const { pre, warnings } = await checkBeforeRenew(o);
  const planned = await planConfig(o, pre);
  const advice = planned ? upgradeAdvice(pre.kubeadm.gitVersion) : [];
  tellConfigPlan(planned, progress);
  const signing = planSigning(o);

  const configArg = o.configFile ? path.resolve(o.configFile) : undefined;
  const renewArgs = certsRenewArgs(pre.kubeadm, { pkiDir: layout.pkiDir, configFile: configArg });
  const report: RenewReport = {
    dryRun: o.dryRun,
    kubeadm: { path: pre.kubeadm.path, gitVersion: pre.kubeadm.gitVersion },
    kubernetesDir: layout.kubernetesDir,
    commands: [[pre.kubeadm.path, ...renewArgs]],
    config: planned?.change,
    kubeletSigning: signing?.report,
    changed: [],
    warnings,
    advice,
  };

  if (o.dryRun) {
    progress.info(dryRunSummary(o, [pre.kubeadm.path, ...renewArgs], planned, signing));
    for (const a of advice) progress.info(a);
    return report;
  }

  progress.step(`backing up ${layout.kubernetesDir} and ${layout.kubeletPkiDir}`);
  const roots = { kubernetes: layout.kubernetesDir, 'kubelet-pki': layout.kubeletPkiDir };
  const before: Snapshot = snapshot(roots, [o.backupDir]);
  const extra = planned ? { [planned.original.name]: planned.original.text } : undefined;
  const recovered = recoverInterrupted([o.backupDir]); // a killed run's half archive
  for (const line of describeRecovery(recovered)) progress.info(line);
  for (const w of recoveryWarnings(recovered)) progress.info(`warning: ${w}`);
  const backup = await writeBackup({ backupDir: o.backupDir, purpose: 'renew', roots, snap: before, extra });
  report.backup = backup.file;
  progress.info(`backup: ${backup.file}`);

  await applyOwnChanges(o, planned, signing, backup.file);

  progress.step(`kubeadm ${renewArgs.join(' ')}`);
  await runCertsRenew(pre.kubeadm, renewArgs, (line) => progress.info(`  kubeadm: ${line}`));

  progress.step(`restarting the control plane (${o.restart})`);
  report.restart = await restartAsChosen(layout, o, progress);
  progress.info(`restart: ${report.restart.detail}`);

  report.changed = changedFiles(before, snapshot(roots, [o.backupDir]));
  progress.step('checking the renewed certificates');
  report.check = await o.check(layout, o.leaf);
  progress.info(report.check.table);
  for (const p of report.check.otherProblems) progress.warn(`check: ${p}`);
  for (const a of advice) progress.info(a);
  return report;
}
