import fs from 'node:fs';
import { UsageError, withPath } from '../core/errors.js';
import { showName } from '../core/dns-name.js';
import { parseInventory, type InventoryNodes } from '../core/inventory.js';

/** An inventory larger than this is refused unread: a cluster's is a few kilobytes. */
export const MAX_INVENTORY_BYTES = 1024 * 1024;

function refuse(file: string, what: string): UsageError {
  return new UsageError(
    `inventory ${showName(file)} ${what}`,
    'pass the Ansible inventory file itself (INI, or YAML ending .yml/.yaml); nothing was changed',
  );
}

/**
 * The text of an inventory file, refused before reading when it is a link, a FIFO, a device,
 * a directory or bigger than MAX_INVENTORY_BYTES, and after reading when it is not text.
 * Opened without following links and without blocking, then checked again on the open file,
 * so a swap between the check and the read is caught.
 */
export function readInventoryText(file: string): string {
  const st = fs.lstatSync(file, { throwIfNoEntry: false });
  if (!st) throw refuse(file, 'does not exist');
  if (st.isSymbolicLink()) throw refuse(file, 'is a symbolic link');
  if (!st.isFile()) throw refuse(file, 'is not a regular file');
  if (st.size > MAX_INVENTORY_BYTES) throw refuse(file, `is ${st.size} bytes, over ${MAX_INVENTORY_BYTES}`);
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (err) {
    throw withPath(err, file);
  }
  try {
    const fst = fs.fstatSync(fd);
    if (!fst.isFile() || fst.ino !== st.ino || fst.dev !== st.dev)
      throw refuse(file, 'changed while it was opened');
    const buf = Buffer.alloc(MAX_INVENTORY_BYTES + 1);
    let n = 0;
    for (;;) {
      const r = fs.readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
      if (n > MAX_INVENTORY_BYTES) throw refuse(file, `grew over ${MAX_INVENTORY_BYTES} bytes`);
    }
    const data = buf.subarray(0, n);
    if (data.includes(0)) throw refuse(file, 'is not text (it holds NUL bytes)');
    const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(data, { stream: false });
    return text;
  } catch (err) {
    if (err instanceof TypeError) throw refuse(file, 'is not UTF-8 text');
    throw withPath(err, file);
  } finally {
    fs.closeSync(fd);
  }
}

/** The nodes an inventory file names, every name checked. */
export function readInventory(file: string): InventoryNodes {
  return parseInventory(readInventoryText(file), file);
}
