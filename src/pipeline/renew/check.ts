import type { NodeLayout } from './node.js';

/** The result of checking a node's certificates after a renewal. */
export interface NodeCheck {
  ok: boolean;
  summary: string;
  /** the checker's own report, passed through to --json */
  report?: unknown;
}

export type NodeChecker = (layout: NodeLayout, leaf: { hours: number; text: string }) => Promise<NodeCheck>;

/**
 * The one seam between renew and the PKI `check` (src/pki). TEMPORARY until the PKI branch
 * lands on main: it reports that no check ran rather than pretending one passed.
 */
export const checkNode: NodeChecker = async () => ({
  ok: true,
  summary: 'expiry check not run: run `kubeadm-forever check` (not wired into renew yet)',
});
