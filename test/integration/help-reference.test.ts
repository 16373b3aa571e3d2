import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { commandSummaries } from '../../src/commands/catalog.js';
import { cliPath, repoRoot } from '../helpers/env.js';

// Every command's --help and docs/reference.md list the same options: each long option a
// command's help shows is in the option table under that command's heading, and each option the
// table lists is in the help. Options of the top-level help are the global ones, listed once
// under "Global options". Sections are headings written wholly in backticks (`cache path <key>`).

const referenceFile = path.join(repoRoot, 'docs/reference.md');
const GLOBAL_HEADING = 'Global options';

/** Long option names of a --help text's "Options:" block (`--json`, `-o, --output` → output). */
function helpOptions(help: string): Set<string> {
  const names = new Set<string>();
  let inOptions = false;
  for (const line of help.split('\n')) {
    if (/^\S/.test(line)) inOptions = line === 'Options:';
    else if (inOptions) {
      // option lines start at column 2 (`-h, --help`) or 6 (`    --json`); deeper ones continue a description
      const m = /^ {2}(?:-[A-Za-z0-9], | {4})--([a-z0-9][a-z0-9-]*)/.exec(line);
      if (m) names.add(m[1]!);
    }
  }
  return names;
}

/** Subcommands a --help text lists under "Commands:", as command paths ("cache ls"). */
function helpSubcommands(help: string, parent: string): string[] {
  const out: string[] = [];
  let inCommands = false;
  for (const line of help.split('\n')) {
    if (/^\S/.test(line)) inCommands = line === 'Commands:';
    else if (inCommands) {
      const m = new RegExp(`^ {2}kubeadm-forever ${parent} ([a-z][a-z0-9-]*)`).exec(line);
      if (m) out.push(`${parent} ${m[1]}`);
    }
  }
  return out;
}

/** The command path a heading's backticked usage names: `cache path <key>` → "cache path". */
function commandPath(usage: string): string {
  const words: string[] = [];
  for (const w of usage.trim().split(/\s+/)) {
    if (/^[<[]/.test(w)) break;
    words.push(w);
  }
  return words.join(' ');
}

/**
 * The options each section of the reference lists: the first cell of its table rows
 * (`| \`--name\` |`). A section runs from its heading to the next heading of any level; command
 * sections are headings written wholly in backticks, plus the global one.
 */
function referenceSections(md: string): Map<string, Set<string>> {
  const sections = new Map<string, Set<string>>();
  let current: Set<string> | undefined;
  for (const line of md.split('\n')) {
    const heading = /^#{1,6}\s+(.*?)\s*$/.exec(line);
    if (heading) {
      const text = heading[1]!;
      const usage = /^`([^`]+)`$/.exec(text);
      const name = usage ? commandPath(usage[1]!) : text === GLOBAL_HEADING ? GLOBAL_HEADING : undefined;
      current = name === undefined ? undefined : new Set();
      if (name !== undefined) {
        if (sections.has(name)) throw new Error(`docs/reference.md has two sections for ${name}`);
        sections.set(name, current!);
      }
      continue;
    }
    const row = /^\|\s*`--([a-z0-9][a-z0-9-]*)`\s*\|/.exec(line);
    if (row && current) current.add(row[1]!);
  }
  return sections;
}

/** What differs between a command's help and its reference section, one line each (empty: they agree). */
function disagreements(command: string, help: Set<string>, reference: Set<string> | undefined): string[] {
  if (!reference) return [`${command}: no section \`${command}\` in docs/reference.md`];
  return [
    ...[...help]
      .filter((o) => !reference.has(o))
      .map((o) => `${command}: --${o} is in --help, not in the reference`),
    ...[...reference]
      .filter((o) => !help.has(o))
      .map((o) => `${command}: --${o} is in the reference, not in --help`),
  ];
}

const run = promisify(execFile);

async function helpOf(command: string): Promise<string> {
  const args = command === '' ? ['--help'] : [...command.split(' '), '--help'];
  const { stdout } = await run(process.execPath, [cliPath, ...args], { encoding: 'utf8' });
  return stdout;
}

describe('the comparison itself', () => {
  const help = `kubeadm-forever cache path <key>

Options:
      --json       print one JSON result document on stdout
      --platform   os/arch; default all of the key (--no-platform is not an option, it is prose)
  -o, --output     table
  -h, --help       Show help
`;
  const md = [
    '## Global options',
    '| `--json` | x |',
    '| `--help` | x |',
    '#### `cache path <key>`',
    'prose naming `--other`',
    '| option | meaning |',
    '| `--platform` | os/arch |',
    '| `--output` | table |',
    '### Target selection',
    '| `--stray` | not a command section |',
  ].join('\n');

  it('reads long names from the Options block only, and table rows per section', () => {
    expect([...helpOptions(help)]).toEqual(['json', 'platform', 'output', 'help']);
    const s = referenceSections(md);
    expect([...s.keys()]).toEqual(['Global options', 'cache path']);
    expect([...s.get('cache path')!]).toEqual(['platform', 'output']);
  });

  it('fails on an option either side lacks', () => {
    const own = new Set(['platform', 'output']);
    expect(disagreements('cache path', own, new Set(['platform', 'output']))).toEqual([]);
    expect(disagreements('cache path', own, new Set(['platform']))).toEqual([
      'cache path: --output is in --help, not in the reference',
    ]);
    expect(disagreements('cache path', own, new Set(['platform', 'output', 'keep']))).toEqual([
      'cache path: --keep is in the reference, not in --help',
    ]);
    expect(disagreements('cache path', own, undefined)).toHaveLength(1);
  });
});

describe('every command --help and docs/reference.md agree', () => {
  let sections: Map<string, Set<string>>;
  const helps = new Map<string, string>();
  let commands: string[] = [];

  beforeAll(async () => {
    expect(fs.existsSync(cliPath), `${cliPath} is missing: run npm run build`).toBe(true);
    sections = referenceSections(fs.readFileSync(referenceFile, 'utf8'));
    const top = Object.keys(commandSummaries);
    const texts = await Promise.all(['', ...top].map(helpOf));
    ['', ...top].forEach((c, i) => helps.set(c, texts[i]!));
    const subs = top.flatMap((c) => helpSubcommands(helps.get(c)!, c));
    const subTexts = await Promise.all(subs.map(helpOf));
    subs.forEach((c, i) => helps.set(c, subTexts[i]!));
    commands = [...top, ...subs];
  }, 120_000);

  it('finds the catalog commands and their subcommands', () => {
    expect(commands).toEqual(
      expect.arrayContaining(['cache ls', 'cache volumes', 'bundle import', 'ca extend']),
    );
    expect(commands.length).toBeGreaterThanOrEqual(Object.keys(commandSummaries).length + 10);
  });

  it('the top-level options are the global options of the reference', () => {
    const global = helpOptions(helps.get('')!);
    expect(global).toContain('json');
    expect(disagreements(GLOBAL_HEADING, global, sections.get(GLOBAL_HEADING))).toEqual([]);
  });

  it('each command lists exactly the options of its section', () => {
    const global = helpOptions(helps.get('')!);
    const problems = commands.flatMap((c) => {
      const own = new Set([...helpOptions(helps.get(c)!)].filter((o) => !global.has(o)));
      return disagreements(c, own, sections.get(c));
    });
    expect(problems).toEqual([]);
  });

  it('every command section of the reference names a command', () => {
    const known = new Set([GLOBAL_HEADING, ...commands]);
    expect([...sections.keys()].filter((s) => !known.has(s))).toEqual([]);
  });
});
