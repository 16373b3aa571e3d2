import { DEFAULT_CA_VALIDITY, DEFAULT_LEAF_VALIDITY } from '../core/validity.js';
import type { Validities } from '../core/types.js';

/**
 * The procedure on a control-plane node once the custom kubeadm is there, as the README's
 * air-gapped workflow gives it: the CAs first (extended with their own keys, old files backed
 * up), then `renew` (backup, `certs renew all`, restart, check), then `check`. The order matters:
 * renewed leaves must not outlive their CAs, and a bare `certs renew all` would skip the backup.
 * Commands that end a step of it print the rest, so no hint skips a step.
 */

/** The kubeadm-forever commands of the node procedure, from `from` on, one per line. */
export function nodeProcedureCommands(opts: {
  /** the custom kubeadm as the user will name it on the node */
  kubeadm: string;
  /** the validities it issues; non-default ones are passed on, so the checks agree with the binary */
  validity?: Validities;
  pkiDir?: string;
  from?: 'ca-extend' | 'renew';
}): string[] {
  const leaf = opts.validity?.leaf.text ?? DEFAULT_LEAF_VALIDITY;
  const ca = opts.validity?.ca.text ?? DEFAULT_CA_VALIDITY;
  const pkiDir = opts.pkiDir ?? '/etc/kubernetes/pki';
  const validityFlags = [
    ...(leaf !== DEFAULT_LEAF_VALIDITY ? [`--validity ${leaf}`] : []),
    ...(ca !== DEFAULT_CA_VALIDITY ? [`--ca-validity ${ca}`] : []),
  ].join(' ');
  const steps = [
    {
      step: 'ca-extend',
      line: `kubeadm-forever ca extend --pki-dir ${pkiDir}${ca !== DEFAULT_CA_VALIDITY ? ` --validity ${ca}` : ''}   (the CAs: same keys, ${ca}, old files backed up)`,
    },
    {
      step: 'renew',
      line: `kubeadm-forever renew --kubeadm ${opts.kubeadm}${validityFlags ? ` ${validityFlags}` : ''} --dry-run   (then without --dry-run: backup, certs renew all, restart)`,
    },
    {
      step: 'check',
      // 150 of 199 years: the README's figure; with other validities the default threshold
      line: `kubeadm-forever check${leaf === DEFAULT_LEAF_VALIDITY ? ' --min-years 150' : ''}`,
    },
  ];
  const start = steps.findIndex((s) => s.step === (opts.from ?? 'ca-extend'));
  return steps.slice(start).map((s, i) => `  ${i + 1}. ${s.line}`);
}
