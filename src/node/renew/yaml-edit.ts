import { isMap, isScalar, isSeq, type Document, type Scalar, type YAMLMap, type YAMLSeq } from 'yaml';

/**
 * Surgical edits of YAML text: the Document API finds the node, its source range says where it
 * is, and only those bytes change, so comments, indentation and the rest stay byte-identical
 * (Document.toString() would re-indent sequences and re-flow scalars).
 */

function render(value: string): string {
  return /^[A-Za-z0-9_./=*+-][A-Za-z0-9_./=*,:+-]*$/.test(value) &&
    !/^(true|false|null|~|yes|no|on|off|\d+)$/i.test(value)
    ? value
    : JSON.stringify(value);
}

function lineEnd(text: string, offset: number): number {
  const nl = text.indexOf('\n', offset);
  return nl < 0 ? text.length : nl + 1;
}

function lineStart(text: string, offset: number): number {
  return text.lastIndexOf('\n', offset - 1) + 1;
}

/** Replaces one scalar's value in the text it was parsed from. */
export function replaceScalar(text: string, node: Scalar, value: string): string {
  if (!node.range) throw new Error('scalar without a source range');
  const [start, valueEnd] = node.range;
  return text.slice(0, start) + render(value) + text.slice(valueEnd);
}

/** Appends an item to a block sequence, with the same indentation as its last item. */
export function appendSeqItem(text: string, seq: YAMLSeq, value: string): string {
  const last = seq.items[seq.items.length - 1];
  if (!isScalar(last) || !last.range || seq.flow)
    throw new Error('only block sequences of scalars can be extended');
  const start = lineStart(text, last.range[0]);
  const prefix = text.slice(start, last.range[0]);
  if (!/^\s*-\s+$/.test(prefix)) throw new Error('the last item is not on its own "- " line');
  const at = lineEnd(text, last.range[1]);
  const sep = at === text.length && !text.endsWith('\n') ? '\n' : '';
  return `${text.slice(0, at)}${sep}${prefix}${render(value)}\n${text.slice(at)}`;
}

/** Sets a top-level key of a block mapping document: its scalar value replaced, or a line added. */
export function setTopLevelScalar(text: string, doc: Document, key: string, value: string): string {
  const map = doc.contents;
  if (!isMap(map)) throw new Error('the document is not a mapping');
  const pair = (map as YAMLMap).items.find((p) => isScalar(p.key) && p.key.value === key);
  if (pair && isScalar(pair.value)) return replaceScalar(text, pair.value, value);
  if (pair) throw new Error(`${key} is not a scalar`);
  if (!map.range || map.flow) throw new Error('only block mappings can be extended');
  const at = lineEnd(text, map.range[1]);
  const sep = at === text.length && !text.endsWith('\n') ? '\n' : '';
  return `${text.slice(0, at)}${sep}${key}: ${render(value)}\n${text.slice(at)}`;
}

export { isSeq };
