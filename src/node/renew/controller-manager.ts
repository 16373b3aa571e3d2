import { isMap, isScalar, isSeq, parseDocument } from 'yaml';
import { appendSeqItem, replaceScalar } from './yaml-edit.js';
import { KfError } from '../../core/errors.js';

export const signingFlag = '--cluster-signing-duration';

export interface SigningChange {
  text: string;
  /** the flag's previous value, undefined when it was not set */
  before: string | undefined;
  changed: boolean;
}

/**
 * Sets `--cluster-signing-duration=<duration>` in the kube-controller-manager static pod
 * manifest (the lifetime of kubelet client certificates signed from CSRs). Only that one item of
 * the command list changes; every other byte of the file is kept.
 */
export function setClusterSigningDuration(manifest: string, duration: string): SigningChange {
  const doc = parseDocument(manifest);
  const fail = (why: string) =>
    new KfError(
      `cannot set ${signingFlag} in kube-controller-manager.yaml: ${why}`,
      'edit the manifest by hand or leave out --kubelet-signing-duration',
    );
  if (doc.errors.length > 0) throw fail(doc.errors[0]!.message.split('\n')[0]!);
  const containers = doc.getIn(['spec', 'containers']);
  if (!isSeq(containers)) throw fail('no spec.containers');
  const container =
    containers.items.find((c) => isMap(c) && c.get('name') === 'kube-controller-manager') ??
    containers.items[0];
  if (!isMap(container)) throw fail('no container');
  const command = container.get('command', true);
  if (!isSeq(command)) throw fail('the container has no command list');
  const wanted = `${signingFlag}=${duration}`;
  for (const item of command.items) {
    if (!isScalar(item) || typeof item.value !== 'string') continue;
    if (item.value === signingFlag || item.value.startsWith(`${signingFlag}=`)) {
      const before = item.value.slice(signingFlag.length + 1) || undefined;
      if (item.value === wanted) return { text: manifest, before, changed: false };
      return { text: replaceScalar(manifest, item, wanted), before, changed: true };
    }
  }
  try {
    return { text: appendSeqItem(manifest, command, wanted), before: undefined, changed: true };
  } catch (err) {
    throw fail(err instanceof Error ? err.message : String(err));
  }
}
