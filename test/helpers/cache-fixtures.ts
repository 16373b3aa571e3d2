import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ManifestInput } from '../../src/core/cache-manifest.js';

/** ELF e_machine per GOARCH, written from the System V gABI (independent of src/cache/elf.ts). */
const EM: Record<string, number> = {
  amd64: 62,
  arm64: 183,
  '386': 3,
  arm: 40,
  ppc64le: 21,
  s390x: 22,
  riscv64: 243,
};

/**
 * A small fake binary: a real 64-byte ELF header (little-endian, 64-bit unless 386/arm) for
 * `arch`, then `size - 64` pseudo-random bytes derived from `seed`.
 */
export function fakeElf(arch: string, seed = 'x', size = 4096): Buffer {
  const buf = Buffer.alloc(size);
  crypto.createHash('sha512').update(seed).digest().copy(buf, 64);
  for (let i = 128; i < size; i++) buf[i] = (buf[i - 64]! * 31 + i) & 0xff;
  buf.write('\x7fELF', 0, 'latin1');
  buf[4] = arch === '386' || arch === 'arm' ? 1 : 2; // EI_CLASS
  buf[5] = arch === 's390x' ? 2 : 1; // EI_DATA
  buf[6] = 1; // EI_VERSION
  buf.writeUInt16LE(2, 16); // ET_EXEC
  if (arch === 's390x') buf.writeUInt16BE(EM[arch]!, 18);
  else buf.writeUInt16LE(EM[arch]!, 18);
  return buf;
}

export function writeFakeElf(dir: string, arch: string, seed = 'x', size = 4096): string {
  const file = path.join(dir, `fake-${arch}-${seed}`);
  fs.writeFileSync(file, fakeElf(arch, seed, size), { mode: 0o755 });
  return file;
}

export function keyFor(name: string): string {
  return crypto.createHash('sha256').update(name).digest('hex');
}

export function manifestInput(
  key: string,
  platform: string,
  over: Partial<ManifestInput> = {},
): ManifestInput {
  return {
    key,
    inputs: { gitVersion: 'v1.20.2', validity: { hours: 1743240, text: '199y' } },
    gitVersion: 'v1.20.2',
    gitCommit: 'faecb196815e248d3ecfb03c680a4507229c2a56',
    goVersion: 'go1.19.8',
    platform,
    validity: { hours: 1743240, text: '199y' },
    caValidity: { hours: 1752000, text: '200y' },
    image: 'local/golang:1.19.8',
    imageId: 'sha256:' + '0'.repeat(64),
    patches: '--- a/cmd/kubeadm/app/constants/constants.go\n+++ b/cmd/kubeadm/app/constants/constants.go\n',
    toolVersion: '0.1.0',
    ...over,
  };
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `kf-${prefix}-`));
}

/** Every path under dir (relative), for "nothing else was written" checks. */
export function listTree(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).map(String).sort();
}
