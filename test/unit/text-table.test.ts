import { describe, expect, it } from 'vitest';
import { formatTable } from '../../src/core/text-table.js';

describe('formatTable', () => {
  const header = ['NODE', 'STATE'];
  const rows = [
    ['cp1', 'done'],
    ['worker-long', ''],
  ];

  it('plain: columns as wide as their widest cell, two spaces apart, no trailing spaces', () => {
    expect(formatTable(header, rows)).toBe('NODE         STATE\ncp1          done\nworker-long');
  });

  it('markdown: a rule under the header, every cell padded', () => {
    expect(formatTable(header, rows, 'markdown')).toBe(
      [
        '| NODE        | STATE |',
        '|-------------|-------|',
        '| cp1         | done  |',
        '| worker-long |       |',
      ].join('\n'),
    );
  });
});
