import { createHash } from 'node:crypto';

/** sha256 of bytes or text (UTF-8), lowercase hex: the digest every record of this tool uses. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}
