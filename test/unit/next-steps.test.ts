import { describe, expect, it } from 'vitest';
import { nodeProcedureCommands } from '../../src/commands/next-steps.js';
import { resolveValidityPair } from '../../src/core/validity.js';

// The hints printed after `build` and `ca extend` follow the node procedure of the README's
// air-gapped workflow: ca extend, then renew (backup, certs renew all, restart), then check.

describe('the node procedure hint', () => {
  it('names ca extend, renew and check, in that order, never a bare certs renew all', () => {
    const lines = nodeProcedureCommands({ kubeadm: './kubeadm-custom' });
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^ {2}1\. kubeadm-forever ca extend --pki-dir \/etc\/kubernetes\/pki /);
    expect(lines[1]).toMatch(/^ {2}2\. kubeadm-forever renew --kubeadm \.\/kubeadm-custom --dry-run /);
    expect(lines[1]).toMatch(/backup, certs renew all/);
    expect(lines[2]).toBe('  3. kubeadm-forever check --min-years 150');
    expect(lines.join('\n')).not.toMatch(/sudo|kubeadm-custom certs renew/);
  });

  it('starts at renew once the CAs are extended', () => {
    const lines = nodeProcedureCommands({ kubeadm: './k', from: 'renew' });
    expect(lines.map((l) => /kubeadm-forever (\S+)/.exec(l)![1])).toEqual(['renew', 'check']);
    expect(lines[0]).toMatch(/^ {2}1\. /);
  });

  it('passes non-default validities on, so renew checks and check thresholds agree with the binary', () => {
    const lines = nodeProcedureCommands({ kubeadm: './k', validity: resolveValidityPair('50y', '100y') });
    expect(lines[0]).toMatch(/ca extend --pki-dir \/etc\/kubernetes\/pki --validity 100y /);
    expect(lines[1]).toMatch(/renew --kubeadm \.\/k --validity 50y --ca-validity 100y --dry-run /);
    expect(lines[2]).toBe('  3. kubeadm-forever check');
  });
});
