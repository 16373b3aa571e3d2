import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { isKfError } from '../../src/core/errors.js';
import {
  fixClusterConfiguration,
  fixConfigFile,
  fixConfigMap,
  goDurationHours,
  Kubectl,
  needsConfigFix,
  unifiedDiff,
} from '../../src/node/renew/cluster-config.js';
import { repoRoot } from '../helpers/env.js';

const fixtures = path.join(repoRoot, 'test/fixtures/renew');
const read = (name: string) => fs.readFileSync(path.join(fixtures, name), 'utf8');
const asked = { certificateValidityPeriod: 199 * 8760, caCertificateValidityPeriod: 200 * 8760 };
const inner = (cm: string) =>
  (parse(cm) as { data: { ClusterConfiguration: string } }).data.ClusterConfiguration;

describe('1.31+ ClusterConfiguration validity fields', () => {
  it('applies from 1.31 on only', () => {
    expect(needsConfigFix({ major: 1, minor: 30 })).toBe(false);
    expect(needsConfigFix({ major: 1, minor: 31 })).toBe(true);
    expect(needsConfigFix({ major: 1, minor: 35 })).toBe(true);
  });

  it('reads Go durations in hours', () => {
    expect(goDurationHours('8760h0m0s')).toBe(8760);
    expect(goDurationHours('87600h')).toBe(87600);
    expect(goDurationHours('1h30m')).toBe(1.5);
    expect(goDurationHours('1743240h0m0s')).toBe(199 * 8760);
    expect(goDurationHours('199y')).toBeUndefined();
    expect(goDurationHours('')).toBeUndefined();
  });

  it('sets both fields of a stock 1.31 ConfigMap and changes nothing else', () => {
    const cm = read('kubeadm-config-v1.31.yaml');
    const r = fixConfigMap(cm, asked);
    expect(r.fixes).toEqual([
      { field: 'certificateValidityPeriod', before: '8760h0m0s', after: '1743240h0m0s' },
      { field: 'caCertificateValidityPeriod', before: '87600h0m0s', after: '1752000h0m0s' },
    ]);
    const before = inner(cm).split('\n');
    const after = inner(r.text).split('\n');
    expect(after.length).toBe(before.length);
    const differing = before.filter((l, i) => l !== after[i]);
    expect(differing).toEqual([
      'caCertificateValidityPeriod: 87600h0m0s',
      'certificateValidityPeriod: 8760h0m0s',
    ]);
    const doc = parse(r.text) as { metadata: { resourceVersion: string }; kind: string };
    expect(doc.kind).toBe('ConfigMap');
    expect(doc.metadata.resourceVersion).toBe('210');
    expect(r.clusterConfiguration).toBe(inner(r.text));
    expect(r.clusterConfigurationBefore).toBe(inner(cm));
  });

  it('leaves long enough values alone, and sets only the short one', () => {
    const long = fixConfigMap(read('kubeadm-config-v1.31.yaml'), {
      certificateValidityPeriod: 8760,
      caCertificateValidityPeriod: 87600,
    });
    expect(long.fixes).toEqual([]);
    const leafOnly = fixConfigMap(read('kubeadm-config-v1.31.yaml'), {
      certificateValidityPeriod: 9000,
      caCertificateValidityPeriod: 87600,
    });
    expect(leafOnly.fixes.map((f) => f.field)).toEqual(['certificateValidityPeriod']);
  });

  it('does not add the fields to a v1beta3 configuration (an older schema would reject them)', () => {
    const r = fixConfigMap(read('kubeadm-config-v1.30.yaml'), asked);
    expect(r.fixes).toEqual([]);
    expect(r.note).toMatch(/v1beta3 has no validity fields/);
    expect(r.text).toBe(read('kubeadm-config-v1.30.yaml'));
  });

  it('adds an absent field to a v1beta4 ClusterConfiguration', () => {
    const text =
      'apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v1.32.1\n';
    const r = fixClusterConfiguration(text, asked);
    expect(r.fixes.map((f) => f.before)).toEqual([undefined, undefined]);
    expect(r.text).toBe(
      `${text}certificateValidityPeriod: 1743240h0m0s\ncaCertificateValidityPeriod: 1752000h0m0s\n`,
    );
  });

  it('fixes only the ClusterConfiguration document of a config file, keeping comments and other documents', () => {
    const text = read('kubeadm-config-file-v1.31.yaml');
    const r = fixConfigFile(text, asked);
    expect(r.fixes.map((f) => [f.field, f.before])).toEqual([
      ['certificateValidityPeriod', '8760h0m0s'],
      ['caCertificateValidityPeriod', undefined],
    ]);
    const diff = unifiedDiff('kubeadm.yaml', text, r.text);
    const changed = diff.split('\n').filter((l) => /^[-+][^-+]/.test(l));
    expect(changed).toEqual([
      '-certificateValidityPeriod: 8760h0m0s',
      '+certificateValidityPeriod: 1743240h0m0s',
      '+caCertificateValidityPeriod: 1752000h0m0s',
    ]);
    expect(r.text).toContain('# lifetimes kubeadm signs with');
    expect(r.text).toContain('kind: KubeletConfiguration\ncgroupDriver: systemd\n');
  });

  it('refuses a file without a ClusterConfiguration, with a two-part error', () => {
    try {
      fixConfigFile('apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n', asked);
      expect.unreachable();
    } catch (err) {
      expect(isKfError(err) && err.what).toMatch(/no ClusterConfiguration/);
    }
  });
});

describe('kubectl for the kubeadm-config ConfigMap (fake kubectl)', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
    for (const k of ['FAKE_KUBECTL_LOG', 'FAKE_KUBECTL_CM', 'FAKE_KUBECTL_REPLACED']) delete process.env[k];
  });

  function fake() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-test-kubectl-'));
    dirs.push(dir);
    const env = {
      FAKE_KUBECTL_LOG: path.join(dir, 'log'),
      FAKE_KUBECTL_CM: path.join(fixtures, 'kubeadm-config-v1.31.yaml'),
      FAKE_KUBECTL_REPLACED: path.join(dir, 'replaced.yaml'),
    };
    Object.assign(process.env, env);
    return env;
  }

  it('reads with admin.conf and replaces with the fixed YAML, argument arrays only', async () => {
    const env = fake();
    const k = new Kubectl(path.join(fixtures, 'fake-kubectl'), '/etc/kubernetes/admin.conf');
    const cm = await k.getKubeadmConfig();
    expect(cm).toBe(read('kubeadm-config-v1.31.yaml'));
    const fixed = fixConfigMap(cm, asked);
    await k.replaceConfigMap(fixed.text);
    expect(fs.readFileSync(env.FAKE_KUBECTL_REPLACED, 'utf8')).toBe(fixed.text);
    const log = fs.readFileSync(env.FAKE_KUBECTL_LOG, 'utf8').trim().split('\n');
    expect(log[0]).toBe(
      '--kubeconfig /etc/kubernetes/admin.conf -n kube-system get configmap kubeadm-config -o yaml',
    );
    expect(log[1]).toMatch(
      /^--kubeconfig \/etc\/kubernetes\/admin.conf -n kube-system replace -f \S+kubeadm-config.yaml$/,
    );
  });

  it('turns a kubectl failure into an error naming --config', async () => {
    fake();
    const k = new Kubectl(
      path.join(repoRoot, 'test/fixtures/renew/no-such-kubectl'),
      '/etc/kubernetes/admin.conf',
    );
    await expect(k.getKubeadmConfig()).rejects.toMatchObject({
      next: expect.stringMatching(/--config FILE/),
    });
  });
});
