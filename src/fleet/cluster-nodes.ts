import https from 'node:https';
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { KfError, messageOf, UsageError } from '../core/errors.js';
import { validateHostAddress, validateNodeName } from '../core/dns-name.js';
import type { FleetNode } from '../core/inventory.js';
import { readBoundedText } from '../adapters/bounded-read.js';

/**
 * The nodes as the cluster knows them (`rollout --kubeconfig admin.conf`): name, role from the
 * node-role labels, InternalIP. One GET of /api/v1/nodes with the kubeconfig's own credentials
 * (its CA, client certificate or token), so this host needs no kubectl.
 */

const MAX_NODE_LIST_BYTES = 32 * 1024 * 1024;

interface Kubeconfig {
  'current-context'?: string;
  contexts?: { name: string; context: { cluster: string; user: string } }[];
  clusters?: { name: string; cluster: Record<string, string | boolean | undefined> }[];
  users?: { name: string; user: Record<string, string | undefined> }[];
}

interface NodeItem {
  metadata: { name: string; labels?: Record<string, string> };
  status?: { addresses?: { type: string; address: string }[] };
}

function bad(file: string, what: string): UsageError {
  return new UsageError(
    `--kubeconfig ${file}: ${what}`,
    'pass an admin kubeconfig (e.g. /etc/kubernetes/admin.conf)',
  );
}

function dataOrFile(
  entry: Record<string, string | boolean | undefined>,
  key: string,
  base: string,
  kind: 'certificate' | 'key',
): Buffer | undefined {
  const data = entry[`${key}-data`];
  if (typeof data === 'string') return Buffer.from(data, 'base64');
  const file = entry[key];
  if (typeof file === 'string') return Buffer.from(readBoundedText(path.resolve(base, file), kind));
  return undefined;
}

/** Reads the nodes of the cluster this kubeconfig reaches. */
export async function clusterNodes(file: string, timeoutMs = 30_000): Promise<FleetNode[]> {
  const st = fs.lstatSync(file, { throwIfNoEntry: false });
  if (!st?.isFile()) throw bad(file, 'is not a regular file');
  let kc: Kubeconfig;
  try {
    kc = parseYaml(readBoundedText(file, 'kubeconfig')) as Kubeconfig;
  } catch (err) {
    if (err instanceof KfError) throw err;
    throw bad(file, `is not YAML (${messageOf(err).split('\n')[0]})`);
  }
  const ctxName = kc['current-context'];
  const ctx = kc.contexts?.find((c) => c.name === ctxName)?.context ?? kc.contexts?.[0]?.context;
  const cluster = kc.clusters?.find((c) => c.name === ctx?.cluster)?.cluster ?? kc.clusters?.[0]?.cluster;
  const user = kc.users?.find((u) => u.name === ctx?.user)?.user ?? kc.users?.[0]?.user ?? {};
  const server = cluster?.server;
  if (typeof server !== 'string' || !/^https:\/\//.test(server)) throw bad(file, 'names no https server');
  const base = path.dirname(path.resolve(file));
  const ca = dataOrFile(cluster!, 'certificate-authority', base, 'certificate');
  const cert = dataOrFile(user, 'client-certificate', base, 'certificate');
  const key = dataOrFile(user, 'client-key', base, 'key');
  const token = user.token;
  const url = new URL('/api/v1/nodes', server);
  const body = await new Promise<string>((resolve, reject) => {
    const req = https.get(
      url,
      {
        ...(ca ? { ca } : {}),
        ...(cert && key ? { cert, key } : {}),
        ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}),
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_NODE_LIST_BYTES)
            req.destroy(new Error(`the node list is over ${MAX_NODE_LIST_BYTES} bytes`));
          else chunks.push(c);
        });
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200)
            reject(new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200).replace(/\s+/g, ' ')}`));
          else resolve(text);
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
    req.on('error', reject);
  }).catch((err: unknown) => {
    throw new KfError(
      `the nodes could not be read from ${server} (--kubeconfig ${file}): ${messageOf(err).split('\n')[0]}`,
      'when the API is down or its certificates expired, pass --inventory instead (the rescue needs no API)',
    );
  });
  let items: NodeItem[];
  try {
    items = (JSON.parse(body) as { items: NodeItem[] }).items;
    if (!Array.isArray(items)) throw new Error('no items');
  } catch {
    throw new KfError(`${server}/api/v1/nodes did not answer a node list`, 'check the kubeconfig’s server');
  }
  return items.map((i) => {
    const where = `the cluster's node ${JSON.stringify(i.metadata.name)}`;
    const labels = i.metadata.labels ?? {};
    const cp =
      'node-role.kubernetes.io/control-plane' in labels || 'node-role.kubernetes.io/master' in labels;
    const ip = i.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;
    const name = validateNodeName(i.metadata.name, where);
    return { name, role: cp ? 'control-plane' : 'worker', address: validateHostAddress(ip ?? name, where) };
  });
}

/**
 * The cluster's nodes with an inventory's: the cluster says which nodes there are and their
 * roles; the inventory, where it names a node, how ssh reaches it (address, user, port).
 */
export function mergeNodes(fromCluster: FleetNode[], fromInventory: FleetNode[]): FleetNode[] {
  const byName = new Map(fromInventory.map((n) => [n.name, n]));
  const out = fromCluster.map((c) => {
    const inv = byName.get(c.name);
    return inv ? { ...inv, role: c.role } : c;
  });
  for (const inv of fromInventory) if (!out.some((n) => n.name === inv.name)) out.push(inv);
  return out;
}
