import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KfError } from '../../src/core/errors.js';
import { createCa, createLeaf, loadCaPair } from '../../src/node/pki/certs.js';
import { generateKey, privateKeyPem } from '../../src/node/pki/keys.js';
import { nodeLayout, requiredPkiFiles, renewedKubeconfigs } from '../../src/node/renew/node.js';
import { preflight } from '../../src/node/renew/preflight.js';
import { k8s1202 } from '../helpers/env.js';

// renew's preflight applies the one lifetime rule (core/lifetime): CAs that end before the new
// leaves, or leaves that would end earlier than they do now, are refused, not warned about.

const HOURS_199Y = 199 * 365 * 24;
let root: string;
let kubeadm: string;

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-test-preflight-'));
  const k = path.join(root, 'etc-kubernetes');
  const pki = path.join(k, 'pki');
  fs.mkdirSync(path.join(k, 'manifests'), { recursive: true });
  fs.mkdirSync(pki);
  for (const f of requiredPkiFiles(false)) fs.writeFileSync(path.join(pki, f), 'placeholder\n');
  for (const f of renewedKubeconfigs) fs.writeFileSync(path.join(k, f), 'apiVersion: v1\nkind: Config\n');
  // kubeadm's 10-year CAs, and an apiserver certificate that already lasts 199 years
  const key = await generateKey('ecdsa-p256');
  const ca = await createCa('kubernetes', key, 10 * 365 * 24);
  fs.writeFileSync(path.join(pki, 'ca.crt'), ca.pem);
  fs.writeFileSync(
    path.join(pki, 'front-proxy-ca.crt'),
    (await createCa('front-proxy-ca', await generateKey('ecdsa-p256'), 10 * 365 * 24)).pem,
  );
  const pair = await loadCaPair('ca.crt', ca.pem, 'ca.key', privateKeyPem(key.privateKey));
  const leaf = await createLeaf(pair, {
    subject: [{ CN: ['kube-apiserver'] }],
    key: await generateKey('ecdsa-p256'),
    validityHours: HOURS_199Y,
    clientAuth: false,
    serverAuth: true,
  });
  fs.writeFileSync(path.join(pki, 'apiserver.crt'), leaf.pem);
  fs.writeFileSync(
    path.join(k, 'manifests/kube-apiserver.yaml'),
    'spec:\n  containers:\n  - image: k8s.gcr.io/kube-apiserver:v1.20.2\n',
  );
  kubeadm = path.join(root, 'kubeadm');
  fs.writeFileSync(kubeadm, `#!/bin/sh\necho '${k8s1202.versionJson}'\n`, { mode: 0o755 });
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const layout = () => nodeLayout(path.join(root, 'etc-kubernetes'), path.join(root, 'kubelet'));

describe('renew preflight: the lifetime rule', () => {
  it('refuses 199-year leaves under 10-year CAs, naming both dates and --allow-shorter', async () => {
    const err = await preflight(layout(), { kubeadm, leafHours: HOURS_199Y, leafText: '199y' }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(KfError);
    const k = err as KfError;
    expect(k.what).toMatch(
      /^refused: 199y leaf certificates renewed now would end 22\d\d-\S+Z, after its CA ca\.crt \(20\d\d-\S+Z\) \(and 1 more: .*front-proxy-ca\.crt/,
    );
    expect(k.next).toMatch(/ca extend --pki-dir .*or pass --allow-shorter/);
  });

  it('refuses a renewal that would end a leaf earlier than it does now (a 1-year kubeadm over a 199-year apiserver.crt)', async () => {
    const err = (await preflight(layout(), { kubeadm, leafHours: 365 * 24, leafText: '1y' }).catch(
      (e: unknown) => e,
    )) as KfError;
    expect(err.what).toMatch(
      /^refused: the renewed apiserver\.crt would end 20\d\d-\S+Z, earlier than apiserver\.crt does now \(22\d\d-\S+Z\)$/,
    );
  });

  it('with --allow-shorter goes on and reports each violation as a warning', async () => {
    const r = await preflight(layout(), {
      kubeadm,
      leafHours: HOURS_199Y,
      leafText: '199y',
      allowShorter: true,
    });
    expect(r.cas.map((c) => c.shorterThanLeaf)).toEqual([true, true]);
    expect(r.warnings.filter((w) => /after its CA .* \(allowed by --allow-shorter\)$/.test(w))).toHaveLength(
      2,
    );
  });
});
