import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  inventoryNodes,
  parseIniInventory,
  parseInventory,
  parseYamlInventory,
  resolveInventory,
  type InventoryHost,
} from '../../src/core/inventory.js';
import { MAX_INVENTORY_BYTES, readInventory, readInventoryText } from '../../src/fleet/inventory-file.js';
import { repoRoot } from '../helpers/env.js';

// Inventories are read as Ansible reads them: each fixture is also given to Debian's
// `ansible-inventory --list` (package ansible-core, installed by scripts/test-env.sh) and the
// hosts, their groups and the connection variables must come out the same.

const fixtures = path.join(repoRoot, 'test/fixtures/inventory');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-inventory-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface AnsibleList {
  _meta: { hostvars: Record<string, Record<string, unknown>> };
  [group: string]: { hosts?: string[]; children?: string[] } | AnsibleList['_meta'];
}

/** What ansible-inventory says of each host: its groups (through children) and connection vars. */
function ansibleView(
  file: string,
): Record<string, { groups: string[]; host?: unknown; user?: unknown; port?: unknown }> {
  const home = fs.mkdtempSync(path.join(tmp, 'home-'));
  const r = spawnSync('ansible-inventory', ['-i', file, '--list'], {
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH,
      HOME: home,
      ANSIBLE_LOCAL_TEMP: home,
      ANSIBLE_INVENTORY_UNPARSED_FAILED: 'true',
      ANSIBLE_INVENTORY_ENABLED: 'ini,yaml',
    },
  });
  if (r.error)
    throw new Error(`ansible-inventory could not run (${r.error.message}): run scripts/test-env.sh up`);
  expect(r.status, r.stderr).toBe(0);
  const list = JSON.parse(r.stdout) as AnsibleList;
  const groups = Object.keys(list).filter((g) => g !== '_meta');
  // a group without hosts or children is not listed at all
  const direct = (g: string) => (list[g] as { hosts?: string[] } | undefined)?.hosts ?? [];
  const children = (g: string) => (list[g] as { children?: string[] } | undefined)?.children ?? [];
  const members = (g: string): Set<string> =>
    new Set([...direct(g), ...children(g).flatMap((c) => [...members(c)])]);
  const out: ReturnType<typeof ansibleView> = {};
  // a host without variables is in no hostvars entry, only in its groups' lists
  for (const h of new Set(groups.flatMap(direct))) {
    const vars = list._meta.hostvars[h] ?? {};
    out[h] = {
      groups: groups.filter((g) => members(g).has(h)).sort(),
      host: vars.ansible_host,
      user: vars.ansible_user,
      port: vars.ansible_port,
    };
  }
  return out;
}

function ourView(hosts: InventoryHost[]): ReturnType<typeof ansibleView> {
  return Object.fromEntries(
    hosts.map((h) => [
      h.name,
      {
        // ansible-inventory lists no group without hosts; 'all' it leaves out of the listing
        groups: h.groups,
        host: h.vars.ansible_host,
        user: h.vars.ansible_user,
        port: h.vars.ansible_port,
      },
    ]),
  );
}

describe('inventory, as ansible-inventory reads it', () => {
  for (const name of fs.readdirSync(fixtures).sort()) {
    it(`${name}: the same hosts, groups and connection variables`, () => {
      const file = path.join(fixtures, name);
      const text = fs.readFileSync(file, 'utf8');
      const model = /\.ya?ml$/.test(name) ? parseYamlInventory(text, file) : parseIniInventory(text, file);
      const ours = ourView(resolveInventory(model));
      const theirs = ansibleView(file);
      expect(Object.keys(ours).sort()).toEqual(Object.keys(theirs).sort());
      for (const h of Object.keys(theirs)) {
        expect(ours[h], h).toEqual(theirs[h]);
      }
    });
  }

  it('kubespray.ini: control planes, workers (a control plane in kube_node stays one), the rest ignored', () => {
    const file = path.join(fixtures, 'kubespray.ini');
    const r = parseInventory(fs.readFileSync(file, 'utf8'), file);
    expect(r.nodes).toEqual([
      { name: 'node1', role: 'control-plane', address: '95.54.0.12', user: 'admin', port: 22 },
      { name: 'node2', role: 'control-plane', address: '95.54.0.13', user: 'ubuntu', port: 22 },
      { name: 'node3', role: 'control-plane', address: '95.54.0.14', user: 'admin', port: 22 },
      { name: 'node4', role: 'worker', address: '95.54.0.15', user: 'admin', port: 2222 },
      { name: 'node5', role: 'worker', address: '95.54.0.16', user: 'core', port: 2200 },
      { name: 'node6', role: 'worker', address: 'fd00::16', user: 'admin', port: 22 },
    ]);
    expect(r.ignored).toEqual([]);
  });

  it('handmade.ini: masters/workers groups; a host in no such group ignored', () => {
    const r = readInventory(path.join(fixtures, 'handmade.ini'));
    expect(r.nodes.map((n) => `${n.role} ${n.name} ${n.user}@${n.address}:${n.port}`)).toEqual([
      'control-plane cp-a.example.com root@10.0.0.1:22',
      'control-plane cp-b.example.com root@10.0.0.2:22',
      'worker wk-1 ops@10.0.1.1:2022',
      'worker wk-2 ops@10.0.1.2:22',
    ]);
    expect(r.ignored).toEqual(['bastion.example.com']);
  });

  it('control-plane.yaml: control_plane/workers groups, the name as address when there is no ansible_host', () => {
    const r = readInventory(path.join(fixtures, 'control-plane.yaml'));
    expect(r.nodes).toEqual([
      { name: 'cp1', role: 'control-plane', address: '192.168.56.10' },
      { name: 'w1', role: 'worker', address: '192.168.56.20', user: 'vagrant' },
      { name: 'w2', role: 'worker', address: 'w2', user: 'ops' },
    ]);
  });
});

describe('bad inventories are refused, naming the file and host, before anything runs', () => {
  const write = (name: string, text: string) => {
    const f = path.join(tmp, name);
    fs.writeFileSync(f, text);
    return f;
  };

  it('hostile host names and addresses', () => {
    for (const [host, re] of [
      ['"a b"', /host "a b": node name "a b" is not a DNS-1123/],
      ["'$(touch /tmp/x)'", /node name "\$\(touch \/tmp\/x\)"/],
      ['"a;b"', /node name "a;b"/],
      ['UPPER', /node name "UPPER"/],
      ['-oProxyCommand=x', /node name "-oProxyCommand=x"/],
    ] as const) {
      const f = write('hostile.ini', `[kube_control_plane]\n${host}\n`);
      expect(() => readInventory(f)).toThrow(re);
    }
    const f = write('addr.ini', `[kube_node]\nw1 ansible_host="10.0.0.1 -oProxyCommand=x"\n`);
    expect(() => readInventory(f)).toThrow(/host "w1": address "10.0.0.1 -oProxyCommand=x"/);
    const u = write('user.ini', `[kube_node]\nw1 ansible_user='$(id)'\n`);
    expect(() => readInventory(u)).toThrow(/host "w1": user "\$\(id\)"/);
    const y = write('newline.yml', `kube_node:\n  hosts:\n    "w1\\nw2":\n`);
    expect(() => readInventory(y)).toThrow(/node name "w1\\nw2"/);
  });

  it('ranges, cycles, unknown sections, non-mappings, and a file naming no node', () => {
    expect(() => readInventory(write('range.ini', '[kube_node]\nnode[01:10]\n'))).toThrow(/range pattern/);
    expect(() => readInventory(write('cycle.ini', '[a:children]\nb\n[b:children]\na\n[a]\nh1\n'))).toThrow(
      /form a cycle/,
    );
    expect(() => readInventory(write('kind.ini', '[a:weird]\nx\n'))).toThrow(/unknown kind/);
    expect(() => readInventory(write('list.yml', '- a\n- b\n'))).toThrow(/the document is not a mapping/);
    expect(() => readInventory(write('key.yml', 'all:\n  hostz: {}\n'))).toThrow(/has the key "hostz"/);
    expect(() => readInventory(write('none.ini', '[etcd]\ne1\n'))).toThrow(
      /names no control plane and no worker/,
    );
    expect(() => readInventory(write('text.ini', 'hello world\n'))).toThrow(/line 1: expected key=value/);
    expect(() => readInventory(write('quote.ini', '[kube_node]\nw1 ansible_host="x\n'))).toThrow(/unclosed/);
  });

  it('a link, a FIFO, a directory, a huge file and binary data, refused before reading', () => {
    const target = write('real.ini', '[kube_node]\nw1\n');
    const link = path.join(tmp, 'link.ini');
    fs.symlinkSync(target, link);
    expect(() => readInventoryText(link)).toThrow(/is a symbolic link/);
    const fifo = path.join(tmp, 'fifo.ini');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    expect(() => readInventoryText(fifo)).toThrow(/is not a regular file/);
    expect(() => readInventoryText(tmp)).toThrow(/is not a regular file/);
    expect(() => readInventoryText(path.join(tmp, 'missing.ini'))).toThrow(/does not exist/);
    const huge = path.join(tmp, 'huge.ini');
    fs.writeFileSync(huge, '');
    fs.truncateSync(huge, MAX_INVENTORY_BYTES + 1);
    expect(() => readInventoryText(huge)).toThrow(/over 1048576/);
    expect(() => readInventoryText(write('bin.ini', 'a\0b'))).toThrow(/not text/);
    expect(() => readInventoryText(write('latin1.ini', '\xff\xfe'.padEnd(4, 'x')))).not.toThrow();
    fs.writeFileSync(path.join(tmp, 'bad-utf8.ini'), Buffer.from([0x5b, 0xc3, 0x28, 0x5d]));
    expect(() => readInventoryText(path.join(tmp, 'bad-utf8.ini'))).toThrow(/not UTF-8/);
  });

  it('more hosts than a cluster has', () => {
    const many = Array.from({ length: 5001 }, (_, i) => `n${i}`).join('\n');
    expect(() => parseInventory(`[kube_node]\n${many}\n`, 'big.ini')).toThrow(/more than 5000 hosts/);
    expect(
      inventoryNodes(resolveInventory(parseIniInventory('[kube_node]\nn1\n', 'x')), 'x').nodes,
    ).toHaveLength(1);
  });
});
