import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { recoverInterrupted, replaceFiles, type StagedEntry } from '../../src/adapters/file-transaction.js';
import { KfError } from '../../src/core/errors.js';
import { FAULT_ENV } from '../../src/core/test-faults.js';
import { repoRoot } from '../helpers/env.js';
import { snapshot, tempDir } from './pki-support.js';

// The one staged-write mechanism (adapters/file-transaction): real files, real renames, real
// SIGKILLs (through the test-only fault hook) and the recovery a later run does.

const dirs: string[] = [];
const tmp = (p: string) => {
  const d = tempDir(p);
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
afterEach(() => {
  delete process.env[FAULT_ENV];
});

/** A tree with three files in two directories (one a key, 0600) and the new contents for them. */
function fixture(): { root: string; writes: StagedEntry[]; oldState: Record<string, string> } {
  const root = tmp('txn');
  fs.mkdirSync(path.join(root, 'etcd'));
  fs.writeFileSync(path.join(root, 'ca.crt'), 'old ca\n', { mode: 0o644 });
  fs.writeFileSync(path.join(root, 'ca.key'), 'old key\n', { mode: 0o600 });
  fs.writeFileSync(path.join(root, 'etcd/ca.crt'), 'old etcd\n', { mode: 0o644 });
  fs.chmodSync(path.join(root, 'ca.key'), 0o600);
  const writes: StagedEntry[] = [
    { file: path.join(root, 'ca.key'), data: 'new key\n', mode: 0o600 },
    { file: path.join(root, 'ca.crt'), data: 'new ca\n', mode: 0o644 },
    { file: path.join(root, 'etcd/ca.crt'), data: 'new etcd\n', mode: 0o644 },
    { file: path.join(root, 'created.pem'), data: 'created\n', mode: 0o600 },
    { file: path.join(root, 'current.pem'), linkTo: path.join(root, 'created.pem') },
  ];
  return { root, writes, oldState: snapshot(root) };
}

function newState(writes: StagedEntry[], root: string): Record<string, string> {
  const d = tmp('txn-expected');
  fs.cpSync(root, d, { recursive: true, verbatimSymlinks: true });
  replaceFiles(
    writes.map((w) => ({
      ...w,
      file: path.join(d, path.relative(root, w.file)),
      ...('linkTo' in w ? { linkTo: w.linkTo } : {}),
    })),
  );
  const s = snapshot(d);
  // the link target is absolute: compare it relative to the tree
  return Object.fromEntries(Object.entries(s).map(([k, v]) => [k, v.replace(d, root)]));
}

const leftovers = (root: string) => Object.keys(snapshot(root)).filter((f) => /\.tmp$/.test(f));

/** Runs replaceFiles in a child process (built dist/) with the fault hook set. */
function runChild(
  writes: StagedEntry[],
  fault: string,
): { status: number | null; signal: NodeJS.Signals | null; stderr: string } {
  const mod = pathToFileURL(path.join(repoRoot, 'dist/adapters/file-transaction.js')).href;
  const script = `const { replaceFiles } = await import(${JSON.stringify(mod)}); replaceFiles(JSON.parse(process.argv[1]));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(writes)], {
    encoding: 'utf8',
    env: { ...process.env, [FAULT_ENV]: fault },
  });
  return { status: r.status, signal: r.signal, stderr: r.stderr };
}

describe('replaceFiles', () => {
  it('replaces every file and link with its mode, and leaves no temp file', () => {
    const { root, writes } = fixture();
    replaceFiles(writes);
    expect(fs.readFileSync(path.join(root, 'ca.key'), 'utf8')).toBe('new key\n');
    expect(fs.statSync(path.join(root, 'ca.key')).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(root, 'created.pem')).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(path.join(root, 'etcd/ca.crt'), 'utf8')).toBe('new etcd\n');
    expect(fs.readlinkSync(path.join(root, 'current.pem'))).toBe(path.join(root, 'created.pem'));
    expect(leftovers(root)).toEqual([]);
  });

  it('refuses a target replaced by a directory before changing anything (a real failure)', () => {
    const { root, writes } = fixture();
    fs.rmSync(path.join(root, 'etcd/ca.crt'));
    fs.mkdirSync(path.join(root, 'etcd/ca.crt'));
    const before = snapshot(root);
    expect(() => replaceFiles(writes)).toThrow(/cannot stage .*etcd\/ca\.crt: EISDIR.*\n?/);
    expect(snapshot(root)).toEqual(before);
  });

  it('refuses a directory it cannot write (a real failure) with the path and the code, changing nothing', () => {
    if (process.getuid?.() === 0) {
      // root ignores permission bits: a read-only bind mount makes the directory really read-only
      const { root } = fixture();
      const r = spawnSync(
        'unshare',
        [
          '-m',
          'sh',
          '-c',
          'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" "$1" && shift && exec "$@"',
          'sh',
          path.join(root, 'etcd'),
          process.execPath,
          '--input-type=module',
          '-e',
          `const { replaceFiles } = await import(${JSON.stringify(pathToFileURL(path.join(repoRoot, 'dist/adapters/file-transaction.js')).href)});
           try { replaceFiles([{ file: ${JSON.stringify(path.join(root, 'ca.crt'))}, data: 'x', mode: 420 }, { file: ${JSON.stringify(path.join(root, 'etcd/ca.crt'))}, data: 'y', mode: 420 }]); }
           catch (e) { console.log(e.what); console.log(e.next); process.exit(1); }`,
        ],
        { encoding: 'utf8' },
      );
      expect(r.status, r.stderr).toBe(1);
      expect(r.stdout).toMatch(/cannot stage .*etcd\/ca\.crt: EROFS: read-only file system/);
      expect(r.stdout).toMatch(/nothing was changed/);
      expect(fs.readFileSync(path.join(root, 'ca.crt'), 'utf8')).toBe('old ca\n');
      expect(leftovers(root)).toEqual([]);
    } else {
      const { root } = fixture();
      fs.chmodSync(path.join(root, 'etcd'), 0o555);
      expect(() =>
        replaceFiles([
          { file: path.join(root, 'ca.crt'), data: 'x', mode: 0o644 },
          { file: path.join(root, 'etcd/ca.crt'), data: 'y', mode: 0o644 },
        ]),
      ).toThrow(/EACCES/);
      fs.chmodSync(path.join(root, 'etcd'), 0o755);
      expect(leftovers(root)).toEqual([]);
    }
  });

  it('puts back the files already replaced when a later rename fails, and says so', () => {
    const { root, writes, oldState } = fixture();
    process.env[FAULT_ENV] = 'fail-swap:3';
    let err: KfError | undefined;
    try {
      replaceFiles(writes);
    } catch (e) {
      err = e as KfError;
    }
    expect(err).toBeInstanceOf(KfError);
    expect(err!.what).toMatch(/^cannot replace .*etcd\/ca\.crt: EIO/);
    expect(err!.next).toMatch(/nothing was changed \(the 2 file\(s\) already replaced were put back\)/);
    expect(snapshot(root)).toEqual(oldState);
  });

  it('when putting back fails too, names each file with its state and where its old content is; a later run puts it back', () => {
    const { root, writes, oldState } = fixture();
    const r = runChild(writes, 'fail-swap:3,fail-restore');
    expect(r.status).toBe(1);
    const key = path.join(root, 'ca.key');
    expect(r.stderr).toMatch(
      new RegExp(
        `${key}: NEW content \\(put back failed: EIO[^;]*\\); old content at ${root}/\\.ca\\.key\\.kf-\\d+-[0-9a-f]{12}\\.old\\.tmp`,
      ),
    );
    expect(r.stderr).toMatch(new RegExp(`${root}/etcd/ca\\.crt: old content`));
    expect(r.stderr).toMatch(new RegExp(`${root}/created\\.pem: absent, as before`));
    expect(r.stderr).toMatch(/the next run retries the put-back \(journal .*\.kf-txn-/);
    // the old content really is where the message says
    const old = /old content at (\S+\.old\.tmp)/.exec(r.stderr)![1]!;
    expect(fs.readFileSync(old, 'utf8')).toBe('old key\n');
    const report = recoverInterrupted([root, path.join(root, 'etcd')]);
    expect(report.rolledBack).toHaveLength(1);
    expect(snapshot(root)).toEqual(oldState);
  });

  it('killed at any step, the next run finds the tree old or new, never mixed, and a re-run converges', () => {
    const { writes } = fixture();
    // 5 staged + 3 old links + 2 journals + 5 swaps + 3 old removals + 2 journal removals = 20 steps
    const seen = { old: 0, new: 0 };
    for (let step = 1; step <= 21; step++) {
      const f = fixture();
      const ws = writes.map((w) => ({
        ...w,
        file: path.join(f.root, path.relative(path.dirname(writes[0]!.file), w.file)),
        ...('linkTo' in w ? { linkTo: path.join(f.root, 'created.pem') } : {}),
      }));
      const expectedNew = newState(ws, f.root);
      const r = runChild(ws, `kill-at:${step}`);
      if (step <= 20) expect(r.signal, `step ${step}: ${r.stderr}`).toBe('SIGKILL');
      else expect(r.status, r.stderr).toBe(0);
      recoverInterrupted([f.root, path.join(f.root, 'etcd')]);
      const state = snapshot(f.root);
      expect(leftovers(f.root), `step ${step}`).toEqual([]);
      if (JSON.stringify(state) === JSON.stringify(f.oldState)) seen.old++;
      else {
        expect(state, `step ${step}`).toEqual(expectedNew);
        seen.new++;
      }
      replaceFiles(ws); // the re-run
      expect(snapshot(f.root), `step ${step} re-run`).toEqual(expectedNew);
    }
    // killed before the last swap: put back; killed after it: finished
    expect(seen).toEqual({ old: 15, new: 6 });
  });

  it('killed mid-swap, a run that touches only the subdirectory finds the journal above it through its marker', () => {
    const f = fixture();
    const r = runChild(f.writes, 'kill-at:13'); // 5 staged + 3 old links + 2 journal files + 2 swaps
    expect(r.signal, r.stderr).toBe('SIGKILL');
    expect(fs.readdirSync(path.join(f.root, 'etcd')).some((n) => /^\.kf-txn-.*\.ref\.tmp$/.test(n))).toBe(
      true,
    );
    const report = recoverInterrupted([path.join(f.root, 'etcd')]);
    expect(report.rolledBack).toHaveLength(1);
    expect(snapshot(f.root)).toEqual(f.oldState);
  });

  it('removes temp files of dead runs (this and earlier versions) but not those of live ones', () => {
    const root = tmp('txn-stray');
    const dead = 999_999_999;
    const names = [
      `.ca.crt.kf-${dead}-0123456789ab.new.tmp`,
      '.ca.crt.kf-0a1b2c3d.tmp',
      `.x.go.kf-${dead}.tmp`,
      `.kubeadm-forever-${dead}-config.yaml`,
      `kubeadm-forever-renew-20261201T000000Z.tar.gz.${dead}.tmp`,
    ];
    const live = `.ca.crt.kf-${process.pid}-0123456789ab.new.tmp`;
    for (const n of [...names, live]) fs.writeFileSync(path.join(root, n), 'x');
    const r = recoverInterrupted([root]);
    expect(r.removed.map((f) => path.basename(f)).sort()).toEqual([...names].sort());
    expect(fs.readdirSync(root)).toEqual([live]);
  });
});
