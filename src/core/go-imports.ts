/**
 * The header of a Go file: its import paths, and whether it embeds files (//go:embed). Pure,
 * and deliberately lenient: it reads the package clause and the import declarations and stops
 * at the first other token, returning what it found; a malformed file is `go build`'s to
 * report. Used to find the packages one command needs, so that only those are shipped.
 */
export interface GoFileHeader {
  imports: string[];
  /** a //go:embed directive appears in the file (its patterns may name any file below the package) */
  embeds: boolean;
}

const IDENT_START = /[A-Za-z_\u0080-\uffff]/;
const IDENT_PART = /[A-Za-z0-9_\u0080-\uffff]/;

export function scanGoHeader(src: string): GoFileHeader {
  const imports: string[] = [];
  const embeds = /^\/\/go:embed[ \t]/m.test(src);
  let i = 0;

  /** Skips white space, semicolons and comments; false at an unterminated block comment. */
  const skip = (): boolean => {
    while (i < src.length) {
      const c = src[i]!;
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === ';') i++;
      else if (src.startsWith('//', i)) {
        const nl = src.indexOf('\n', i);
        i = nl < 0 ? src.length : nl + 1;
      } else if (src.startsWith('/*', i)) {
        const end = src.indexOf('*/', i + 2);
        if (end < 0) return false;
        i = end + 2;
      } else break;
    }
    return true;
  };
  const ident = (): string => {
    if (i >= src.length || !IDENT_START.test(src[i]!)) return '';
    const start = i;
    while (i < src.length && IDENT_PART.test(src[i]!)) i++;
    return src.slice(start, i);
  };
  const keyword = (word: string): boolean => {
    if (!src.startsWith(word, i)) return false;
    const after = src[i + word.length];
    if (after !== undefined && IDENT_PART.test(after)) return false;
    i += word.length;
    return true;
  };
  /** An interpreted or raw string literal's value; undefined when there is none here. */
  const stringLit = (): string | undefined => {
    const q = src[i];
    if (q === '`') {
      const end = src.indexOf('`', i + 1);
      if (end < 0) return undefined;
      const v = src.slice(i + 1, end);
      i = end + 1;
      return v;
    }
    if (q !== '"') return undefined;
    let v = '';
    for (let j = i + 1; j < src.length; j++) {
      const c = src[j]!;
      if (c === '\n') return undefined;
      if (c === '\\') {
        // import paths have no escapes in practice; keep the escaped character as it is
        v += src[j + 1] ?? '';
        j++;
      } else if (c === '"') {
        i = j + 1;
        return v;
      } else v += c;
    }
    return undefined;
  };
  /** ImportSpec = [ "." | "_" | name ] path */
  const spec = (): boolean => {
    if (!skip()) return false;
    if (src[i] === '.') i++;
    else ident();
    if (!skip()) return false;
    const path = stringLit();
    if (path === undefined) return false;
    imports.push(path);
    return true;
  };

  if (!skip() || !keyword('package') || !skip() || !ident()) return { imports, embeds };
  for (;;) {
    if (!skip() || !keyword('import') || !skip()) break;
    if (src[i] === '(') {
      i++;
      let closed = false;
      for (;;) {
        if (!skip()) break;
        if (src[i] === ')') {
          i++;
          closed = true;
          break;
        }
        if (!spec()) break;
      }
      if (!closed) break;
    } else if (!spec()) break;
  }
  return { imports, embeds };
}

/** Standard-library paths have no dot in their first element ("C" is cgo's pseudo-package). */
export function isStandardImport(path: string): boolean {
  const first = path.split('/')[0] ?? '';
  return !first.includes('.');
}
