import { describe, expect, it } from 'vitest';
import { reporter, type Progress } from '../../src/core/progress.js';
import { Output } from '../../src/ui/output.js';

describe('one progress shape (core/progress.ts)', () => {
  it('reporter: members left out are no-ops, given ones are called with their text', () => {
    const seen: string[] = [];
    const r = reporter({ info: (t) => seen.push(`info ${t}`), detail: (t) => seen.push(`detail ${t}`) });
    r.step('s');
    r.progress('1/2');
    r.warn('w');
    r.fail();
    r.info('i');
    r.detail('d');
    expect(seen).toEqual(['info i', 'detail d']);
    expect(() => reporter().step('nothing listens')).not.toThrow();
  });

  it("the CLI's Output is a Progress and keeps its `this` when called through reporter", () => {
    const written: string[] = [];
    const stream = { isTTY: false, write: (s: string) => written.push(s) } as unknown as NodeJS.WriteStream;
    const out: Progress = new Output({ json: false, verbose: true, stream, env: {} });
    const r = reporter(out);
    r.step('phase one');
    r.info('waiting for another build');
    r.warn('careful');
    r.detail('a build line');
    expect(written).toEqual([
      '• phase one\n',
      'waiting for another build\n',
      'warning: careful\n',
      'a build line\n',
    ]);
  });
});
