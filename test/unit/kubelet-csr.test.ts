import { spawnSync } from 'node:child_process';
import {
  formatKubeletCertResult,
  runKubeletCert,
  type KubeletCertInput,
} from '../../src/commands/kubelet-cert.js';
import { captureIo, expectFailure } from '../helpers/command-io.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { caInit } from '../../src/node/pki/ca.js';
import {
  installKubeletCert,
  makeKubeletCsr,
  PENDING_KEY,
  signKubeletCsr,
} from '../../src/node/pki/kubelet-csr.js';
import { parseValidity } from '../../src/core/validity.js';

// A worker's kubelet certificate made from its own key: CSR on the worker, signed where the CA
// key is, installed back; every artefact checked with real openssl.

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-kubelet-csr-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function openssl(args: string[], input?: string) {
  return spawnSync('openssl', args, { input, encoding: 'utf8' });
}

async function pki(name: string): Promise<string> {
  const dir = path.join(tmp, name);
  await caInit({
    outDir: dir,
    validity: parseValidity('200y'),
    keyType: 'ecdsa-p256',
    force: false,
    allowShorter: false,
  });
  return dir;
}

describe('kubelet certificate by CSR', () => {
  it('make-csr on the worker, sign on the control plane, install on the worker', async () => {
    const cp = await pki('cluster');
    const worker = path.join(tmp, 'w1-kubelet');
    fs.mkdirSync(worker);
    const { csr, keyFile, reused } = await makeKubeletCsr({ nodeName: 'w1', outDir: worker });
    expect(reused).toBe(false);
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
    const req = openssl(['req', '-verify', '-noout', '-subject'], csr);
    expect(req.status, req.stderr).toBe(0);
    expect(req.stdout).toMatch(/subject=O ?= ?system:nodes, ?CN ?= ?system:node:w1/);
    // a resumed rollout asks again: the same key
    const again = await makeKubeletCsr({ nodeName: 'w1', outDir: worker });
    expect(again.reused).toBe(true);
    const pub = (pem: string) => openssl(['req', '-pubkey', '-noout'], pem).stdout;
    expect(pub(again.csr)).toBe(pub(csr));

    const signed = await signKubeletCsr({
      csrPem: csr,
      nodeName: 'w1',
      pkiDir: cp,
      validity: parseValidity('199y'),
    });
    expect(new Date(signed.notAfter).getUTCFullYear()).toBeGreaterThan(new Date().getUTCFullYear() + 190);

    const r = await installKubeletCert({
      certPem: signed.cert,
      outDir: worker,
      caFile: path.join(cp, 'ca.crt'),
    });
    expect(fs.readlinkSync(r.link)).toBe(r.file);
    expect(fs.existsSync(path.join(worker, PENDING_KEY))).toBe(false);
    expect(fs.statSync(r.file).mode & 0o777).toBe(0o600);
    const verify = openssl(['verify', '-CAfile', path.join(cp, 'ca.crt'), '-purpose', 'sslclient', r.file]);
    expect(verify.stdout, verify.stderr).toContain(': OK');
    // the certificate in the file and the key beside it are a pair
    const certKey = openssl(['x509', '-in', r.file, '-pubkey', '-noout']).stdout;
    const keyPub = openssl(['pkey', '-in', r.file, '-pubout']).stdout;
    expect(certKey).toBe(keyPub);
  });

  it('refuses a CSR for another node, a certificate for another key, and one from another CA', async () => {
    const cp = await pki('cluster2');
    const foreign = await pki('foreign');
    const w = path.join(tmp, 'w2-kubelet');
    fs.mkdirSync(w);
    const { csr } = await makeKubeletCsr({ nodeName: 'w2', outDir: w });
    const v = parseValidity('10y');
    await expect(signKubeletCsr({ csrPem: csr, nodeName: 'w3', pkiDir: cp, validity: v })).rejects.toThrow(
      /the CSR asks for "O=system:nodes, CN=system:node:w2", not "O=system:nodes, CN=system:node:w3"/,
    );
    await expect(signKubeletCsr({ csrPem: 'junk', nodeName: 'w2', pkiDir: cp, validity: v })).rejects.toThrow(
      /not a PEM certificate request/,
    );
    // a CSR of another worker's key, signed for the right name, does not fit this worker's key
    const other = path.join(tmp, 'other-kubelet');
    fs.mkdirSync(other);
    const otherCsr = (await makeKubeletCsr({ nodeName: 'w2', outDir: other })).csr;
    const wrongKey = await signKubeletCsr({ csrPem: otherCsr, nodeName: 'w2', pkiDir: cp, validity: v });
    await expect(
      installKubeletCert({ certPem: wrongKey.cert, outDir: w, caFile: path.join(cp, 'ca.crt') }),
    ).rejects.toThrow(/is not for the pending key/);
    const foreignCert = await signKubeletCsr({ csrPem: csr, nodeName: 'w2', pkiDir: foreign, validity: v });
    await expect(
      installKubeletCert({ certPem: foreignCert.cert, outDir: w, caFile: path.join(cp, 'ca.crt') }),
    ).rejects.toThrow(/not issued by a CA in/);
    expect(fs.readdirSync(w)).toEqual([PENDING_KEY]);
  });
});

describe('kubelet-cert --make-csr / --sign-csr - / --install - (the steps the rollout runs over ssh)', () => {
  it('carries a CSR and its certificate through stdin and the human text', async () => {
    const cp = await pki('cli-cluster');
    const w = path.join(tmp, 'cli-w1');
    fs.mkdirSync(w);
    const base: KubeletCertInput = {
      node: 'cli-w1',
      makeCsr: false,
      caFile: path.join(cp, 'ca.crt'),
      out: w,
      validity: '199y',
      allowShorter: false,
    };
    const run = (more: Partial<KubeletCertInput>, stdin?: string) =>
      runKubeletCert({ ...base, ...more }, captureIo({ stdin }));
    const csr = formatKubeletCertResult(await run({ makeCsr: true }));
    expect(csr).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----/);
    const cert = formatKubeletCertResult(await run({ signCsr: '-', pkiDir: cp, validity: '50y' }, csr));
    expect(cert).toMatch(/^-----BEGIN CERTIFICATE-----/);
    const inst = await run({ install: '-' }, cert);
    expect('subject' in inst && inst.subject).toContain('system:node:cli-w1');
    await expectFailure(
      run({ makeCsr: true, install: '-' }),
      2,
      /^--make-csr, --sign-csr and --install are separate steps$/,
    );
    await expectFailure(run({ signCsr: '-' }, csr), 2, /^--sign-csr needs --pki-dir/);
  });
});
