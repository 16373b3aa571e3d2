import fs from 'node:fs';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { isMap, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import { KfError, messageOf } from '../../core/errors.js';
import { isFileReadError, readBoundedText } from '../../adapters/bounded-read.js';
import { isSameCa, pemCertificates, replacePemBlock, type PemCertificate } from './certs.js';

/** The kubeconfigs kubeadm writes; any other `*.conf` kubeconfig in the directory is handled too. */
export const KUBEADM_KUBECONFIGS = [
  'admin.conf',
  'super-admin.conf',
  'controller-manager.conf',
  'scheduler.conf',
  'kubelet.conf',
];

function parseKubeconfig(text: string, file: string): Document {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    throw new KfError(
      `${file} is not valid YAML (${doc.errors[0]!.message.split('\n')[0]})`,
      'fix or restore the kubeconfig',
    );
  }
  return doc;
}

function looksLikeKubeconfig(doc: Document): boolean {
  return isMap(doc.contents) && (isSeq(doc.get('clusters')) || isSeq(doc.get('users')));
}

export interface KubeconfigScan {
  /** the kubeconfigs (a clusters or users list), sorted, with their text as read */
  found: { file: string; text: string }[];
  /** `*.conf` files that could not be read: not a regular file (a FIFO, a device), too big, unreadable */
  errors: { file: string; message: string }[];
}

/**
 * The `*.conf` files in `dir` that are kubeconfigs, each read once through the bounded reader.
 * Other YAML (or text that is not YAML) is passed over as before; a `*.conf` that cannot be
 * read (a FIFO, a link to a device, a file over the kubeconfig limit) is an error, not skipped.
 */
export function scanKubeconfigs(dir: string): KubeconfigScan {
  const scan: KubeconfigScan = { found: [], errors: [] };
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    scan.errors.push({ file: dir, message: `directory not readable: ${messageOf(err)}` });
    return scan;
  }
  for (const name of names.filter((n) => n.endsWith('.conf')).sort()) {
    const file = path.join(dir, name);
    // a directory named *.conf is not a kubeconfig; a link loop (ELOOP) is left to the reader to name
    let isDir = false;
    try {
      isDir = fs.statSync(file).isDirectory();
    } catch {
      isDir = false;
    }
    if (isDir) continue;
    let text: string;
    try {
      text = readBoundedText(file, 'kubeconfig');
    } catch (err) {
      scan.errors.push({ file, message: isFileReadError(err) ? err.reason : messageOf(err) });
      continue;
    }
    try {
      if (looksLikeKubeconfig(parseDocument(text))) scan.found.push({ file, text });
    } catch {
      // not YAML at all: not a kubeconfig
    }
  }
  return scan;
}

/**
 * `*.conf` files in `dir` that are kubeconfigs (have a clusters or users list), sorted. One that
 * cannot be read is an error naming it: a kubeconfig left out would keep its old CA data.
 */
export function listKubeconfigs(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const scan = scanKubeconfigs(dir);
  const [first] = scan.errors;
  if (first)
    throw new KfError(
      `cannot read kubeconfig ${first.file}: ${first.message}`,
      `replace ${first.file} with a regular file or move it away; nothing was written`,
    );
  return scan.found.map((f) => f.file);
}

/** Certificates in a base64 `*-data` field (base64 of PEM, as kubeadm writes it, or of DER). */
export function decodeCertData(b64: string): X509Certificate | undefined {
  try {
    const raw = Buffer.from(b64.replace(/\s+/g, ''), 'base64');
    return new X509Certificate(raw);
  } catch {
    return undefined;
  }
}

export interface CaDataChange {
  cluster: string;
  /** the old CA this data matched (its file) */
  caFile: string;
  /** NotAfter of the certificate replaced (for the lifetime rule) */
  replacedNotAfter: Date;
}

export interface CaReplacement {
  /** the CA certificate as it is on disk now */
  oldDer: Buffer;
  /** its replacement: the same CA (subject and key) for longer */
  newPem: string;
  newCert: X509Certificate;
  caFile: string;
}

/** The certificates of a `certificate-authority-data` value: base64 of PEM (one or several) or of DER. */
function caDataBlocks(b64: string): { pem: string | undefined; blocks: PemCertificate[] } | undefined {
  const raw = Buffer.from(b64.replace(/\s+/g, ''), 'base64');
  const text = raw.toString('utf8');
  if (text.includes('-----BEGIN')) {
    try {
      return { pem: text, blocks: pemCertificates(text, 'certificate-authority-data') };
    } catch {
      return undefined;
    }
  }
  try {
    return { pem: undefined, blocks: [{ cert: new X509Certificate(raw), start: 0, end: raw.length }] };
  } catch {
    return undefined;
  }
}

/**
 * Replaces, in `certificate-authority-data` of every cluster, each certificate that is one of
 * the CAs in `replacements` (the same bytes, or the same CA by subject and key: an earlier
 * interrupted run may have left the kubeconfig one extension behind) by its new PEM. Other
 * certificates in the data (a bundle) stay, in order. The new value is spliced into the
 * original text: every other byte of the file stays as it was (comments, order, quoting).
 */
export function replaceCaData(
  text: string,
  file: string,
  replacements: CaReplacement[],
): { text: string; changes: CaDataChange[]; unmatched: string[] } {
  const doc = parseKubeconfig(text, file);
  const clusters = doc.get('clusters');
  const splices: { start: number; end: number; value: string }[] = [];
  const changes: CaDataChange[] = [];
  const unmatched: string[] = [];
  if (isSeq(clusters)) {
    for (let i = 0; i < clusters.items.length; i++) {
      const node = doc.getIn(['clusters', i, 'cluster', 'certificate-authority-data'], true);
      const name = String(doc.getIn(['clusters', i, 'name']) ?? `#${i}`);
      if (!isScalar(node) || typeof node.value !== 'string' || !node.range) continue;
      const data = caDataBlocks(node.value);
      let matched = false;
      let pem = data?.pem;
      let der: string | undefined;
      for (const block of [...(data?.blocks ?? [])].reverse()) {
        const r = replacements.find(
          (x) => x.oldDer.equals(block.cert.raw) || isSameCa(block.cert, x.newCert),
        );
        if (!r) continue;
        matched = true;
        if (block.cert.raw.equals(r.newCert.raw)) continue; // already the new certificate
        changes.push({ cluster: name, caFile: r.caFile, replacedNotAfter: new Date(block.cert.validTo) });
        if (pem === undefined) der = r.newPem;
        else pem = replacePemBlock(pem, block, r.newPem);
      }
      if (!matched) {
        unmatched.push(name);
        continue;
      }
      const next = der ?? pem;
      if (next === undefined || next === data?.pem) continue;
      const value = Buffer.from(next).toString('base64');
      const [start, end] = node.range;
      const quote = node.type === 'QUOTE_DOUBLE' ? '"' : node.type === 'QUOTE_SINGLE' ? "'" : '';
      splices.push({ start, end, value: `${quote}${value}${quote}` });
    }
  }
  let out = text;
  for (const s of splices.sort((a, b) => b.start - a.start))
    out = out.slice(0, s.start) + s.value + out.slice(s.end);
  return { text: out, changes, unmatched };
}

export interface KubeconfigCertRef {
  /** "cluster <name>" or "user <name>" */
  entry: string;
  kind: 'ca' | 'client';
  /** embedded base64 data, or undefined when `file` is used */
  data?: string;
  /** a referenced file (resolved against the kubeconfig's directory) */
  file?: string;
  keyData?: string;
  keyFile?: string;
}

/** Every certificate a kubeconfig embeds or references: cluster CAs and user client certificates. */
export function kubeconfigCertRefs(text: string, file: string): KubeconfigCertRef[] {
  const doc = parseKubeconfig(text, file);
  const js = (doc.toJS() ?? {}) as {
    clusters?: { name?: string; cluster?: Record<string, unknown> }[];
    users?: { name?: string; user?: Record<string, unknown> }[];
  };
  const dir = path.dirname(file);
  const str = (v: unknown) => (typeof v === 'string' && v.length > 0 ? v : undefined);
  const resolve = (p: string | undefined) => (p === undefined ? undefined : path.resolve(dir, p));
  const refs: KubeconfigCertRef[] = [];
  for (const c of Array.isArray(js.clusters) ? js.clusters : []) {
    const data = str(c?.cluster?.['certificate-authority-data']);
    const ref = resolve(str(c?.cluster?.['certificate-authority']));
    if (data || ref) refs.push({ entry: `cluster ${c?.name ?? '?'}`, kind: 'ca', data, file: ref });
  }
  for (const u of Array.isArray(js.users) ? js.users : []) {
    const data = str(u?.user?.['client-certificate-data']);
    const ref = resolve(str(u?.user?.['client-certificate']));
    if (data || ref) {
      refs.push({
        entry: `user ${u?.name ?? '?'}`,
        kind: 'client',
        data,
        file: ref,
        keyData: str(u?.user?.['client-key-data']),
        keyFile: resolve(str(u?.user?.['client-key'])),
      });
    }
  }
  return refs;
}
