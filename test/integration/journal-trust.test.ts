import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { recoverInterrupted } from '../../src/adapters/file-transaction.js';
import { CONSTANTS_FILE } from '../../src/core/patch-targets.js';
import { repoRoot, runCli } from '../helpers/env.js';
import { makeMiniTree } from '../unit/fixtures/mini-tree.js';
import { tempDirs } from './pki-support.js';

// A transaction journal is an instruction to rename and remove files. One planted by someone
// else (in a directory they can write, or shipped in a source tree) must never be followed:
// real files, real owners (chown, setpriv), the real CLI.

const { tmp, cleanup } = tempDirs();
const trees: string[] = [];
afterAll(() => {
  cleanup();
  for (const t of trees) fs.rmSync(t, { recursive: true, force: true });
});

const DEAD = 999_999_999; // above any pid_max: never a live process
const TOKEN = '0123456789ab';
const journalName = `.kf-txn-${DEAD}-${TOKEN}.json.tmp`;
const asRoot = process.getuid?.() === 0;
const NOBODY = 65534;

/**
 * The journal an earlier version wrote (absolute paths), crafted to do harm: "put back" `evil`
 * over `victim` (it claims victim is its staged file) and remove `doomed` (a file it claims to
 * have created).
 */
function hostileJournal(victim: string, evil: string, doomed: string): string {
  return JSON.stringify({
    pid: DEAD,
    token: TOKEN,
    state: 'rollback',
    journals: [],
    entries: [
      { target: victim, staged: `${victim}.x`, stagedIno: fs.statSync(victim).ino, old: evil },
      { target: doomed, staged: `${doomed}.x`, stagedIno: fs.statSync(doomed).ino, old: null },
    ],
  });
}

/** A directory with a victim and a doomed file, and a place holding the attacker's content. */
function scene(prefix: string): { dir: string; victim: string; doomed: string; evil: string } {
  const dir = tmp(prefix);
  const victim = path.join(dir, 'victim.key');
  const doomed = path.join(dir, 'doomed.crt');
  const evil = path.join(dir, 'evil');
  fs.writeFileSync(victim, 'precious\n', { mode: 0o600 });
  fs.writeFileSync(doomed, 'keep me\n');
  fs.writeFileSync(evil, 'attacker content\n');
  return { dir, victim, doomed, evil };
}

function expectUntouched(s: { victim: string; doomed: string }): void {
  expect(fs.readFileSync(s.victim, 'utf8')).toBe('precious\n');
  expect(fs.readFileSync(s.doomed, 'utf8')).toBe('keep me\n');
}

describe('recovery follows only journals this tool could have written', () => {
  it.runIf(asRoot)('refuses a journal owned by another user, naming it, and leaves everything', () => {
    const s = scene('jt-owner');
    const journal = path.join(s.dir, journalName);
    fs.writeFileSync(journal, hostileJournal(s.victim, s.evil, s.doomed), { mode: 0o600 });
    fs.chownSync(journal, NOBODY, NOBODY);
    const r = recoverInterrupted([s.dir]);
    expect(r.refused).toEqual([`${journal}: owned by uid ${NOBODY}, neither this user (uid 0) nor root`]);
    expect(r.rolledBack).toEqual([]);
    expectUntouched(s);
    expect(fs.existsSync(journal)).toBe(true);
    expect(fs.existsSync(s.evil)).toBe(true);
  });

  it('refuses a journal that group or others may write', () => {
    const s = scene('jt-mode');
    const journal = path.join(s.dir, journalName);
    fs.writeFileSync(journal, hostileJournal(s.victim, s.evil, s.doomed));
    fs.chmodSync(journal, 0o666);
    const r = recoverInterrupted([s.dir]);
    expect(r.refused).toEqual([`${journal}: writable by group or others (mode 0666)`]);
    expectUntouched(s);
  });

  it('refuses a journal of ours whose entries lie outside its directory', () => {
    const s = scene('jt-elsewhere');
    const attacker = tmp('jt-attacker');
    const journal = path.join(attacker, journalName);
    fs.writeFileSync(journal, hostileJournal(s.victim, s.evil, s.doomed), { mode: 0o600 });
    const r = recoverInterrupted([attacker]);
    expect(r.refused).toHaveLength(1);
    expect(r.refused[0]).toMatch(
      /^.*\.kf-txn-\d+-[0-9a-f]+\.json\.tmp: entry "\.\.\/.*victim\.key" is not a path below /,
    );
    expectUntouched(s);
  });

  it('refuses entries through a link, with "..", and a journal with a second hard link', () => {
    const s = scene('jt-link');
    const attacker = tmp('jt-attacker');
    fs.symlinkSync(s.dir, path.join(attacker, 'sub'));
    fs.writeFileSync(path.join(s.dir, `.victim.key.kf-${DEAD}-${TOKEN}.old.tmp`), 'attacker content\n');
    const journal = path.join(attacker, journalName);
    const write = (entries: unknown[]) =>
      fs.writeFileSync(
        journal,
        JSON.stringify({ version: 2, pid: DEAD, token: TOKEN, state: 'rollback', entries }),
        {
          mode: 0o600,
        },
      );
    const ino = fs.statSync(s.victim).ino;
    write([{ file: 'sub/victim.key', stagedIno: ino, old: true }]);
    expect(recoverInterrupted([attacker]).refused[0]).toMatch(
      /sub\/victim\.key.*is not a directory \(a link\?\)/,
    );
    write([{ file: `../${path.basename(s.dir)}/victim.key`, stagedIno: ino, old: true }]);
    expect(recoverInterrupted([attacker]).refused[0]).toMatch(/is not a path below/);
    // a hard link of a journal is not the journal written here (a copy planted from elsewhere)
    write([{ file: 'x', stagedIno: 1, old: false }]);
    fs.linkSync(journal, path.join(attacker, 'second-link'));
    expect(recoverInterrupted([attacker]).refused[0]).toMatch(/has 2 hard links/);
    expectUntouched(s);
  });

  it.runIf(asRoot)(
    'an unprivileged user puts back its own killed run, and leaves alone a journal of a third user',
    () => {
      const base = tmp('jt-user');
      fs.chmodSync(base, 0o755);
      const dir = path.join(base, 'files');
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'a.txt'), 'old a\n');
      fs.writeFileSync(path.join(dir, 'b.txt'), 'old b\n');
      fs.chownSync(dir, NOBODY, NOBODY);
      for (const f of ['a.txt', 'b.txt']) fs.chownSync(path.join(dir, f), NOBODY, NOBODY);
      const mod = pathToFileURL(path.join(repoRoot, 'dist/adapters/file-transaction.js')).href;
      const asNobody = (script: string, env: NodeJS.ProcessEnv = {}) =>
        spawnSync(
          'setpriv',
          [
            `--reuid=${NOBODY}`,
            `--regid=${NOBODY}`,
            '--clear-groups',
            process.execPath,
            '--input-type=module',
            '-e',
            script,
          ],
          { encoding: 'utf8', env: { ...process.env, ...env } },
        );
      // killed after the first of two swaps (2 staged + 2 old links + 1 journal + 1 swap)
      const writes = JSON.stringify(
        ['a.txt', 'b.txt'].map((f) => ({ file: path.join(dir, f), data: 'new\n', mode: 0o644 })),
      );
      const killed = asNobody(
        `const { replaceFiles } = await import(${JSON.stringify(mod)}); replaceFiles(${writes});`,
        {
          KF_TEST_FAULT: 'kill-at:7',
        },
      );
      expect(killed.signal, killed.stderr).toBe('SIGKILL');
      expect(fs.readFileSync(path.join(dir, 'a.txt'), 'utf8')).toBe('new\n'); // half done
      // a journal of a third user (uid 65533) in the same directory
      const s = scene('jt-third');
      const third = path.join(dir, journalName);
      fs.writeFileSync(third, hostileJournal(s.victim, s.evil, s.doomed), { mode: 0o600 });
      fs.chownSync(third, NOBODY - 1, NOBODY - 1);
      const r = asNobody(
        `const { recoverInterrupted } = await import(${JSON.stringify(mod)}); console.log(JSON.stringify(recoverInterrupted([${JSON.stringify(dir)}])));`,
      );
      expect(r.status, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout) as { rolledBack: string[]; refused: string[] };
      expect(report.rolledBack).toHaveLength(1);
      expect(report.refused).toEqual([
        `${third}: owned by uid ${NOBODY - 1}, neither this user (uid ${NOBODY}) nor root`,
      ]);
      expect(fs.readFileSync(path.join(dir, 'a.txt'), 'utf8')).toBe('old a\n');
      expectUntouched(s);
    },
  );

  it.runIf(asRoot)(
    'check --textfile as root in a directory another user writes: the planted journal is named and left alone',
    () => {
      // the node_exporter-style directory belongs to an unprivileged user, who plants the journal
      const base = tmp('jt-textfile');
      fs.chmodSync(base, 0o755);
      const collector = path.join(base, 'textfile');
      fs.mkdirSync(collector);
      fs.chownSync(collector, NOBODY, NOBODY);
      const s = scene('jt-root-files'); // root's files elsewhere
      const evil = path.join(collector, 'evil');
      const planted = path.join(collector, journalName);
      const script = `require('fs').writeFileSync(${JSON.stringify(evil)}, 'attacker content\\n');
        require('fs').writeFileSync(${JSON.stringify(planted)}, process.argv[1], { mode: 0o600 });`;
      const p = spawnSync(
        'setpriv',
        [
          `--reuid=${NOBODY}`,
          `--regid=${NOBODY}`,
          '--clear-groups',
          process.execPath,
          '-e',
          script,
          hostileJournal(s.victim, evil, s.doomed),
        ],
        { encoding: 'utf8' },
      );
      expect(p.status, p.stderr).toBe(0);
      expect(fs.statSync(planted).uid).toBe(NOBODY);

      const node = tmp('jt-node');
      expect(runCli(['ca', 'init', '--out', path.join(node, 'pki')]).status).toBe(0);
      const prom = path.join(collector, 'kf.prom');
      const r = runCli([
        'check',
        '--pki-dir',
        path.join(node, 'pki'),
        '--kubeconfig-dir',
        node,
        '--kubelet-dir',
        path.join(node, 'kubelet'),
        '--textfile',
        prom,
      ]);
      expect(r.stderr).toContain(
        `warning: left alone a transaction journal this tool did not write: ${planted}: owned by uid ${NOBODY}`,
      );
      expect(fs.readFileSync(prom, 'utf8')).toMatch(/^# HELP /m);
      expectUntouched(s);
      expect(fs.existsSync(planted)).toBe(true);
    },
  );

  it('patch never follows a journal shipped in the source tree, not even one that would pass every check', () => {
    const root = makeMiniTree();
    trees.push(root);
    const s = scene('jt-outside');
    const dir = path.dirname(path.join(root, CONSTANTS_FILE));
    // outside the tree, and inside it (README.md): both "put back" with the shipped content
    const readme = path.join(dir, 'README.md');
    fs.writeFileSync(readme, 'the tree readme\n');
    fs.writeFileSync(
      path.join(dir, journalName),
      hostileJournal(s.victim, path.join(dir, 'evil'), s.doomed),
      {
        mode: 0o600,
      },
    );
    fs.writeFileSync(path.join(dir, 'evil'), 'attacker content\n');
    const token2 = 'ba9876543210';
    fs.writeFileSync(path.join(dir, `.README.md.kf-${DEAD}-${token2}.old.tmp`), 'shipped content\n');
    fs.writeFileSync(
      path.join(dir, `.kf-txn-${DEAD}-${token2}.json.tmp`),
      JSON.stringify({
        version: 2,
        pid: DEAD,
        token: token2,
        state: 'rollback',
        entries: [{ file: 'README.md', stagedIno: fs.statSync(readme).ino, old: true }],
      }),
      { mode: 0o600 },
    );
    const r = runCli(['patch', root]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/interrupted|journal/);
    expectUntouched(s);
    expect(fs.readFileSync(readme, 'utf8')).toBe('the tree readme\n');
  });
});
