import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  makeControlPlaneNode,
  runCliInNode,
  runInNode,
  type TestNode,
} from '../helpers/control-plane-node.js';
import { skipDockerTests } from '../helpers/env.js';
import { stockKubeadm } from '../helpers/fixtures.js';

// `check --output kubeadm-json` against the real kubeadm 1.20.2 on a node it made itself.
// kubeadm 1.20.2 predates `check-expiration -o` (the first test proves it), so the document's
// shape is the documented one (output.kubeadm.k8s.io/v1alpha3, kubeadm >= 1.30) and its
// content is compared with what 1.20.2's table says: names, order, CA names, dates, external.

interface TableRow {
  name: string;
  expires: string;
  ca: string;
  external: string;
}

/** kubeadm's two tables: CERTIFICATE … and CERTIFICATE AUTHORITY … (columns by header offsets). */
function parseTables(text: string): { certs: TableRow[]; cas: TableRow[] } {
  const blocks = text.split(/\n\s*\n/).filter((b) => /^CERTIFICATE/m.test(b));
  const parse = (block: string) => {
    const lines = block.split('\n').filter((l) => l.trim() !== '');
    const header = lines[0]!;
    const cols = ['EXPIRES', 'RESIDUAL TIME', 'CERTIFICATE AUTHORITY', 'EXTERNALLY MANAGED'].map((h) =>
      h === 'CERTIFICATE AUTHORITY' && header.startsWith(h) ? -1 : header.indexOf(h),
    );
    const at = (l: string, i: number) => {
      const start = cols[i]!;
      if (start < 0) return '';
      const end = cols.slice(i + 1).find((c) => c > start) ?? l.length;
      return l.slice(start, end).trim();
    };
    return lines.slice(1).map((l) => ({
      name: l.slice(0, cols[0]).trim(),
      expires: at(l, 0),
      ca: at(l, 2),
      external: at(l, 3),
    }));
  };
  return { certs: parse(blocks[0]!), cas: parse(blocks[1]!) };
}

/** kubeadm's table date: "Jan 02, 2006 15:04 MST", always UTC here. */
function tableDate(iso: string): string {
  const d = new Date(iso);
  const month = d.toLocaleString('en-US', { month: 'short', timeZone: 'UTC' });
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${month} ${pad(d.getUTCDate())}, ${d.getUTCFullYear()} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`;
}

describe.skipIf(skipDockerTests)('check --output kubeadm-json and the real kubeadm 1.20.2', () => {
  let kubeadm: string;
  let node: TestNode;
  let config: string;
  beforeAll(() => {
    kubeadm = stockKubeadm();
    node = makeControlPlaneNode(kubeadm);
    config = path.join(node.root, 'cluster-config.yaml');
    // --config: kubeadm would otherwise ask an API server for its ClusterConfiguration
    fs.writeFileSync(
      config,
      'apiVersion: kubeadm.k8s.io/v1beta2\nkind: ClusterConfiguration\nkubernetesVersion: v1.20.2\n',
    );
  }, 20 * 60_000);
  afterAll(() => node?.cleanup());

  const kubeadmTable = () => {
    const r = runInNode(node, kubeadm, ['certs', 'check-expiration', '--config', config]);
    expect(r.status, r.stderr).toBe(0);
    return parseTables(r.stdout);
  };
  const ours = () => {
    const r = runCliInNode(node, ['check', '--output', 'kubeadm-json', '--kubelet-dir', node.kubeletPkiDir]);
    return { status: r.status, doc: JSON.parse(r.stdout) };
  };

  it('kubeadm 1.20.2 has no -o for check-expiration (so the shape is the documented v1alpha3 one)', () => {
    const r = runInNode(node, kubeadm, ['certs', 'check-expiration', '--config', config, '-o', 'json']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/unknown shorthand flag: 'o'/);
  });

  it('has the documented shape and says what kubeadm 1.20.2 says about every certificate and CA', () => {
    const { status, doc } = ours();
    expect(status).toBe(0);
    expect(Object.keys(doc)).toEqual(['kind', 'apiVersion', 'certificates', 'certificateAuthorities']);
    expect(doc.kind).toBe('CertificateExpirationInfo');
    expect(doc.apiVersion).toBe('output.kubeadm.k8s.io/v1alpha3');
    for (const c of doc.certificates)
      expect(Object.keys(c)).toEqual([
        'name',
        'expirationDate',
        'residualTime',
        'externallyManaged',
        'caName',
        'missing',
      ]);
    // CAs: caName is `omitempty` and empty for root CAs in kubeadm's type
    for (const c of doc.certificateAuthorities)
      expect(Object.keys(c)).toEqual([
        'name',
        'expirationDate',
        'residualTime',
        'externallyManaged',
        'missing',
      ]);

    const table = kubeadmTable();
    expect(doc.certificates.map((c: { name: string }) => c.name)).toEqual(table.certs.map((r) => r.name));
    expect(doc.certificateAuthorities.map((c: { name: string }) => c.name)).toEqual(
      table.cas.map((r) => r.name),
    );
    const compare = (mine: Record<string, unknown>, theirs: TableRow) => {
      expect(mine.missing, theirs.name).toBe(false);
      expect(mine.expirationDate).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      expect(tableDate(String(mine.expirationDate)), theirs.name).toBe(theirs.expires);
      expect(mine.externallyManaged ? 'yes' : 'no', theirs.name).toBe(theirs.external);
      const left = (new Date(String(mine.expirationDate)).getTime() - Date.now()) / 1000;
      expect(Math.abs(Number(mine.residualTime) - left)).toBeLessThan(120);
    };
    table.certs.forEach((row, i) => {
      compare(doc.certificates[i], row);
      // 1.20.2 prints no CA for its kubeconfigs; newer kubeadm (and the v1alpha3 JSON) say "ca"
      expect(doc.certificates[i].caName, row.name).toBe(row.ca || (row.name.endsWith('.conf') ? 'ca' : '?'));
    });
    table.cas.forEach((row, i) => compare(doc.certificateAuthorities[i], row));
  });

  it('marks a missing certificate and an externally managed CA as kubeadm 1.20.2 does', () => {
    const pki = path.join(node.kubernetesDir, 'pki');
    fs.renameSync(path.join(pki, 'front-proxy-ca.key'), path.join(node.root, 'front-proxy-ca.key.away'));
    fs.renameSync(
      path.join(pki, 'apiserver-kubelet-client.crt'),
      path.join(node.root, 'apiserver-kubelet-client.crt.away'),
    );
    try {
      const r = runInNode(node, kubeadm, ['certs', 'check-expiration', '--config', config]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^!MISSING! apiserver-kubelet-client/m);
      const table = parseTables(r.stdout);
      const { doc } = ours();
      const mine = (name: string) =>
        [...doc.certificates, ...doc.certificateAuthorities].find((c: { name: string }) => c.name === name);
      expect(mine('apiserver-kubelet-client')).toMatchObject({
        missing: true,
        expirationDate: null,
        residualTime: 0,
      });
      for (const row of [...table.certs, ...table.cas].filter((x) => !x.name.startsWith('!MISSING!'))) {
        expect(mine(row.name)?.externallyManaged ? 'yes' : 'no', row.name).toBe(row.external);
      }
      expect(mine('front-proxy-ca')).toMatchObject({ externallyManaged: true });
    } finally {
      fs.renameSync(path.join(node.root, 'front-proxy-ca.key.away'), path.join(pki, 'front-proxy-ca.key'));
      fs.renameSync(
        path.join(node.root, 'apiserver-kubelet-client.crt.away'),
        path.join(pki, 'apiserver-kubelet-client.crt'),
      );
    }
  });
});
