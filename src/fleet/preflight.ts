import { createHash, X509Certificate } from 'node:crypto';
import { KfError } from '../core/errors.js';
import type { FleetNode } from '../core/inventory.js';
import { describeTarget, type SshSession } from '../adapters/openssh-client.js';

/**
 * What a node is before anything changes, read without writing anything there: its clock, its
 * kubelet version, the space where backups go and its copies of the three CA certificates.
 */

export const KUBERNETES_DIR = '/etc/kubernetes';
export const CA_FILES = ['pki/ca.crt', 'pki/etcd/ca.crt', 'pki/front-proxy-ca.crt'] as const;

/** Run as `sh -c SCRIPT kf-preflight DIR`: key=value lines, then each CA file after a marker. */
const PREFLIGHT_SCRIPT = [
  'echo "time=$(date +%s)"',
  'echo "arch=$(uname -m)"',
  'v=$(kubelet --version 2>/dev/null | head -n 1) || v=',
  'echo "kubelet=$v"',
  'echo "avail_kb=$(df -Pk "$1" 2>/dev/null | awk \'NR==2 {print $4}\')"',
  `for f in ${CA_FILES.join(' ')}; do if [ -f "$1/$f" ] && [ ! -L "$1/$f" ]; then echo "--- $f"; head -c 65536 "$1/$f"; echo; fi; done`,
].join('\n');

export interface CaCopy {
  file: string;
  subject: string;
  notAfter: string;
  /** sha256 of the public key: the same CA has the same key whatever its dates */
  keyId: string;
}

export interface NodeFacts {
  /** node clock minus this host's, seconds (rounded) */
  clockSkewSeconds: number;
  arch: string;
  /** `kubelet --version`, or undefined where there is no kubelet */
  kubeletVersion?: string;
  availableKiB?: number;
  caCopies: CaCopy[];
}

/** Public key identity of a PEM certificate. */
export function caCopy(file: string, pem: string): CaCopy {
  const cert = new X509Certificate(pem);
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  return {
    file,
    subject: cert.subject.replace(/\n/g, ', '),
    notAfter: new Date(cert.validTo).toISOString(),
    keyId: createHash('sha256').update(spki).digest('hex'),
  };
}

/** The facts of one node over its ssh session. */
export async function readNodeFacts(session: SshSession): Promise<NodeFacts> {
  const sent = Date.now();
  const r = await session.run(['sh', '-c', PREFLIGHT_SCRIPT, 'kf-preflight', KUBERNETES_DIR], {
    timeoutMs: 180_000,
    maxOutputBytes: 1024 * 1024,
  });
  const back = Date.now();
  if (r.code !== 0) {
    throw new KfError(
      `${describeTarget(session.target)}: the read-only preflight failed (exit ${r.code}): ${r.stderr.trim().split('\n').at(-1) ?? ''}`,
      'check that the node has a POSIX sh, df and head (every kubeadm node does)',
    );
  }
  const text = r.stdout.toString('utf8');
  const [head, ...sections] = text.split(/^--- /m);
  const kv = new Map(
    head!
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const),
  );
  const caCopies: CaCopy[] = [];
  for (const s of sections) {
    const nl = s.indexOf('\n');
    const file = `${KUBERNETES_DIR}/${s.slice(0, nl)}`;
    try {
      caCopies.push(caCopy(file, s.slice(nl + 1)));
    } catch {
      throw new KfError(
        `${describeTarget(session.target)}: ${file} is not a PEM certificate`,
        'restore the file from a backup before rolling out',
      );
    }
  }
  const nodeTime = Number(kv.get('time'));
  const avail = Number(kv.get('avail_kb'));
  const kubelet = kv.get('kubelet')?.trim();
  return {
    clockSkewSeconds: Number.isFinite(nodeTime) ? Math.round(nodeTime - (sent + back) / 2000) : NaN,
    arch: kv.get('arch') ?? '',
    ...(kubelet ? { kubeletVersion: kubelet } : {}),
    ...(Number.isFinite(avail) && kv.get('avail_kb') !== '' ? { availableKiB: avail } : {}),
    caCopies,
  };
}

/** Nodes with a clock further off than this are refused: certificates' NotBefore would bite. */
export const MAX_CLOCK_SKEW_SECONDS = 120;
/** Space a backup of /etc/kubernetes needs, with margin. */
export const MIN_AVAILABLE_KIB = 50 * 1024;

/**
 * Every reason the fleet is not fit for a rollout, one line each naming the node: different
 * kubelet versions, a control plane with another CA than the seed's, a worker whose ca.crt is
 * not that CA, clocks off, too little space.
 */
export function preflightProblems(
  facts: Map<string, NodeFacts>,
  nodes: readonly FleetNode[],
  seed: string,
): string[] {
  const problems: string[] = [];
  const versions = new Map<string, string[]>();
  for (const n of nodes) {
    const f = facts.get(n.name);
    if (!f) continue;
    if (f.kubeletVersion) versions.set(f.kubeletVersion, [...(versions.get(f.kubeletVersion) ?? []), n.name]);
    if (Math.abs(f.clockSkewSeconds) > MAX_CLOCK_SKEW_SECONDS)
      problems.push(
        `node ${n.name}: clock is ${f.clockSkewSeconds} s off this host's (more than ${MAX_CLOCK_SKEW_SECONDS})`,
      );
    if (f.availableKiB !== undefined && f.availableKiB < MIN_AVAILABLE_KIB)
      problems.push(`node ${n.name}: only ${f.availableKiB} KiB free under ${KUBERNETES_DIR} for backups`);
    if (!f.caCopies.some((c) => c.file.endsWith('/pki/ca.crt')))
      problems.push(`node ${n.name}: no ${KUBERNETES_DIR}/pki/ca.crt`);
  }
  if (versions.size > 1) {
    problems.push(
      `nodes run different kubelet versions: ${[...versions].map(([v, ns]) => `${ns.join(', ')}: ${v}`).join('; ')}`,
    );
  }
  const seedFacts = facts.get(seed);
  if (seedFacts) {
    for (const n of nodes) {
      const f = facts.get(n.name);
      if (!f || n.name === seed) continue;
      for (const c of f.caCopies) {
        const rel = c.file.slice(KUBERNETES_DIR.length + 1);
        const mine = seedFacts.caCopies.find((s) => s.file === c.file);
        if (!mine) {
          if (n.role === 'control-plane') problems.push(`node ${n.name}: has ${rel}, ${seed} does not`);
          continue;
        }
        if (mine.keyId !== c.keyId || mine.subject !== c.subject)
          problems.push(`node ${n.name}: ${rel} is another CA than on ${seed} (${c.subject})`);
      }
      if (n.role === 'control-plane') {
        for (const s of seedFacts.caCopies) {
          if (!f.caCopies.some((c) => c.file === s.file))
            problems.push(`node ${n.name}: no ${s.file.slice(KUBERNETES_DIR.length + 1)}, which ${seed} has`);
        }
      }
    }
  }
  return problems;
}
