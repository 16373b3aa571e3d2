import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { unifiedDiff } from '../../src/node/renew/cluster-config.js';
import { setClusterSigningDuration } from '../../src/node/renew/controller-manager.js';
import { certsRenewArgs, probeKubeadm } from '../../src/node/renew/kubeadm.js';
import { compareVersions, manifestImages } from '../../src/node/renew/preflight.js';
import { repoRoot, k8s1202 } from '../helpers/env.js';

const manifests = path.join(repoRoot, 'test/fixtures/renew/manifests-v1.20.2');
const read = (name: string) => fs.readFileSync(path.join(manifests, name), 'utf8');
const changedLines = (before: string, after: string) =>
  unifiedDiff('m.yaml', before, after)
    .split('\n')
    .filter((l) => /^[-+](?![-+]{2} )/.test(l));

describe('kubeadm version and arguments', () => {
  it('runs `kubeadm version` and keeps gitVersion, major and minor', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-test-probe-'));
    try {
      const script = path.join(dir, 'kubeadm');
      fs.writeFileSync(
        script,
        `#!/bin/sh\necho '${k8s1202.versionJson.replace(/v1\.20\.2/g, 'v1.31.0-rc.1')}'\n`,
        { mode: 0o755 },
      );
      expect(await probeKubeadm(script)).toEqual({
        path: script,
        gitVersion: 'v1.31.0-rc.1',
        major: 1,
        minor: 31,
      });
      await expect(probeKubeadm(path.join(dir, 'missing'))).rejects.toMatchObject({
        what: expect.stringMatching(/not found/),
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('uses `alpha certs` before 1.20 and drops --cert-dir with --config', () => {
    expect(certsRenewArgs({ major: 1, minor: 19 }, { pkiDir: '/p' })).toEqual([
      'alpha',
      'certs',
      'renew',
      'all',
      '--cert-dir',
      '/p',
    ]);
    expect(certsRenewArgs({ major: 1, minor: 20 }, { pkiDir: '/p' })).toEqual([
      'certs',
      'renew',
      'all',
      '--cert-dir',
      '/p',
    ]);
    expect(certsRenewArgs({ major: 1, minor: 31 }, { pkiDir: '/p', configFile: '/c.yaml' })).toEqual([
      'certs',
      'renew',
      'all',
      '--config',
      '/c.yaml',
    ]);
  });
});

describe('control-plane images against the kubeadm version', () => {
  const all = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler'].flatMap((c) =>
    manifestImages(c, read(`${c}.yaml`)),
  );

  it('reads image tags of kubeadm manifests (registry ports and digests too)', () => {
    expect(all.map((i) => `${i.component}=${i.tag}`)).toEqual([
      'etcd=3.4.13-0',
      'kube-apiserver=v1.20.2',
      'kube-controller-manager=v1.20.2',
      'kube-scheduler=v1.20.2',
    ]);
    const pod = (image: string) => `spec:\n  containers:\n  - name: c\n    image: ${image}\n`;
    expect(manifestImages('x', pod('registry.local:5000/kube-apiserver:v1.24.15'))[0]?.tag).toBe('v1.24.15');
    expect(manifestImages('x', pod('registry.local:5000/kube-apiserver'))[0]?.tag).toBe('');
    expect(manifestImages('x', pod('k8s.gcr.io/kube-apiserver:v1.20.2@sha256:abcd'))[0]?.tag).toBe('v1.20.2');
    expect(manifestImages('x', ': not yaml [')).toEqual([]);
  });

  it('accepts the matching version and ignores etcd', () => {
    expect(compareVersions('v1.20.2', all, '/m')).toEqual([]);
  });

  it('stops on another version, naming the image and the build to make', () => {
    try {
      compareVersions('v1.21.0', all, '/m');
      expect.unreachable();
    } catch (err) {
      expect(err).toMatchObject({
        what: 'kubeadm is v1.21.0 but kube-apiserver runs k8s.gcr.io/kube-apiserver:v1.20.2',
      });
      expect((err as { next: string }).next).toContain('--kubernetes-version v1.20.2');
    }
  });

  it('warns when there are no tagged images to compare', () => {
    expect(
      compareVersions(
        'v1.20.2',
        all.filter((i) => i.component === 'etcd'),
        '/m',
      )[0],
    ).toMatch(/no tagged control-plane images/);
  });
});

describe('--cluster-signing-duration in kube-controller-manager.yaml', () => {
  it('adds the flag as one line, every other byte unchanged', () => {
    const before = read('kube-controller-manager.yaml');
    const r = setClusterSigningDuration(before, '1752000h');
    expect(r).toMatchObject({ before: undefined, changed: true });
    expect(changedLines(before, r.text)).toEqual(['+    - --cluster-signing-duration=1752000h']);
    const cmd = (parse(r.text) as { spec: { containers: { command: string[] }[] } }).spec.containers[0]!
      .command;
    expect(cmd.at(-1)).toBe('--cluster-signing-duration=1752000h');
  });

  it('replaces an existing value in place and is idempotent', () => {
    const before = read('kube-controller-manager.yaml').replace(
      '    - --cluster-name=kubernetes\n',
      '    - --cluster-name=kubernetes\n    - --cluster-signing-duration=8760h0m0s # set by hand\n',
    );
    const r = setClusterSigningDuration(before, '1752000h');
    expect(r.before).toBe('8760h0m0s');
    expect(changedLines(before, r.text)).toEqual([
      '-    - --cluster-signing-duration=8760h0m0s # set by hand',
      '+    - --cluster-signing-duration=1752000h # set by hand',
    ]);
    expect(setClusterSigningDuration(r.text, '1752000h')).toEqual({
      text: r.text,
      before: '1752000h',
      changed: false,
    });
  });

  it('keeps an indented sequence style', () => {
    const before =
      'spec:\n  containers:\n    - name: kube-controller-manager\n      command:\n        - kube-controller-manager\n        - --v=2\n      image: x:v1\n';
    expect(setClusterSigningDuration(before, '1752000h').text).toBe(
      before.replace('        - --v=2\n', '        - --v=2\n        - --cluster-signing-duration=1752000h\n'),
    );
  });

  it('refuses a manifest without a command list', () => {
    expect(() =>
      setClusterSigningDuration('spec:\n  containers:\n  - name: kube-controller-manager\n', '1h'),
    ).toThrow(/no command list/);
  });
});
