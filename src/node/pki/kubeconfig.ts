import fs from 'node:fs';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { isAlias, isMap, isScalar, isSeq, parseDocument, visit, type Document, type Scalar } from 'yaml';
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

// client-go reads kubeconfigs with go-yaml, which honours merge keys (`<<: *base`): so must we,
// or CA data merged in from an anchor would be invisible here and left on the old CA.
const PARSE_OPTIONS = { merge: true } as const;

function parseKubeconfig(text: string, file: string): Document {
  const doc = parseDocument(text, PARSE_OPTIONS);
  if (doc.errors.length > 0) {
    throw new KfError(
      `${file} is not valid YAML (${doc.errors[0]!.message.split('\n')[0]})`,
      'fix or restore the kubeconfig',
    );
  }
  return doc;
}

/** `node` with an alias followed to its anchored node (no expansion beyond that one step). */
function deref(doc: Document, node: unknown): unknown {
  return isAlias(node) ? node.resolve(doc) : node;
}

const isMergeKey = (key: unknown) =>
  isScalar(key) && typeof key.value === 'symbol' && key.value.description === '<<';

/**
 * The node under `key` in the mapping `map` (aliases followed), as go-yaml sees it: the map's
 * own key first, then merge sources in order (`<<: *a` or `<<: [*a, *b]`, earlier ones win).
 */
function mapGet(doc: Document, map: unknown, key: string, depth = 0): unknown {
  const m = deref(doc, map);
  if (!isMap(m) || depth > 16) return undefined;
  for (const pair of m.items) if (isScalar(pair.key) && pair.key.value === key) return deref(doc, pair.value);
  for (const pair of m.items) {
    if (!isMergeKey(pair.key)) continue;
    const source = deref(doc, pair.value);
    for (const s of isSeq(source) ? source.items : [source]) {
      const found = mapGet(doc, s, key, depth + 1);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

function seqItems(doc: Document, node: unknown): unknown[] {
  const s = deref(doc, node);
  return isSeq(s) ? s.items : [];
}

function looksLikeKubeconfig(doc: Document): boolean {
  return (
    isMap(doc.contents) &&
    (isSeq(deref(doc, mapGet(doc, doc.contents, 'clusters'))) ||
      isSeq(deref(doc, mapGet(doc, doc.contents, 'users'))))
  );
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
      if (looksLikeKubeconfig(parseDocument(text, PARSE_OPTIONS))) scan.found.push({ file, text });
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

/** The certificates of `certificate-authority-data` bytes: PEM (one or several) or DER. */
function caDataBlocks(raw: Buffer): { pem: string | undefined; blocks: PemCertificate[] } | undefined {
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
 * The bytes a `*-data` scalar carries: base64 text (whitespace ignored, as kubeadm's readers
 * of a folded value would), or the bytes of a `!!binary` value. undefined: not data at all.
 */
function scalarBytes(value: unknown): Buffer | undefined {
  if (typeof value === 'string') return Buffer.from(value.replace(/\s+/g, ''), 'base64');
  if (value instanceof Uint8Array) return Buffer.from(value);
  return undefined;
}

/**
 * The text that replaces `node`'s source bytes so that it reads `b64`, in the node's own style:
 * plain stays plain, quotes stay (on one line), a block scalar keeps its header line (indicators
 * and comment), its indentation and its trailing line breaks, with the data on one line (a
 * folded or multi-line value would read as base64 with spaces, which client-go rejects).
 */
function renderScalar(
  text: string,
  node: Scalar,
  b64: string,
): { start: number; end: number; value: string } {
  const [start, end] = node.range!;
  if (node.type === 'BLOCK_LITERAL' || node.type === 'BLOCK_FOLDED') {
    const region = text.slice(start, end);
    const headerEnd = region.indexOf('\n') + 1;
    const body = region.slice(headerEnd);
    const first = /\S/.exec(body);
    if (headerEnd === 0 || !first) return { start, end, value: region }; // nothing to keep: the check refuses it
    const indent = body.slice(body.lastIndexOf('\n', first.index - 1) + 1, first.index);
    const tail = body.slice(body.search(/\s*$/));
    return { start, end, value: `${region.slice(0, headerEnd)}${indent}${b64}${tail}` };
  }
  const quote = node.type === 'QUOTE_DOUBLE' ? '"' : node.type === 'QUOTE_SINGLE' ? "'" : '';
  return { start, end, value: `${quote}${b64}${quote}` };
}

interface Splice {
  node: Scalar;
  /** the clusters whose CA data this scalar is (several, through an alias or a merge) */
  clusters: string[];
  data: Buffer;
  start: number;
  end: number;
  value: string;
}

function refusal(
  file: string,
  cluster: string,
  why: string,
  next = 'write it as one plain base64 value (certificate-authority-data: LS0t...) and run again',
): KfError {
  return new KfError(
    `${file}: the certificate-authority-data of cluster ${cluster} cannot be rewritten in place (${why})`,
    `${next}; nothing was written`,
  );
}

/**
 * Applies `splices` (source ranges of `doc`'s scalars) to `text`, then proves by parsing the
 * result that each of those scalars now carries its new data as clean base64 and that nothing
 * else in the document changed (values, keys, anchors, merges: the documents are equal once
 * the spliced values are set back). Anything else is refused, naming the file and cluster.
 */
function applySplices(text: string, doc: Document, file: string, splices: Splice[]): string {
  const ordered = [...splices].sort((a, b) => a.start - b.start);
  let out = '';
  let at = 0;
  const newStarts = new Map<number, Splice>();
  for (const s of ordered) {
    out += text.slice(at, s.start);
    newStarts.set(out.length, s);
    out += s.value;
    at = s.end;
  }
  out += text.slice(at);
  const first = ordered[0]?.clusters[0] ?? '?';
  const after = parseDocument(out, PARSE_OPTIONS);
  if (after.errors.length > 0)
    throw refusal(file, first, `the result would not parse: ${after.errors[0]!.message.split('\n')[0]}`);
  const found = new Map<Splice, Scalar>();
  visit(after, {
    Scalar(_key, node) {
      const s = node.range ? newStarts.get(node.range[0]) : undefined;
      if (s) found.set(s, node);
    },
  });
  for (const s of ordered) {
    const node = found.get(s);
    const cluster = s.clusters.join(', ');
    if (!node) throw refusal(file, cluster, 'the new value is not found where the old one was');
    const clean = typeof node.value !== 'string' || /^[A-Za-z0-9+/]+={0,2}\n*$/.test(node.value);
    const bytes = scalarBytes(node.value);
    if (!clean || !bytes?.equals(s.data))
      throw refusal(file, cluster, `its ${s.node.type ?? ''} form does not read back as the new data`);
    node.value = s.node.value;
  }
  let same: boolean;
  try {
    same = isDeepStrictEqual(after.toJS(), doc.toJS());
  } catch (err) {
    // e.g. a "billion laughs" of aliases, which client-go refuses as well
    throw refusal(
      file,
      first,
      `the file cannot be read whole: ${messageOf(err).split('\n')[0]}`,
      'fix or restore the kubeconfig and run again',
    );
  }
  if (!same) throw refusal(file, first, 'the edit would change more than that value');
  return out;
}

/**
 * Replaces, in `certificate-authority-data` of every cluster, each certificate that is one of
 * the CAs in `replacements` (the same bytes, or the same CA by subject and key: an earlier
 * interrupted run may have left the kubeconfig one extension behind) by its new PEM. Other
 * certificates in the data (a bundle) stay, in order. The YAML structure finds the value
 * (through aliases, merge keys and flow mappings); only its source bytes change, in its own
 * style, and the result is parsed again to prove that nothing else did: every other byte of
 * the file stays as it was (comments, order, quoting). A value that cannot be rewritten so is
 * refused (KfError naming the file and cluster).
 */
export function replaceCaData(
  text: string,
  file: string,
  replacements: CaReplacement[],
): { text: string; changes: CaDataChange[]; unmatched: string[] } {
  const doc = parseKubeconfig(text, file);
  const splices = new Map<Scalar, Splice>();
  const changes: CaDataChange[] = [];
  const unmatched: string[] = [];
  seqItems(doc, mapGet(doc, doc.contents, 'clusters')).forEach((entry, i) => {
    const nameNode = mapGet(doc, entry, 'name');
    const name = isScalar(nameNode) && nameNode.value != null ? String(nameNode.value) : `#${i}`;
    const node = mapGet(doc, mapGet(doc, entry, 'cluster'), 'certificate-authority-data');
    if (node === undefined || (isScalar(node) && node.value === null)) return; // no embedded CA
    const raw = isScalar(node) ? scalarBytes(node.value) : undefined;
    const data = raw ? caDataBlocks(raw) : undefined;
    let matched = false;
    let pem = data?.pem;
    let der: string | undefined;
    for (const block of [...(data?.blocks ?? [])].reverse()) {
      const r = replacements.find((x) => x.oldDer.equals(block.cert.raw) || isSameCa(block.cert, x.newCert));
      if (!r) continue;
      matched = true;
      if (block.cert.raw.equals(r.newCert.raw)) continue; // already the new certificate
      changes.push({ cluster: name, caFile: r.caFile, replacedNotAfter: new Date(block.cert.validTo) });
      if (pem === undefined) der = r.newPem;
      else pem = replacePemBlock(pem, block, r.newPem);
    }
    if (!matched) {
      unmatched.push(name);
      return;
    }
    const next = der ?? pem;
    if (next === undefined || next === data?.pem || !isScalar(node)) return;
    const known = splices.get(node);
    if (known) {
      known.clusters.push(name); // the same scalar reached again: same data, same result
      return;
    }
    if (!node.range) throw refusal(file, name, 'it has no source position');
    const newData = Buffer.from(next);
    splices.set(node, {
      node,
      clusters: [name],
      data: newData,
      ...renderScalar(text, node, newData.toString('base64')),
    });
  });
  const out = splices.size > 0 ? applySplices(text, doc, file, [...splices.values()]) : text;
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
  const str = (v: unknown) =>
    v instanceof Uint8Array // a `!!binary` value: its bytes, as base64 like the others
      ? Buffer.from(v).toString('base64')
      : typeof v === 'string' && v.length > 0
        ? v
        : undefined;
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
