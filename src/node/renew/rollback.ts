import { replaceFiles, type StagedEntry } from '../../adapters/file-transaction.js';
import { checkRestore, readBackup, restoreRoot, snapshot, writeBackup } from './backup.js';
import type { NodeLayout } from './node.js';
import { reporter, type Progress } from '../../core/progress.js';
import { restartAsChosen, type RestartReport, type RestartStrategy } from './restart.js';

export interface RollbackOptions {
  layout: NodeLayout;
  backupFile: string;
  backupDir: string;
  restart: RestartStrategy;
  restartWaitSeconds: number;
  crictl: string;
  dryRun: boolean;
  progress: Progress;
}

export interface RollbackReport {
  dryRun: boolean;
  backup: string;
  createdAt: string;
  /** the backup of the state just before the rollback (a rollback can be rolled back) */
  preRollbackBackup?: string;
  restored: string[];
  restart?: RestartReport;
  notes: string[];
}

/** Restores a renew backup after verifying every file in it; the current state is backed up first. */
export async function rollback(o: RollbackOptions): Promise<RollbackReport> {
  const { layout } = o;
  const progress = reporter(o.progress);
  progress.step(`verifying ${o.backupFile}`);
  const backup = await readBackup(o.backupFile);
  const files = backup.manifest.entries.filter((e) => e.type !== 'dir' && !e.path.startsWith('extra/'));
  progress.info(
    `backup of ${backup.manifest.createdAt} verified: ${files.length} files and links, every sha256 matches`,
  );
  const targets: Record<string, string> = {
    kubernetes: layout.kubernetesDir,
    'kubelet-pki': layout.kubeletPkiDir,
  };
  const notes: string[] = [];
  for (const [root, dir] of Object.entries(backup.manifest.roots)) {
    if (targets[root] !== undefined && targets[root] !== dir)
      notes.push(`${root} was taken from ${dir}; restoring to ${targets[root]}`);
  }
  if (backup.contents.has('extra/kubeadm-config.yaml')) {
    notes.push(
      'the kubeadm-config ConfigMap is not rolled back (longer validity fields are harmless); its old YAML is extra/kubeadm-config.yaml in the backup',
    );
  }
  if (backup.contents.has('extra/config-file.yaml')) {
    notes.push(
      'the --config file is not rolled back; its old content is extra/config-file.yaml in the backup',
    );
  }
  for (const n of notes) progress.info(n);
  const report: RollbackReport = {
    dryRun: o.dryRun,
    backup: backup.file,
    createdAt: backup.manifest.createdAt,
    restored: [],
    notes,
  };
  // a root that did not exist when the backup was taken has no entry and is not created now
  const roots = Object.keys(backup.manifest.roots).filter(
    (r) => targets[r] !== undefined && backup.manifest.entries.some((e) => e.path === r),
  );
  // no link on the way, none leaving the target: checked for every root before anything is written
  for (const r of roots) checkRestore(backup, r, targets[r]!);
  if (o.dryRun) {
    report.restored = files.filter((e) => roots.some((r) => e.path.startsWith(`${r}/`))).map((e) => e.path);
    progress.info(
      `dry run: would restore ${report.restored.length} files into ${roots.map((r) => targets[r]).join(' and ')}, then restart (--restart ${o.restart})`,
    );
    return report;
  }

  progress.step('backing up the current state before the rollback');
  const current = Object.fromEntries(roots.map((r) => [r, targets[r]!]));
  const pre = await writeBackup({
    backupDir: o.backupDir,
    purpose: 'pre-rollback',
    roots: current,
    snap: snapshot(current, [o.backupDir]),
  });
  report.preRollbackBackup = pre.file;
  progress.info(`backup of the current state: ${pre.file}`);

  progress.step('restoring');
  // every file of every root in one transaction: a failure puts back what was swapped, and a
  // failed put-back names each file's state and the pre-rollback backup
  const staged: StagedEntry[] = [];
  for (const r of roots) {
    const root = restoreRoot(backup, r, targets[r]!);
    staged.push(...root.staged);
    report.restored.push(...root.restored);
  }
  replaceFiles(staged, { backupDir: pre.file });
  progress.step(`restarting the control plane (${o.restart})`);
  report.restart = await restartAsChosen(layout, o, progress);
  return report;
}
