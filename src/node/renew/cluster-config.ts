import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isMap, parseAllDocuments, parseDocument, type Document } from 'yaml';
import { goDurationString } from '../../core/validity.js';
import { unifiedDiff } from '../../core/patch.js';
import { KfError } from '../../core/errors.js';
import { setTopLevelScalar } from './yaml-edit.js';
import { execFile, firstLine } from './exec.js';

/**
 * Kubernetes 1.31+: `certs renew` and `upgrade` take NotAfter from ClusterConfiguration
 * (v1beta4 certificateValidityPeriod / caCertificateValidityPeriod), which clusters made by a
 * stock kubeadm store as 8760h0m0s / 87600h0m0s. A patched constant alone then changes nothing.
 */
export const validityFields = ['certificateValidityPeriod', 'caCertificateValidityPeriod'] as const;
export type ValidityField = (typeof validityFields)[number];

/** The first version whose ClusterConfiguration carries the validity fields. */
export function needsConfigFix(k: { major: number; minor: number }): boolean {
  return k.major > 1 || k.minor >= 31;
}

/** Hours of a Go duration string ("8760h0m0s", "87600h", "1h30m"); undefined if not one. */
export function goDurationHours(text: string): number | undefined {
  const t = text.trim();
  if (!/^(\d+(\.\d+)?(h|m|s|ms|us|µs|ns))+$/.test(t)) return undefined;
  const unit: Record<string, number> = {
    h: 1,
    m: 1 / 60,
    s: 1 / 3600,
    ms: 1 / 3.6e6,
    us: 1 / 3.6e9,
    µs: 1 / 3.6e9,
    ns: 1 / 3.6e12,
  };
  let hours = 0;
  for (const m of t.matchAll(/(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)/g))
    hours += Number(m[1]) * (unit[m[2]!] ?? 0);
  return hours;
}

export interface ValidityFix {
  field: ValidityField;
  /** the value found, undefined when the field was absent */
  before: string | undefined;
  after: string;
}

export interface ConfigFixResult {
  /** the ClusterConfiguration text, unchanged where nothing was short */
  text: string;
  fixes: ValidityFix[];
  /** why nothing could be set, e.g. an older apiVersion without the fields */
  note?: string;
}

function fixDocument(
  source: string,
  doc: Document,
  asked: Record<ValidityField, number>,
): { text: string; fixes: ValidityFix[] } {
  const fixes: ValidityFix[] = [];
  let text = source;
  for (const field of validityFields) {
    const value = doc.get(field);
    const current = typeof value === 'string' ? value : undefined;
    const hours = current === undefined ? undefined : goDurationHours(current);
    if (hours === undefined || hours < asked[field]) {
      const after = goDurationString(asked[field]);
      // each edit shifts offsets: re-parse the edited text before the next one
      text = setTopLevelScalar(text, parseDocument(text), field, after);
      fixes.push({ field, before: current as string | undefined, after });
    }
  }
  return { text, fixes };
}

/**
 * Sets the two validity fields where they are shorter than asked (or absent), in a
 * ClusterConfiguration YAML document; the rest of the text is kept as it is.
 */
export function fixClusterConfiguration(text: string, asked: Record<ValidityField, number>): ConfigFixResult {
  const doc = parseDocument(text);
  if (doc.errors.length > 0 || !isMap(doc.contents)) {
    throw new KfError(
      `the ClusterConfiguration is not valid YAML: ${doc.errors[0]?.message.split('\n')[0] ?? 'not a mapping'}`,
      'fix the file or the kubeadm-config ConfigMap',
    );
  }
  if (doc.get('kind') !== 'ClusterConfiguration') {
    throw new KfError(
      `expected kind ClusterConfiguration, found ${String(doc.get('kind'))}`,
      'pass --config with a kubeadm configuration file that has a ClusterConfiguration',
    );
  }
  const apiVersion = String(doc.get('apiVersion') ?? '');
  const m = /^kubeadm\.k8s\.io\/v1beta(\d+)$/.exec(apiVersion);
  if (m && Number(m[1]) < 4) {
    return {
      text,
      fixes: [],
      note: `${apiVersion} has no validity fields: kubeadm fills them from its (patched) constants`,
    };
  }
  return fixDocument(text, doc, asked);
}

/** The same for a multi-document kubeadm config file: only the ClusterConfiguration document changes. */
export function fixConfigFile(text: string, asked: Record<ValidityField, number>): ConfigFixResult {
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs))
    throw new KfError('the config file is empty', 'pass --config with a kubeadm configuration file');
  const index = docs.findIndex((d) => isMap(d.contents) && d.get('kind') === 'ClusterConfiguration');
  if (index < 0) {
    throw new KfError(
      'the config file has no ClusterConfiguration document',
      'add one (kind: ClusterConfiguration, apiVersion: kubeadm.k8s.io/v1beta4) or read it from the cluster by leaving out --config',
    );
  }
  const [start, , end] = docs[index]!.range;
  const one = fixClusterConfiguration(text.slice(start, end), asked);
  if (one.fixes.length === 0) return { ...one, text };
  return { text: text.slice(0, start) + one.text + text.slice(end), fixes: one.fixes };
}

/** The kubeadm-config ConfigMap (as `kubectl get -o yaml` prints it) with its ClusterConfiguration fixed. */
export function fixConfigMap(
  cmYaml: string,
  asked: Record<ValidityField, number>,
): ConfigFixResult & { clusterConfigurationBefore: string; clusterConfiguration: string } {
  const cm = parseDocument(cmYaml);
  const inner = cm.getIn(['data', 'ClusterConfiguration']);
  if (typeof inner !== 'string') {
    throw new KfError(
      'the kubeadm-config ConfigMap has no data.ClusterConfiguration',
      'pass --config with the ClusterConfiguration of this cluster',
    );
  }
  const one = fixClusterConfiguration(inner, asked);
  if (one.fixes.length === 0)
    return { ...one, text: cmYaml, clusterConfigurationBefore: inner, clusterConfiguration: inner };
  cm.setIn(['data', 'ClusterConfiguration'], one.text);
  return {
    text: cm.toString({ lineWidth: 0 }),
    fixes: one.fixes,
    clusterConfigurationBefore: inner,
    clusterConfiguration: one.text,
  };
}

export { unifiedDiff };

/** kubectl with the node's admin.conf, argument arrays only. */
export class Kubectl {
  constructor(
    private readonly kubectl: string,
    private readonly adminConf: string,
  ) {}

  async getKubeadmConfig(): Promise<string> {
    const args = [
      '--kubeconfig',
      this.adminConf,
      '-n',
      'kube-system',
      'get',
      'configmap',
      'kubeadm-config',
      '-o',
      'yaml',
    ];
    const r = await execFile(this.kubectl, args, { timeoutMs: 60_000 });
    if (r.code !== 0) {
      throw new KfError(
        `cannot read the kubeadm-config ConfigMap (\`kubectl ${args.join(' ')}\`): ${firstLine(r)}`,
        'make the API server reachable with admin.conf, or pass --config FILE with the ClusterConfiguration',
      );
    }
    return r.stdout;
  }

  /** `replace` keeps the resourceVersion: a ConfigMap changed meanwhile is refused, not overwritten. */
  async replaceConfigMap(yamlText: string): Promise<void> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kubeadm-forever-cm-'));
    const file = path.join(dir, 'kubeadm-config.yaml');
    try {
      fs.writeFileSync(file, yamlText, { mode: 0o600 });
      const args = ['--kubeconfig', this.adminConf, '-n', 'kube-system', 'replace', '-f', file];
      const r = await execFile(this.kubectl, args, { timeoutMs: 60_000 });
      if (r.code !== 0) {
        throw new KfError(
          `cannot update the kubeadm-config ConfigMap: ${firstLine(r)}`,
          'nothing else was changed yet; fix access with admin.conf and run renew again',
        );
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}

export function upgradeAdvice(gitVersion: string): string[] {
  return [
    `Kubernetes ${gitVersion} reads certificate lifetimes from ClusterConfiguration: keep the long values there.`,
    'On upgrades, do not let kubeadm renew with its own lifetimes: `kubeadm upgrade apply vX.Y.Z --certificate-renewal=false`',
    '(and `kubeadm upgrade node --certificate-renewal=false` on the other nodes), then run `kubeadm-forever renew` with the custom kubeadm of the new version.',
  ];
}
