import fs from 'node:fs/promises';
import type { Platform } from '../../core/types.js';

/**
 * Which machine a binary was built for, read from its header alone (ELF for Linux, PE for
 * Windows), so a cross-built kubeadm can be checked on a host that cannot run it.
 */
export interface BinaryMachine {
  format: 'elf' | 'pe';
  /** ELF e_machine or PE Machine */
  machine: number;
  /** 32 or 64 (ELF class; PE: from the machine) */
  bits: 32 | 64;
  endian: 'little' | 'big';
  /** the GOARCH this header corresponds to, or "" when it is none Go builds */
  goArch: string;
}

// ELF e_machine values (System V gABI) for the GOARCHes Kubernetes ships.
const EM_386 = 3;
const EM_MIPS = 8;
const EM_PPC64 = 21;
const EM_S390 = 22;
const EM_ARM = 40;
const EM_X86_64 = 62;
const EM_AARCH64 = 183;
const EM_RISCV = 243;
const EM_LOONGARCH = 258;

// PE Machine values.
const PE_AMD64 = 0x8664;
const PE_ARM64 = 0xaa64;
const PE_I386 = 0x14c;

function elfGoArch(machine: number, bits: 32 | 64, endian: 'little' | 'big'): string {
  switch (machine) {
    case EM_X86_64:
      return 'amd64';
    case EM_AARCH64:
      return 'arm64';
    case EM_386:
      return '386';
    case EM_ARM:
      return 'arm';
    case EM_PPC64:
      return endian === 'little' ? 'ppc64le' : 'ppc64';
    case EM_S390:
      return bits === 64 ? 's390x' : '';
    case EM_RISCV:
      return bits === 64 ? 'riscv64' : '';
    case EM_LOONGARCH:
      return 'loong64';
    case EM_MIPS:
      return (bits === 64 ? 'mips64' : 'mips') + (endian === 'little' ? 'le' : '');
    default:
      return '';
  }
}

/** Parses the first bytes of a binary; null when it is neither ELF nor PE. */
export function parseBinaryHeader(head: Buffer): BinaryMachine | null {
  if (head.length >= 20 && head[0] === 0x7f && head.toString('latin1', 1, 4) === 'ELF') {
    const cls = head[4];
    const data = head[5];
    if ((cls !== 1 && cls !== 2) || (data !== 1 && data !== 2)) return null;
    const bits = cls === 2 ? 64 : 32;
    const endian = data === 1 ? 'little' : 'big';
    const machine = endian === 'little' ? head.readUInt16LE(18) : head.readUInt16BE(18);
    return { format: 'elf', machine, bits, endian, goArch: elfGoArch(machine, bits, endian) };
  }
  if (head.length >= 0x40 && head.toString('latin1', 0, 2) === 'MZ') {
    const peOffset = head.readUInt32LE(0x3c);
    if (peOffset + 6 > head.length || head.toString('latin1', peOffset, peOffset + 4) !== 'PE\0\0')
      return null;
    const machine = head.readUInt16LE(peOffset + 4);
    const goArch =
      machine === PE_AMD64 ? 'amd64' : machine === PE_ARM64 ? 'arm64' : machine === PE_I386 ? '386' : '';
    return { format: 'pe', machine, bits: machine === PE_I386 ? 32 : 64, endian: 'little', goArch };
  }
  return null;
}

/** The format a GOOS produces, or undefined when this tool does not check it. */
function formatFor(os: string): 'elf' | 'pe' | undefined {
  if (os === 'windows') return 'pe';
  if (os === 'linux' || os === 'freebsd' || os === 'netbsd' || os === 'openbsd') return 'elf';
  return undefined;
}

export type MachineCheck =
  | { result: 'match' }
  | { result: 'mismatch'; reason: string }
  /** a platform whose binary format this tool does not parse (e.g. darwin/Mach-O) */
  | { result: 'unchecked'; reason: string };

export function checkMachine(head: Buffer, platform: Platform): MachineCheck {
  const want = formatFor(platform.os);
  const name = `${platform.os}/${platform.arch}`;
  if (!want)
    return {
      result: 'unchecked',
      reason: `cannot check a ${name} binary header (only ELF and PE are parsed)`,
    };
  const got = parseBinaryHeader(head);
  if (!got)
    return { result: 'mismatch', reason: `not an ${want.toUpperCase()} binary (expected one for ${name})` };
  if (got.format !== want) {
    return {
      result: 'mismatch',
      reason: `a ${got.format.toUpperCase()} binary, expected ${want.toUpperCase()} for ${name}`,
    };
  }
  if (got.goArch !== platform.arch) {
    const what = got.goArch || `machine ${got.machine}`;
    return {
      result: 'mismatch',
      reason: `built for ${what} (${got.format} machine ${got.machine}), expected ${platform.arch}`,
    };
  }
  return { result: 'match' };
}

/**
 * Why `head` is not a binary for `platform`, or null when it is. Platforms whose format this
 * tool does not parse are reported too ("cannot check ..."), never passed silently.
 */
export function machineMismatch(head: Buffer, platform: Platform): string | null {
  const c = checkMachine(head, platform);
  return c.result === 'match' ? null : c.reason;
}

/** Only a definite mismatch (for the cache and bundles, which carry any platform Go builds). */
export function wrongMachine(head: Buffer, platform: Platform): string | null {
  const c = checkMachine(head, platform);
  return c.result === 'mismatch' ? c.reason : null;
}

/** Bytes needed to read any header parseBinaryHeader understands (PE offsets are small for Go). */
const HEAD_BYTES = 4096;

export async function readBinaryHead(file: string): Promise<Buffer> {
  const fh = await fs.open(file, 'r');
  try {
    const buf = Buffer.alloc(HEAD_BYTES);
    const { bytesRead } = await fh.read(buf, 0, HEAD_BYTES, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}
