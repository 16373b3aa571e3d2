/**
 * A small Go tokenizer: just enough of the language spec (comments, interpreted and raw strings,
 * runes, identifiers, numbers, operators, newlines) for the patch to tell code from comments and
 * literals and to find declaration boundaries. Pure; throws GoSyntaxError on unterminated input.
 */

export type GoTokenKind = 'ident' | 'number' | 'string' | 'rune' | 'op' | 'comment' | 'newline';

export interface GoToken {
  kind: GoTokenKind;
  text: string;
  /** offset of the first character in the source */
  start: number;
  /** offset after the last character */
  end: number;
  /** 1-based line of `start` */
  line: number;
}

export class GoSyntaxError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(`${message} at line ${line}`);
    this.name = 'GoSyntaxError';
  }
}

export const GO_KEYWORDS = new Set([
  'break',
  'case',
  'chan',
  'const',
  'continue',
  'default',
  'defer',
  'else',
  'fallthrough',
  'for',
  'func',
  'go',
  'goto',
  'if',
  'import',
  'interface',
  'map',
  'package',
  'range',
  'return',
  'select',
  'struct',
  'switch',
  'type',
  'var',
]);

// Longest first, so `<<=` wins over `<<` and `<`.
const OPERATORS = [
  '<<=',
  '>>=',
  '&^=',
  '...',
  '&&',
  '||',
  '<-',
  '++',
  '--',
  '==',
  '!=',
  '<=',
  '>=',
  ':=',
  '+=',
  '-=',
  '*=',
  '/=',
  '%=',
  '&=',
  '|=',
  '^=',
  '<<',
  '>>',
  '&^',
  '+',
  '-',
  '*',
  '/',
  '%',
  '&',
  '|',
  '^',
  '<',
  '>',
  '=',
  '!',
  '(',
  ')',
  '[',
  ']',
  '{',
  '}',
  ',',
  ';',
  '.',
  ':',
  '~',
];

const IDENT_START = /[\p{L}_]/u;
const IDENT_PART = /[\p{L}\p{Nd}_]/u;

/** Splits Go source into tokens; whitespace other than newlines is dropped. */
export function tokenizeGo(src: string): GoToken[] {
  const tokens: GoToken[] = [];
  let i = 0;
  let line = 1;
  const push = (kind: GoTokenKind, start: number, end: number, startLine: number) =>
    tokens.push({ kind, text: src.slice(start, end), start, end, line: startLine });

  while (i < src.length) {
    const c = src[i]!;
    const startLine = line;
    if (c === '\n') {
      push('newline', i, i + 1, line);
      line++;
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v' || c === '\uFEFF') {
      i++;
    } else if (c === '/' && src[i + 1] === '/') {
      let j = src.indexOf('\n', i);
      if (j < 0) j = src.length;
      push('comment', i, j, line);
      i = j;
    } else if (c === '/' && src[i + 1] === '*') {
      const j = src.indexOf('*/', i + 2);
      if (j < 0) throw new GoSyntaxError('unterminated /* comment', line);
      line += countNewlines(src, i, j + 2);
      push('comment', i, j + 2, startLine);
      i = j + 2;
    } else if (c === '`') {
      const j = src.indexOf('`', i + 1);
      if (j < 0) throw new GoSyntaxError('unterminated raw string', line);
      line += countNewlines(src, i, j + 1);
      push('string', i, j + 1, startLine);
      i = j + 1;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < src.length && src[j] !== c) {
        if (src[j] === '\n')
          throw new GoSyntaxError(`newline in ${c === '"' ? 'string' : 'rune'} literal`, line);
        j += src[j] === '\\' ? 2 : 1;
      }
      if (j >= src.length)
        throw new GoSyntaxError(`unterminated ${c === '"' ? 'string' : 'rune'} literal`, line);
      push(c === '"' ? 'string' : 'rune', i, j + 1, line);
      i = j + 1;
    } else if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(src[i + 1] ?? ''))) {
      let j = i + 1;
      const hex = /^0[xX]/.test(src.slice(i, i + 2));
      while (j < src.length) {
        const d = src[j]!;
        const prev = src[j - 1]!;
        const exponentSign = (d === '+' || d === '-') && (hex ? /[pP]/.test(prev) : /[eEpP]/.test(prev));
        if (/[0-9A-Za-z_.]/.test(d) || exponentSign) j++;
        else break;
      }
      push('number', i, j, line);
      i = j;
    } else if (IDENT_START.test(c)) {
      let j = i + 1;
      while (j < src.length && IDENT_PART.test(src[j]!)) j++;
      push('ident', i, j, line);
      i = j;
    } else {
      const op = OPERATORS.find((o) => src.startsWith(o, i));
      if (!op) throw new GoSyntaxError(`unexpected character ${JSON.stringify(c)}`, line);
      push('op', i, i + op.length, line);
      i += op.length;
    }
  }
  return tokens;
}

function countNewlines(src: string, from: number, to: number): number {
  let n = 0;
  for (let k = from; k < to; k++) if (src.charCodeAt(k) === 10) n++;
  return n;
}

/**
 * The tokens the parser cares about: comments dropped, except that a comment spanning lines
 * counts as a newline (as in the Go spec's semicolon rule).
 */
export function codeTokens(tokens: GoToken[]): GoToken[] {
  const out: GoToken[] = [];
  for (const t of tokens) {
    if (t.kind !== 'comment') out.push(t);
    else if (t.text.includes('\n')) out.push({ ...t, kind: 'newline', text: '\n' });
  }
  return out;
}

/** Whether a newline after `t` ends the statement (Go's automatic semicolon insertion). */
export function endsStatement(t: GoToken | undefined): boolean {
  if (!t) return false;
  switch (t.kind) {
    case 'ident':
      return !GO_KEYWORDS.has(t.text) || ['break', 'continue', 'fallthrough', 'return'].includes(t.text);
    case 'number':
    case 'string':
    case 'rune':
      return true;
    case 'op':
      return [')', ']', '}', '++', '--'].includes(t.text);
    default:
      return false;
  }
}

/** Index of the bracket closing the one at `open` (`(`, `[` or `{`), or -1. */
export function matchingClose(tokens: GoToken[], open: number): number {
  let depth = 0;
  for (let k = open; k < tokens.length; k++) {
    const t = tokens[k]!;
    if (t.kind !== 'op') continue;
    if (t.text === '(' || t.text === '[' || t.text === '{') depth++;
    else if (t.text === ')' || t.text === ']' || t.text === '}') {
      depth--;
      if (depth === 0) return k;
    }
  }
  return -1;
}
