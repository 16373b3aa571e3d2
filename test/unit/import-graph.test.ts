import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/env.js';

/**
 * The layout's rules, read from the source itself: the three acts — build outside,
 * carry in, apply on the node — sit on a pure core and the adapters around I/O; commands compose
 * them. An arrow that points up, from one act into another, or around in a circle fails here.
 */
const srcDir = path.join(repoRoot, 'src');

/** What each room may import (besides itself). */
const allowed: Record<string, string[]> = {
  core: [],
  adapters: ['core'],
  carry: ['core', 'adapters'],
  build: ['core', 'adapters', 'carry'],
  node: ['core', 'adapters'],
  fleet: ['core', 'adapters', 'node'],
  ui: ['core'],
  commands: ['core', 'adapters', 'carry', 'build', 'node', 'fleet', 'ui'],
  cli: ['core', 'adapters', 'commands'],
};

/** Packages the pure core may use: computation only, no file system, processes or network. */
const pureModules = new Set(['node:crypto', 'node:path', 'node:path/posix', 'diff', 'yaml']);

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function roomOf(file: string): string {
  const rel = path.relative(srcDir, file);
  return rel.includes(path.sep) ? rel.split(path.sep)[0]! : path.basename(rel, '.ts');
}

/** Every `import … from '…'`, `export … from '…'` and `import('…')` specifier of a file. */
function specifiers(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(
    /(?:^|\n)\s*(?:import|export)\s(?:[^'";]*?\sfrom\s+)?'([^']+)'|import\(\s*'([^']+)'\s*\)/g,
  )) {
    out.push((m[1] ?? m[2])!);
  }
  return out;
}

function graph(): Map<string, { local: string[]; packages: string[] }> {
  const g = new Map<string, { local: string[]; packages: string[] }>();
  for (const f of sourceFiles(srcDir)) {
    const specs = specifiers(f);
    g.set(f, {
      local: specs
        .filter((s) => s.startsWith('.'))
        .map((s) => path.resolve(path.dirname(f), s.replace(/\.js$/, '.ts'))),
      packages: specs.filter((s) => !s.startsWith('.')),
    });
  }
  return g;
}

/** The cycles found by a depth-first walk, each as the files around it. */
function cycles(g: Map<string, { local: string[] }>): string[][] {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const found: string[][] = [];
  const walk = (n: string) => {
    state.set(n, 'open');
    stack.push(n);
    for (const d of g.get(n)?.local ?? []) {
      if (state.get(d) === 'open') found.push([...stack.slice(stack.indexOf(d)), d]);
      else if (!state.has(d)) walk(d);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of g.keys()) if (!state.has(n)) walk(n);
  return found;
}

describe('the layout of src/', () => {
  const g = graph();
  const rel = (f: string) => path.relative(srcDir, f);

  it('has every room the rules name and nothing outside them', () => {
    expect(g.size).toBeGreaterThan(50);
    const rooms = new Set([...g.keys()].map(roomOf));
    expect([...rooms].sort()).toEqual(Object.keys(allowed).sort());
  });

  it('imports only files that exist', () => {
    const missing = [...g].flatMap(([f, { local }]) =>
      local.filter((d) => !g.has(d)).map((d) => `${rel(f)} -> ${rel(d)}`),
    );
    expect(missing).toEqual([]);
  });

  it('has no arrow upward or from one act into another', () => {
    const wrong = [...g].flatMap(([f, { local }]) =>
      local
        .filter((d) => roomOf(d) !== roomOf(f) && !allowed[roomOf(f)]!.includes(roomOf(d)))
        .map((d) => `${rel(f)} -> ${rel(d)}`),
    );
    expect(wrong).toEqual([]);
  });

  it('has no import cycle', () => {
    expect(cycles(g).map((c) => c.map(rel).join(' -> '))).toEqual([]);
  });

  it('keeps the core pure: no file system, processes, network or engine', () => {
    const impure = [...g]
      .filter(([f]) => roomOf(f) === 'core')
      .flatMap(([f, { packages }]) =>
        packages.filter((p) => !pureModules.has(p)).map((p) => `${rel(f)}: ${p}`),
      );
    expect(impure).toEqual([]);
  });

  it('the checker itself sees a cycle and an upward arrow when there is one', () => {
    const a = path.join(srcDir, 'core/a.ts');
    const b = path.join(srcDir, 'core/b.ts');
    expect(
      cycles(
        new Map([
          [a, { local: [b] }],
          [b, { local: [a] }],
        ]),
      ),
    ).toHaveLength(1);
    expect(allowed.core!.includes(roomOf(path.join(srcDir, 'build/index.ts')))).toBe(false);
  });
});
