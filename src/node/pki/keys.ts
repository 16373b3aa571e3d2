import crypto, { type KeyObject, type webcrypto } from 'node:crypto';
import { KfError } from '../../core/errors.js';

/** Key types `ca init` can generate (kubeadm's default is RSA 2048). */
export const KEY_TYPES = ['rsa-2048', 'rsa-4096', 'ecdsa-p256'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

/** A private key as node and WebCrypto see it, with the algorithm certificates are signed with. */
export interface SigningKey {
  privateKey: KeyObject;
  /** the WebCrypto key @peculiar/x509 signs with */
  webKey: webcrypto.CryptoKey;
  /** SubjectPublicKeyInfo DER */
  spki: Uint8Array;
  signingAlgorithm: webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams;
}

const CURVES: Record<string, { namedCurve: string; hash: string }> = {
  prime256v1: { namedCurve: 'P-256', hash: 'SHA-256' },
  secp384r1: { namedCurve: 'P-384', hash: 'SHA-384' },
  secp521r1: { namedCurve: 'P-521', hash: 'SHA-512' },
};

/**
 * Parses a PEM private key: PKCS#1 "RSA PRIVATE KEY" (what kubeadm writes), SEC1
 * "EC PRIVATE KEY", or PKCS#8 "PRIVATE KEY". `source` names the file in errors.
 */
export async function loadPrivateKey(pem: string | Buffer, source: string): Promise<SigningKey> {
  let privateKey: KeyObject;
  try {
    privateKey = crypto.createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new KfError(
      `${source} is not a readable private key (${(err as Error).message.split('\n')[0]})`,
      'point at an unencrypted PEM key (RSA PRIVATE KEY, EC PRIVATE KEY or PRIVATE KEY), as kubeadm writes it',
    );
  }
  return toSigningKey(privateKey, source);
}

export async function toSigningKey(privateKey: KeyObject, source: string): Promise<SigningKey> {
  const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
  const spki = new Uint8Array(crypto.createPublicKey(privateKey).export({ type: 'spki', format: 'der' }));
  let signingAlgorithm: webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams;
  if (privateKey.asymmetricKeyType === 'rsa') {
    signingAlgorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  } else if (privateKey.asymmetricKeyType === 'ec') {
    const curve = CURVES[privateKey.asymmetricKeyDetails?.namedCurve ?? ''];
    if (!curve) {
      throw new KfError(
        `${source} uses the curve ${privateKey.asymmetricKeyDetails?.namedCurve ?? '?'}, which is not supported`,
        'use an RSA key or an EC key on P-256, P-384 or P-521',
      );
    }
    signingAlgorithm = {
      name: 'ECDSA',
      namedCurve: curve.namedCurve,
      hash: curve.hash,
    } as webcrypto.EcKeyImportParams;
  } else {
    throw new KfError(
      `${source} is a ${privateKey.asymmetricKeyType ?? 'unknown'} key, which is not supported`,
      'use an RSA or EC key, as kubeadm does',
    );
  }
  const webKey = await crypto.webcrypto.subtle.importKey('pkcs8', pkcs8, signingAlgorithm, false, ['sign']);
  return { privateKey, webKey, spki, signingAlgorithm };
}

/** A certificate's signature algorithm in WebCrypto terms, as @peculiar/x509 reads it. */
export interface SignatureAlgorithm {
  name: string;
  hash?: string | { name: string };
  saltLength?: number;
}

const HASHES = ['SHA-1', 'SHA-256', 'SHA-384', 'SHA-512'];

/**
 * `key` set up to sign with `algorithm` (an existing certificate's own), or undefined when that
 * algorithm is not one this key can sign with here. WebCrypto binds an RSA key to one padding
 * and hash at import, so the key is imported again for them; ECDSA takes the hash per signature.
 */
export async function keyForAlgorithm(
  key: SigningKey,
  algorithm: SignatureAlgorithm,
): Promise<SigningKey | undefined> {
  const hash = typeof algorithm.hash === 'string' ? algorithm.hash : algorithm.hash?.name;
  if (!hash || !HASHES.includes(hash.toUpperCase())) return undefined;
  const type = key.privateKey.asymmetricKeyType;
  const pkcs8 = key.privateKey.export({ type: 'pkcs8', format: 'der' });
  const name = algorithm.name.toUpperCase();
  if (name === 'ECDSA' && type === 'ec') {
    const { namedCurve } = key.signingAlgorithm as webcrypto.EcKeyImportParams;
    return { ...key, signingAlgorithm: { name: 'ECDSA', namedCurve, hash } as webcrypto.EcKeyImportParams };
  }
  if ((name === 'RSASSA-PKCS1-V1_5' || name === 'RSA-PSS') && type === 'rsa') {
    const params = { name: algorithm.name, hash };
    if (name === 'RSA-PSS' && typeof algorithm.saltLength !== 'number') return undefined;
    const webKey = await crypto.webcrypto.subtle.importKey('pkcs8', pkcs8, params, false, ['sign']);
    const signingAlgorithm = (
      name === 'RSA-PSS' ? { ...params, saltLength: algorithm.saltLength } : params
    ) as webcrypto.RsaHashedImportParams;
    return { ...key, webKey, signingAlgorithm };
  }
  return undefined;
}

export async function generateKey(type: KeyType): Promise<SigningKey> {
  const privateKey = await new Promise<KeyObject>((resolve, reject) => {
    const done = (err: Error | null, _pub: KeyObject, priv: KeyObject) => (err ? reject(err) : resolve(priv));
    if (type === 'ecdsa-p256') crypto.generateKeyPair('ec', { namedCurve: 'prime256v1' }, done);
    else crypto.generateKeyPair('rsa', { modulusLength: type === 'rsa-4096' ? 4096 : 2048 }, done);
  });
  return toSigningKey(privateKey, `generated ${type} key`);
}

/** PEM as kubeadm writes it: PKCS#1 for RSA, SEC1 for EC. */
export function privateKeyPem(key: KeyObject): string {
  const type = key.asymmetricKeyType === 'rsa' ? 'pkcs1' : key.asymmetricKeyType === 'ec' ? 'sec1' : 'pkcs8';
  return key.export({ type, format: 'pem' }).toString();
}
