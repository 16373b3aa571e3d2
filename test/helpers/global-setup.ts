import { execFileSync } from 'node:child_process';
import { sourceVolumes } from './source-volumes.js';

// Source volumes (one per built source, kubeadm-forever.source label) made during the run are
// removed at its end, so repeated test runs do not pile up volumes on the engine. Volumes that
// existed before the run are left alone.

function sourceVolumeNames(): string[] | undefined {
  try {
    return sourceVolumes().map((v) => v.name);
  } catch {
    // no engine: the tests that need one say so themselves
    return undefined;
  }
}

export default function setup(): () => void {
  const before = new Set(sourceVolumeNames() ?? []);
  return () => {
    const made = (sourceVolumeNames() ?? []).filter((v) => !before.has(v));
    if (made.length > 0) {
      try {
        execFileSync('docker', ['volume', 'rm', ...made], { stdio: 'ignore' });
      } catch {
        /* a volume still in use: left for `docker volume prune` */
      }
    }
  };
}
