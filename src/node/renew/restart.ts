import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KfError, messageOf } from '../../core/errors.js';
import { reporter, type Progress } from '../../core/progress.js';
import { onInterrupt } from '../../adapters/interrupt.js';
import { execFile, firstLine } from './exec.js';
import { controlPlaneComponents, type NodeLayout } from './node.js';

export type RestartStrategy = 'auto' | 'manifests' | 'crictl' | 'none';
export const restartStrategies: readonly RestartStrategy[] = ['auto', 'manifests', 'crictl', 'none'];

export interface RestartOptions {
  strategy: RestartStrategy;
  /** seconds to wait with the manifests moved out when no container runtime can be asked */
  waitSeconds: number;
  /** the crictl binary ("crictl" = from PATH) */
  crictl: string;
  /** what it did, as detail lines (containers stopped, manifests moved) */
  progress?: Progress;
}

/** How renew and rollback are told to restart (their shared flags). */
export interface RestartChoice {
  restart: RestartStrategy;
  restartWaitSeconds: number;
  crictl: string;
}

/** restartControlPlane with the flags renew and rollback share. */
export function restartAsChosen(
  layout: NodeLayout,
  o: RestartChoice,
  progress: Progress,
): Promise<RestartReport> {
  return restartControlPlane(layout, {
    strategy: o.restart,
    waitSeconds: o.restartWaitSeconds,
    crictl: o.crictl,
    progress,
  });
}

export interface RestartReport {
  strategy: Exclude<RestartStrategy, 'auto'>;
  components: string[];
  detail: string;
}

/** crictl is usable when it runs and reaches a runtime (`crictl info` exits 0). */
export async function crictlAnswers(crictl: string): Promise<boolean> {
  const r = await execFile(crictl, ['info'], { timeoutMs: 10_000 });
  return r.code === 0;
}

/** `auto`: crictl when present and answering, else moving the manifests. */
export function chooseStrategy(asked: RestartStrategy, crictlOk: boolean): Exclude<RestartStrategy, 'auto'> {
  if (asked !== 'auto') return asked;
  return crictlOk ? 'crictl' : 'manifests';
}

/** The control-plane components with a static pod manifest on this node. */
export function presentComponents(layout: NodeLayout): string[] {
  return controlPlaneComponents.filter((c) => fs.existsSync(path.join(layout.manifestsDir, `${c}.yaml`)));
}

/** `crictl ps` arguments listing the running containers of one component (names are regexes). */
export function crictlPsArgs(component: string): string[] {
  return ['ps', '--quiet', '--state', 'running', '--name', `^${component}$`];
}

async function runningContainers(crictl: string, components: string[]): Promise<string[]> {
  const ids: string[] = [];
  for (const c of components) {
    const r = await execFile(crictl, crictlPsArgs(c), { timeoutMs: 15_000 });
    if (r.code !== 0)
      throw new KfError(
        `\`crictl ${crictlPsArgs(c).join(' ')}\` failed: ${firstLine(r)}`,
        'restart the control-plane pods by hand, or use --restart manifests',
      );
    ids.push(
      ...r.stdout
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean),
    );
  }
  return ids;
}

/** Stops the control-plane containers; the kubelet starts them again with the new certificates. */
async function restartWithCrictl(layout: NodeLayout, opts: RestartOptions): Promise<RestartReport> {
  const components = presentComponents(layout);
  const ids = await runningContainers(opts.crictl, components);
  for (const id of ids) {
    const r = await execFile(opts.crictl, ['stop', id], { timeoutMs: 60_000 });
    if (r.code !== 0)
      throw new KfError(
        `\`crictl stop ${id}\` failed: ${firstLine(r)}`,
        'restart the control-plane pods by hand, or use --restart manifests',
      );
    reporter(opts.progress).detail(`stopped container ${id}`);
  }
  return {
    strategy: 'crictl',
    components,
    detail: `stopped ${ids.length} container(s); the kubelet starts them again`,
  };
}

/**
 * Moves the control-plane manifests into a temp dir next to them (same filesystem, so renames
 * are atomic), waits until the kubelet has stopped the pods, and moves them back. They are moved
 * back on failure and on Ctrl-C too: a control plane without manifests stays down.
 */
async function restartWithManifests(layout: NodeLayout, opts: RestartOptions): Promise<RestartReport> {
  const components = presentComponents(layout);
  const parked = fs.mkdtempSync(path.join(layout.kubernetesDir, '.kubeadm-forever-manifests-'));
  const moved: string[] = [];
  const moveBack = () => {
    for (const name of moved.splice(0))
      fs.renameSync(path.join(parked, name), path.join(layout.manifestsDir, name));
    fs.rmSync(parked, { recursive: true, force: true });
  };
  const unregister = onInterrupt({
    doing: `putting the static pod manifests back in ${layout.manifestsDir}`,
    next: "check that the control-plane pods run again ('crictl ps'), then run 'kubeadm-forever check'",
    run: moveBack,
    failed: (err) =>
      `the static pod manifests are not all back in ${layout.manifestsDir} (${messageOf(err).split('\n')[0]}): move the files left in ${parked} there`,
  });
  let detail: string;
  try {
    for (const c of components) {
      const name = `${c}.yaml`;
      fs.renameSync(path.join(layout.manifestsDir, name), path.join(parked, name));
      moved.push(name);
    }
    reporter(opts.progress).detail(`moved ${moved.join(', ')} to ${parked}`);
    const crictlOk = await crictlAnswers(opts.crictl);
    if (crictlOk) {
      const deadline = Date.now() + Math.max(opts.waitSeconds, 120) * 1000;
      let left = await runningContainers(opts.crictl, components);
      while (left.length > 0 && Date.now() < deadline) {
        await sleep(2000);
        left = await runningContainers(opts.crictl, components);
      }
      if (left.length > 0)
        throw new KfError(
          `the control-plane containers did not stop within the wait`,
          'check the kubelet (`journalctl -u kubelet`); the manifests were moved back',
        );
      detail = 'the kubelet stopped the pods (confirmed with crictl); manifests moved back';
    } else {
      reporter(opts.progress).detail(
        `no container runtime answers crictl: waiting ${opts.waitSeconds}s for the kubelet`,
      );
      await sleep(opts.waitSeconds * 1000);
      detail = `waited ${opts.waitSeconds}s (no crictl to confirm); manifests moved back`;
    }
  } finally {
    unregister();
    moveBack();
  }
  return { strategy: 'manifests', components, detail };
}

export async function restartControlPlane(layout: NodeLayout, opts: RestartOptions): Promise<RestartReport> {
  const strategy = chooseStrategy(
    opts.strategy,
    opts.strategy === 'auto' ? await crictlAnswers(opts.crictl) : false,
  );
  if (strategy === 'none') {
    return {
      strategy,
      components: [],
      detail: 'not restarted: restart the control-plane pods yourself so they load the new certificates',
    };
  }
  return strategy === 'crictl' ? restartWithCrictl(layout, opts) : restartWithManifests(layout, opts);
}
