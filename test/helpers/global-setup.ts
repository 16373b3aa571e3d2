import { execFileSync } from 'node:child_process';

// Source volumes (one per built source, kubeadm-forever.source label) made during the run are
// removed at its end, so repeated test runs do not pile up volumes on the engine. Volumes that
// existed before the run are left alone.

const LABEL = 'label=kubeadm-forever.source';

function sourceVolumes(): string[] | undefined {
  try {
    return execFileSync('docker', ['volume', 'ls', '-q', '--filter', LABEL], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n')
      .filter(Boolean);
  } catch {
    // no engine: the tests that need one say so themselves
    return undefined;
  }
}

export default function setup(): () => void {
  const before = new Set(sourceVolumes() ?? []);
  return () => {
    const made = (sourceVolumes() ?? []).filter((v) => !before.has(v));
    if (made.length > 0) {
      try {
        execFileSync('docker', ['volume', 'rm', ...made], { stdio: 'ignore' });
      } catch {
        /* a volume still in use: left for `docker volume prune` */
      }
    }
  };
}
