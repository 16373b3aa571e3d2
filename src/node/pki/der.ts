/**
 * A minimal DER reader: just enough to take the exact bytes of a certificate's subject, issuer,
 * public key and extensions. `ca extend` must reproduce them byte for byte (leaves find their
 * CA by subject DN and AKID), so they are read from the original encoding, never re-encoded.
 */

export interface Tlv {
  tag: number;
  /** offset of the tag byte */
  start: number;
  /** offset of the first content byte */
  contentStart: number;
  /** offset just past the content */
  end: number;
}

export class DerError extends Error {}

export function readTlv(buf: Uint8Array, offset: number): Tlv {
  if (offset + 2 > buf.length) throw new DerError('truncated DER: header past the end');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('unsupported DER: multi-byte tag');
  let len = buf[offset + 1]!;
  let contentStart = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new DerError('invalid DER length');
    if (contentStart + n > buf.length) throw new DerError('truncated DER: length past the end');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[contentStart + i]!;
    contentStart += n;
  }
  const end = contentStart + len;
  if (end > buf.length) throw new DerError('truncated DER: content past the end');
  return { tag, start: offset, contentStart, end };
}

/** The TLVs directly inside a constructed TLV. */
export function children(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let p = parent.contentStart;
  while (p < parent.end) {
    const t = readTlv(buf, p);
    out.push(t);
    p = t.end;
  }
  return out;
}

export function bytesOf(buf: Uint8Array, t: Tlv): Uint8Array {
  return buf.subarray(t.start, t.end);
}

export interface TbsParts {
  serial: Uint8Array;
  issuer: Uint8Array;
  subject: Uint8Array;
  spki: Uint8Array;
  /** each Extension SEQUENCE, in order, with its OID in dotted form */
  extensions: { oid: string; der: Uint8Array }[];
}

const SEQUENCE = 0x30;

/** Splits a DER certificate's TBSCertificate into the raw parts `ca extend` keeps. */
export function tbsParts(certDer: Uint8Array): TbsParts {
  const cert = readTlv(certDer, 0);
  if (cert.tag !== SEQUENCE || cert.end !== certDer.length) throw new DerError('not a DER certificate');
  const [tbs] = children(certDer, cert);
  if (!tbs || tbs.tag !== SEQUENCE) throw new DerError('certificate without a TBSCertificate');
  const fields = children(certDer, tbs);
  let i = 0;
  if (fields[0]?.tag === 0xa0) i = 1; // [0] version
  const [serial, , issuer, , subject, spki] = fields.slice(i, i + 6);
  if (!serial || !issuer || !subject || !spki) throw new DerError('TBSCertificate is missing fields');
  const extensions: TbsParts['extensions'] = [];
  const extWrapper = fields.slice(i + 6).find((f) => f.tag === 0xa3);
  if (extWrapper) {
    const [seq] = children(certDer, extWrapper);
    if (!seq) throw new DerError('empty extensions');
    for (const ext of children(certDer, seq)) {
      const [oid] = children(certDer, ext);
      if (!oid || oid.tag !== 0x06) throw new DerError('extension without an OID');
      extensions.push({
        oid: decodeOid(certDer.subarray(oid.contentStart, oid.end)),
        der: bytesOf(certDer, ext),
      });
    }
  }
  return {
    serial: bytesOf(certDer, serial),
    issuer: bytesOf(certDer, issuer),
    subject: bytesOf(certDer, subject),
    spki: bytesOf(certDer, spki),
    extensions,
  };
}

/**
 * The two AlgorithmIdentifiers a certificate names its signature algorithm with (DER): the
 * TBSCertificate's `signature` field and the outer `signatureAlgorithm`.
 */
export function signatureAlgorithms(certDer: Uint8Array): { tbs: Uint8Array; outer: Uint8Array } {
  const cert = readTlv(certDer, 0);
  const [tbs, outer] = children(certDer, cert);
  if (!tbs || !outer || outer.tag !== SEQUENCE)
    throw new DerError('certificate without a signature algorithm');
  const fields = children(certDer, tbs);
  const inner = fields[fields[0]?.tag === 0xa0 ? 2 : 1];
  if (!inner || inner.tag !== SEQUENCE) throw new DerError('TBSCertificate without a signature algorithm');
  return { tbs: bytesOf(certDer, inner), outer: bytesOf(certDer, outer) };
}

/** Whether a DER INTEGER (tag, length, content) is greater than zero. */
export function isPositiveInteger(integer: Uint8Array): boolean {
  const t = readTlv(integer, 0);
  const content = integer.subarray(t.contentStart, t.end);
  return content.length > 0 && (content[0]! & 0x80) === 0 && content.some((b) => b !== 0);
}

const OID_AKID = '2.5.29.35';

/**
 * Whether the certificate's authorityKeyIdentifier names its issuer's serial
 * (authorityCertSerialNumber, [2]). openssl matches that serial when it builds a chain.
 */
export function akidHasIssuerSerial(certDer: Uint8Array): boolean {
  const ext = tbsParts(certDer).extensions.find((e) => e.oid === OID_AKID);
  if (!ext) return false;
  const fields = children(ext.der, readTlv(ext.der, 0));
  const value = fields[fields.length - 1];
  if (!value || value.tag !== 0x04) throw new DerError('authorityKeyIdentifier without a value');
  const inner = ext.der.subarray(value.contentStart, value.end);
  return children(inner, readTlv(inner, 0)).some((t) => t.tag === 0x82);
}

export function decodeOid(content: Uint8Array): string {
  if (content.length === 0) throw new DerError('empty OID');
  const first = content[0]!;
  const parts: number[] = [
    Math.min(2, Math.floor(first / 40)),
    first - Math.min(2, Math.floor(first / 40)) * 40,
  ];
  let v = 0;
  for (let i = 1; i < content.length; i++) {
    const b = content[i]!;
    v = v * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
