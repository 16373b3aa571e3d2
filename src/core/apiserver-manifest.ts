import { isMap, isScalar, isSeq, parseDocument } from 'yaml';

/** What a rollout needs of a control plane's kube-apiserver static pod manifest. */
export interface ApiserverManifestFacts {
  /** the image's tag, e.g. v1.20.2: the Kubernetes version the control plane runs */
  version?: string;
  /** --advertise-address: the address its serving certificate names */
  advertiseAddress?: string;
}

/**
 * Reads kube-apiserver.yaml as YAML (the kube-apiserver container, or the first one): the image
 * tag and --advertise-address. What is missing or unreadable is left out: the caller decides.
 */
export function apiserverManifestFacts(text: string): ApiserverManifestFacts {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) return {};
  const containers = doc.getIn(['spec', 'containers']);
  if (!isSeq(containers)) return {};
  const container =
    containers.items.find((c) => isMap(c) && c.get('name') === 'kube-apiserver') ?? containers.items[0];
  if (!isMap(container)) return {};
  const facts: ApiserverManifestFacts = {};
  const image = container.get('image');
  const tag = typeof image === 'string' ? /:(v\d[^@\s]*)(@.*)?$/.exec(image)?.[1] : undefined;
  if (tag) facts.version = tag;
  const command = container.get('command', true);
  for (const item of isSeq(command) ? command.items : []) {
    if (!isScalar(item) || typeof item.value !== 'string') continue;
    const m = /^--advertise-address=(.+)$/.exec(item.value);
    if (m) facts.advertiseAddress = m[1]!.trim();
  }
  return facts;
}
