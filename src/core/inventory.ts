import { parseDocument } from 'yaml';
import { UsageError } from './errors.js';
import {
  showName,
  validateHostAddress,
  validateNodeName,
  validatePort,
  validateUserName,
} from './dns-name.js';

/**
 * Ansible inventories (INI and YAML), read the way `ansible-inventory --list` reads them for the
 * parts a rollout needs: hosts, their groups (transitively, through `children`) and the
 * connection variables ansible_host, ansible_user and ansible_port, with Ansible's precedence
 * (group vars by depth below `all`, then name; host vars last). Host ranges (`node[01:10]`) are
 * refused rather than guessed.
 */

type Vars = Record<string, unknown>;

interface GroupData {
  hosts: Set<string>;
  children: Set<string>;
  vars: Vars;
}

/** An inventory as its file declares it, before precedence. */
export interface InventoryModel {
  groups: Map<string, GroupData>;
  hostVars: Map<string, Vars>;
  /** hosts in declaration order */
  hostOrder: string[];
}

/** One host as Ansible resolves it. */
export interface InventoryHost {
  name: string;
  /** every group it is in, directly or through children, 'all' included, sorted */
  groups: string[];
  vars: Vars;
}

/** At most this many hosts: a bigger file is refused as not a cluster inventory. */
export const MAX_INVENTORY_HOSTS = 5000;

function newModel(): InventoryModel {
  const m: InventoryModel = { groups: new Map(), hostVars: new Map(), hostOrder: [] };
  group(m, 'all');
  group(m, 'ungrouped');
  return m;
}

function group(m: InventoryModel, name: string): GroupData {
  let g = m.groups.get(name);
  if (!g) {
    g = { hosts: new Set(), children: new Set(), vars: {} };
    m.groups.set(name, g);
  }
  return g;
}

function addHost(m: InventoryModel, file: string, pattern: string, groupName: string, vars: Vars): void {
  const { name, port } = splitHostPattern(pattern, file);
  if (!m.hostVars.has(name)) {
    if (m.hostOrder.length >= MAX_INVENTORY_HOSTS) {
      throw new UsageError(
        `inventory ${file} has more than ${MAX_INVENTORY_HOSTS} hosts`,
        'pass the inventory of one cluster; nothing was changed',
      );
    }
    m.hostVars.set(name, {});
    m.hostOrder.push(name);
  }
  const hv = m.hostVars.get(name)!;
  if (port !== undefined) hv.ansible_port = port;
  Object.assign(hv, vars);
  group(m, groupName).hosts.add(name);
}

/** `name`, `name:port` or `[v6]:port`; ranges refused. */
function splitHostPattern(pattern: string, file: string): { name: string; port?: number } {
  if (/\[[^\]]*:[^\]]*\]/.test(pattern) && !/^\[[0-9a-fA-F:.]+\](:\d+)?$/.test(pattern)) {
    throw new UsageError(
      `inventory ${file}: host ${showName(pattern)} is a range pattern, which this tool does not expand`,
      'list each host on its own line; nothing was changed',
    );
  }
  const v6 = /^\[([0-9a-fA-F:.]+)\](?::(\d+))?$/.exec(pattern);
  if (v6) return { name: v6[1]!, port: v6[2] === undefined ? undefined : Number(v6[2]) };
  const hp = /^([^:]+):(\d+)$/.exec(pattern);
  if (hp) return { name: hp[1]!, port: Number(hp[2]) };
  return { name: pattern };
}

/** A value as Ansible's INI reader turns it into Python: a number, a boolean, an unquoted string. */
function iniValue(raw: string): unknown {
  const v = raw.trim();
  if (/^-?[0-9]+$/.test(v)) return Number(v);
  if (v === 'True') return true;
  if (v === 'False') return false;
  const q = /^(['"])(.*)\1$/s.exec(v);
  if (q) return q[2]!;
  return v;
}

/** POSIX shlex.split with comments: how Ansible splits an INI host line into words. */
function shlexSplit(line: string, file: string, lineNo: number): string[] {
  const words: string[] = [];
  let cur: string | undefined;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else cur = (cur ?? '') + c;
    } else if (quote === '"') {
      if (c === '"') quote = undefined;
      else if (c === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\')) cur = (cur ?? '') + line[++i]!;
      else cur = (cur ?? '') + c;
    } else if (c === ' ' || c === '\t' || c === '\r') {
      if (cur !== undefined) words.push(cur);
      cur = undefined;
    } else if (c === '#' && cur === undefined) {
      break;
    } else if (c === "'" || c === '"') {
      quote = c;
      cur ??= '';
    } else if (c === '\\') {
      cur = (cur ?? '') + (line[i + 1] ?? '');
      i++;
    } else {
      cur = (cur ?? '') + c;
    }
  }
  if (quote) {
    throw new UsageError(
      `inventory ${file} line ${lineNo}: unclosed quotation`,
      'close the quote or pass an Ansible inventory; nothing was changed',
    );
  }
  if (cur !== undefined) words.push(cur);
  return words;
}

const SECTION = /^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$/;
const GROUP_LINE = /^([^:\]\s]+)\s*(?:#.*)?$/;

/** An INI inventory as Ansible's ini plugin reads it. */
export function parseIniInventory(text: string, file: string): InventoryModel {
  const m = newModel();
  let current = 'ungrouped';
  let state: 'hosts' | 'vars' | 'children' = 'hosts';
  const pendingVars = new Map<string, number>();
  const lines = text.split('\n');
  const bad = (lineNo: number, what: string) =>
    new UsageError(
      `inventory ${file} line ${lineNo}: ${what}`,
      'pass an Ansible inventory in INI or YAML format; nothing was changed',
    );
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    if (line.startsWith('[')) {
      const s = SECTION.exec(line);
      if (!s) throw bad(lineNo, `invalid section ${showName(line)}`);
      const st = s[2] ?? 'hosts';
      if (st !== 'hosts' && st !== 'vars' && st !== 'children')
        throw bad(lineNo, `section [${s[1]}:${st}] has an unknown kind (hosts, vars or children)`);
      current = s[1]!;
      state = st;
      if (state === 'vars' && !m.groups.has(current)) pendingVars.set(current, lineNo);
      else group(m, current);
      continue;
    }
    if (state === 'hosts') {
      const [pattern, ...assignments] = shlexSplit(line, file, lineNo);
      if (pattern === undefined) continue;
      const vars: Vars = {};
      for (const a of assignments) {
        const eq = a.indexOf('=');
        if (eq <= 0) throw bad(lineNo, `expected key=value after the host, got ${showName(a)}`);
        vars[a.slice(0, eq)] = iniValue(a.slice(eq + 1));
      }
      addHost(m, file, pattern, current, vars);
    } else if (state === 'vars') {
      const eq = line.indexOf('=');
      if (eq <= 0) throw bad(lineNo, `expected key=value in [${current}:vars], got ${showName(line)}`);
      group(m, current).vars[line.slice(0, eq).trim()] = iniValue(line.slice(eq + 1));
    } else {
      const c = GROUP_LINE.exec(line);
      if (!c) throw bad(lineNo, `invalid group name ${showName(line)} in [${current}:children]`);
      group(m, current).children.add(c[1]!);
      group(m, c[1]!);
    }
  }
  for (const [g, lineNo] of pendingVars) {
    if (!m.groups.has(g) || isOnlyVars(m, g)) {
      const used = [...m.groups.values()].some((d) => d.children.has(g));
      if (!used) throw bad(lineNo, `[${g}:vars] is for a group that is never defined`);
    }
  }
  return m;
}

function isOnlyVars(m: InventoryModel, g: string): boolean {
  const d = m.groups.get(g)!;
  return d.hosts.size === 0 && d.children.size === 0;
}

function asMapping(v: unknown, file: string, where: string): Record<string, unknown> {
  if (v === null || v === undefined) return {};
  if (typeof v !== 'object' || Array.isArray(v)) {
    throw new UsageError(
      `inventory ${file}: ${where} is not a mapping`,
      'pass an Ansible inventory in INI or YAML format; nothing was changed',
    );
  }
  return v as Record<string, unknown>;
}

/** A YAML (or JSON) inventory as Ansible's yaml plugin reads it. */
export function parseYamlInventory(text: string, file: string): InventoryModel {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new UsageError(
      `inventory ${file} is not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`,
      'pass an Ansible inventory in INI or YAML format; nothing was changed',
    );
  }
  const top = asMapping(doc.toJS({ maxAliasCount: 100 }), file, 'the document');
  if (Object.keys(top).length === 0) {
    throw new UsageError(
      `inventory ${file} is empty`,
      'pass an Ansible inventory in INI or YAML format; nothing was changed',
    );
  }
  const m = newModel();
  const walk = (name: string, data: unknown, depth: number) => {
    if (depth > 50)
      throw new UsageError(`inventory ${file}: groups nested too deep`, 'flatten the inventory');
    const g = group(m, name);
    const d = asMapping(data, file, `group ${showName(name)}`);
    for (const key of Object.keys(d)) {
      if (key !== 'hosts' && key !== 'vars' && key !== 'children') {
        throw new UsageError(
          `inventory ${file}: group ${showName(name)} has the key ${showName(key)} (expected hosts, vars, children)`,
          'pass an Ansible inventory in INI or YAML format; nothing was changed',
        );
      }
    }
    Object.assign(g.vars, asMapping(d.vars, file, `vars of group ${showName(name)}`));
    for (const [h, hv] of Object.entries(asMapping(d.hosts, file, `hosts of group ${showName(name)}`))) {
      addHost(m, file, h, name, asMapping(hv, file, `host ${showName(h)}`));
    }
    for (const [c, cd] of Object.entries(
      asMapping(d.children, file, `children of group ${showName(name)}`),
    )) {
      g.children.add(c);
      walk(c, cd, depth + 1);
    }
  };
  for (const [name, data] of Object.entries(top)) walk(name, data, 0);
  return m;
}

/** A group that is its own descendant is refused, as Ansible refuses it ("recursive dependency loop"). */
function refuseCycles(m: InventoryModel): void {
  const state = new Map<string, 'open' | 'done'>();
  const walk = (name: string, path: string[]) => {
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'open') {
      const loop = path.slice(path.indexOf(name)).concat(name);
      throw new UsageError(
        `inventory: groups ${loop.map(showName).join(' -> ')} form a cycle`,
        'fix the children sections of the inventory; nothing was changed',
      );
    }
    state.set(name, 'open');
    for (const c of m.groups.get(name)?.children ?? []) walk(c, path.concat(name));
    state.set(name, 'done');
  };
  for (const name of m.groups.keys()) walk(name, []);
}

/** Every host with its groups (transitive) and its variables after Ansible's precedence. */
export function resolveInventory(m: InventoryModel): InventoryHost[] {
  refuseCycles(m);
  // groups without a parent hang under 'all'; hosts in no group are 'ungrouped'
  const hasParent = new Set([...m.groups.values()].flatMap((g) => [...g.children]));
  for (const name of m.groups.keys())
    if (name !== 'all' && !hasParent.has(name)) group(m, 'all').children.add(name);
  const grouped = new Set(
    [...m.groups].filter(([n]) => n !== 'all' && n !== 'ungrouped').flatMap(([, g]) => [...g.hosts]),
  );
  for (const h of m.hostOrder) if (!grouped.has(h)) group(m, 'ungrouped').hosts.add(h);

  // depth: the longest path from 'all'
  const depth = new Map<string, number>();
  const visit = (name: string, d: number) => {
    if ((depth.get(name) ?? -1) >= d) return;
    depth.set(name, d);
    for (const c of m.groups.get(name)?.children ?? []) visit(c, d + 1);
  };
  visit('all', 0);

  // the groups a host is in, through children: walk down from each group
  const members = new Map<string, Set<string>>();
  const hostsOf = (name: string, seen: Set<string>): Set<string> => {
    const cached = members.get(name);
    if (cached) return cached;
    const g = m.groups.get(name)!;
    const out = new Set(g.hosts);
    for (const c of g.children)
      if (!seen.has(c)) for (const h of hostsOf(c, new Set(seen).add(c))) out.add(h);
    members.set(name, out);
    return out;
  };
  const order = [...m.groups.keys()].sort(
    (a, b) => (depth.get(a) ?? 0) - (depth.get(b) ?? 0) || (a < b ? -1 : a > b ? 1 : 0),
  );
  return m.hostOrder.map((name) => {
    const groups = order.filter((g) => hostsOf(g, new Set([g])).has(name));
    const vars: Vars = {};
    for (const g of groups) Object.assign(vars, m.groups.get(g)!.vars);
    Object.assign(vars, m.hostVars.get(name));
    return { name, groups: [...groups].sort(), vars };
  });
}

/** Group names read as control planes: kubespray's, its older ones, and common hand-made ones. */
export const CONTROL_PLANE_GROUPS = [
  'kube_control_plane',
  'kube-master',
  'kube_master',
  'control_plane',
  'control-plane',
  'controlplane',
  'masters',
  'master',
] as const;

/** Group names read as workers (a host also in a control-plane group is a control plane). */
export const WORKER_GROUPS = ['kube_node', 'kube-node', 'workers', 'worker', 'nodes', 'node'] as const;

export type NodeRole = 'control-plane' | 'worker';

/** A node as the rollout reaches it. */
export interface FleetNode {
  name: string;
  role: NodeRole;
  /** where ssh connects: ansible_host, else the name */
  address: string;
  user?: string;
  port?: number;
}

export interface InventoryNodes {
  nodes: FleetNode[];
  /** hosts in neither kind of group (e.g. etcd-only or bastion hosts), left alone */
  ignored: string[];
}

/** The control planes and workers of a resolved inventory, every name and address checked. */
export function inventoryNodes(hosts: InventoryHost[], file: string): InventoryNodes {
  const nodes: FleetNode[] = [];
  const ignored: string[] = [];
  const cp = new Set<string>(CONTROL_PLANE_GROUPS);
  const wk = new Set<string>(WORKER_GROUPS);
  for (const h of hosts) {
    const where = `inventory ${file}, host ${showName(h.name)}`;
    const role: NodeRole | undefined = h.groups.some((g) => cp.has(g))
      ? 'control-plane'
      : h.groups.some((g) => wk.has(g))
        ? 'worker'
        : undefined;
    if (!role) {
      ignored.push(h.name);
      continue;
    }
    const name = validateNodeName(h.name, where);
    const address = validateHostAddress(stringVar(h.vars.ansible_host, where, 'ansible_host') ?? name, where);
    const userVar = stringVar(h.vars.ansible_user, where, 'ansible_user');
    const user = userVar === undefined ? undefined : validateUserName(userVar, where);
    const port = h.vars.ansible_port === undefined ? undefined : validatePort(h.vars.ansible_port, where);
    nodes.push({ name, role, address, ...(user && { user }), ...(port !== undefined && { port }) });
  }
  if (nodes.length === 0) {
    throw new UsageError(
      `inventory ${file} names no control plane and no worker`,
      `put the hosts in groups named ${CONTROL_PLANE_GROUPS[0]} and ${WORKER_GROUPS[0]} (or control_plane/masters and workers/nodes); nothing was changed`,
    );
  }
  return { nodes, ignored };
}

function stringVar(v: unknown, where: string, name: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number') return String(v);
  if (typeof v !== 'string') {
    throw new UsageError(
      `${where}: ${name} is not a string`,
      `give ${name} a plain value; nothing was changed`,
    );
  }
  return v;
}

/** An inventory's text by format: YAML/JSON by extension (as Ansible's yaml plugin), else INI. */
export function parseInventory(text: string, file: string): InventoryNodes {
  const model = /\.(ya?ml|json)$/i.test(file)
    ? parseYamlInventory(text, file)
    : parseIniInventory(text, file);
  return inventoryNodes(resolveInventory(model), file);
}
