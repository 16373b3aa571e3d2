/**
 * Tables of text columns, each column as wide as its widest cell. `plain`: cells two spaces
 * apart, trailing spaces cut (the tool's human tables); `markdown`: `| a | b |` with a rule under
 * the header, which reads as a table in a terminal and pastes into a Markdown document as one.
 */
export type TableStyle = 'plain' | 'markdown';

export function formatTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  style: TableStyle = 'plain',
): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const cells = (r: readonly string[]) => widths.map((w, i) => (r[i] ?? '').padEnd(w));
  if (style === 'plain') return all.map((r) => cells(r).join('  ').trimEnd()).join('\n');
  const line = (r: readonly string[]) => `| ${cells(r).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}
