import { describe, expect, it } from 'vitest';
import { parseTestFaults, testFaults } from '../../src/core/test-faults.js';

describe('the test-only fault hook', () => {
  it('reads every kind, comma-separated, and ignores what it does not know', () => {
    expect(
      parseTestFaults(
        'kill-at:7, fail-swap:2,fail-restore,rollout-stop-at:kubelet-cert:kf-worker-2,fail-gate:apiserver-readyz@kf-cp-2,bogus:1',
      ),
    ).toEqual({
      killAtStep: 7,
      failSwap: 2,
      failRestore: true,
      rolloutStopAt: 'kubelet-cert:kf-worker-2',
      failGate: { gate: 'apiserver-readyz', node: 'kf-cp-2' },
    });
    expect(parseTestFaults('')).toEqual({ failRestore: false });
    expect(parseTestFaults('kill-at:x,fail-gate:nonode')).toEqual({ failRestore: false });
  });

  it('is honoured only under the test runner', () => {
    expect(testFaults({ KF_TEST_FAULT: 'fail-restore' })).toEqual({ failRestore: false });
    expect(testFaults({ VITEST: 'true', KF_TEST_FAULT: 'fail-restore' })).toEqual({ failRestore: true });
  });
});
