import { execFileSync } from 'node:child_process';

/** The tool's source volumes on the engine (label kubeadm-forever.source), with the source each holds. */
export function sourceVolumes(): Array<{ name: string; source: string }> {
  const out = execFileSync(
    'docker',
    [
      'volume',
      'ls',
      '--filter',
      'label=kubeadm-forever.source',
      '--format',
      '{{.Name}}\t{{.Label "kubeadm-forever.source"}}',
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return out
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [name = '', source = ''] = line.split('\t');
      return { name, source };
    });
}
