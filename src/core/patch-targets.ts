import { KfError, UsageError } from './errors.js';
import {
  codeTokens,
  endsStatement,
  GoSyntaxError,
  matchingClose,
  tokenizeGo,
  type GoToken,
} from './go-tokenizer.js';
import type { KubeVersion } from './types.js';
import { kubeAtLeast, kubeMinorText } from './version.js';

/**
 * Where the validity durations stand in kubeadm's Go source (pure): reads the declarations of the
 * tree's files — the constants, client-go's CA function and its NotAfter field — and says "source
 * drift" where they are not as a known release has them. The rewrite and the diff are patch.ts.
 *
 * Targets (facts/kubeadm-source.md):
 * - 1.15-1.30: `CertificateValidity` in constants.go (leaf) and the `NotAfter` duration inside
 *   client-go's `NewSelfSignedCACert` in cert.go (CA).
 * - 1.31+: `CertificateValidityPeriod` (leaf) and `CACertificateValidityPeriod` (CA), both in
 *   constants.go.
 */

export const CONSTANTS_FILE = 'cmd/kubeadm/app/constants/constants.go';
export const CLIENT_GO_CERT_FILE = 'staging/src/k8s.io/client-go/util/cert/cert.go';
/** The package of CLIENT_GO_CERT_FILE as kubeadm imports it, and the kubeadm package that imports it. */
export const CLIENT_GO_CERT_PACKAGE = 'k8s.io/client-go/util/cert';
export const CLIENT_GO_CERT_IMPORTER = 'cmd/kubeadm/app/util/pkiutil';
/** Read only: where kubeadm 1.31+ has its own NewSelfSignedCACert (checked so the CA patch is not silently lost). */
export const KUBEADM_PKI_HELPERS_FILE = 'cmd/kubeadm/app/util/pkiutil/pki_helpers.go';
/** Every file the patch may read (it writes only the first two). */
export const PATCH_FILES = [CONSTANTS_FILE, CLIENT_GO_CERT_FILE, KUBEADM_PKI_HELPERS_FILE] as const;

export const LEGACY_LEAF_CONSTANT = 'CertificateValidity';
export const LEAF_CONSTANT = 'CertificateValidityPeriod';
export const CA_CONSTANT = 'CACertificateValidityPeriod';
export const CA_FUNCTION = 'NewSelfSignedCACert';
/** How the cert.go target is named in reports and errors. */
export const CA_FUNCTION_TARGET = `${CA_FUNCTION}.NotAfter`;

/** File contents by relative path; undefined = the file does not exist in the tree. */
export type SourceFiles = Record<string, string | undefined>;

/** The two layouts of the validity code. */
export type PatchShape = 'certificate-validity' | 'validity-period';

export interface PatchOptions {
  /** the tree's version when known: <=1.14 is refused, and the shape must match it */
  kube?: KubeVersion | undefined;
  /**
   * the cert.go `go build` compiles (the adapter resolves the import): CLIENT_GO_CERT_FILE when
   * vendor/k8s.io/client-go links into staging (the default), the vendored copy's path when
   * vendor/ holds a real copy. The staging file, when it exists beside a copy, is patched too so
   * that both stay the same.
   */
  clientGoCertFile?: string | undefined;
}

/** Which validity a target holds. */
export type TargetRole = 'leaf' | 'ca';

/** One target found: the duration expression's source range, and what a rewrite needs to know. */
export interface TargetSpan {
  file: string;
  /** the target's name, e.g. CertificateValidity or NewSelfSignedCACert.NotAfter */
  target: string;
  role: TargetRole;
  /** character offsets of the expression in the file, [start, end) */
  start: number;
  end: number;
  /** 1-based line of the expression */
  line: number;
  /** the name the file imports "time" under */
  timePackage: string;
}

export interface LocatedTargets {
  /** every target, grouped by file, constants.go first */
  spans: TargetSpan[];
  /** what a reader should know about the targets, e.g. that a vendored copy is the one compiled */
  notes: string[];
}

function drift(file: string, target: string, what: string): KfError {
  return new KfError(
    `source drift in ${file}: ${target} ${what}`,
    'this tree does not match a Kubernetes release that kubeadm-forever knows (1.15 or later, unmodified); check the tree, or patch it by hand and build with --source-dir',
  );
}

function tokensOf(file: string, src: string): GoToken[] {
  try {
    return codeTokens(tokenizeGo(src));
  } catch (err) {
    if (err instanceof GoSyntaxError)
      throw new KfError(
        `cannot read ${file} as Go: ${err.message}`,
        'check that the tree is an unmodified Kubernetes source',
      );
    throw err;
  }
}

/** A top-level const/var spec: its names and the token range of its value list. */
interface ValueSpec {
  names: GoToken[];
  /** indexes into the code tokens, [valueStart, valueEnd) ; equal when there is no `=` */
  valueStart: number;
  valueEnd: number;
}

function isOp(t: GoToken | undefined, text: string): boolean {
  return t !== undefined && t.kind === 'op' && t.text === text;
}

/**
 * Parses one ValueSpec starting at `i`. Ends at `;`, at a newline that ends a statement, or at
 * the `)` that closes a group (not consumed). Returns the spec and the index after it.
 */
function parseValueSpec(toks: GoToken[], i: number): { spec: ValueSpec; next: number } {
  const names: GoToken[] = [];
  let k = i;
  while (toks[k]?.kind === 'ident') {
    names.push(toks[k]!);
    k++;
    if (isOp(toks[k], ',')) k++;
    else break;
  }
  let depth = 0;
  let valueStart = -1;
  for (; k < toks.length; k++) {
    const t = toks[k]!;
    if (t.kind === 'op') {
      if (depth === 0 && t.text === '=' && valueStart < 0) {
        valueStart = k + 1;
        continue;
      }
      if (t.text === '(' || t.text === '[' || t.text === '{') depth++;
      else if (t.text === ')' || t.text === ']' || t.text === '}') {
        if (depth === 0) break;
        depth--;
      } else if (depth === 0 && t.text === ';') break;
    } else if (t.kind === 'newline' && depth === 0 && endsStatement(toks[k - 1])) break;
  }
  let valueEnd = k;
  if (valueStart < 0) valueStart = valueEnd;
  // Trailing newlines are not part of the value.
  while (valueEnd > valueStart && toks[valueEnd - 1]!.kind === 'newline') valueEnd--;
  const next = isOp(toks[k], ';') ? k + 1 : k;
  return { spec: { names, valueStart, valueEnd }, next };
}

/** Every top-level const and var spec of a file (function-local ones are not declarations of the package). */
function topLevelSpecs(toks: GoToken[]): ValueSpec[] {
  const specs: ValueSpec[] = [];
  let braces = 0;
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i]!;
    if (t.kind === 'op') {
      if (t.text === '{') braces++;
      else if (t.text === '}') braces--;
      continue;
    }
    if (braces !== 0 || t.kind !== 'ident' || (t.text !== 'const' && t.text !== 'var')) continue;
    if (isOp(toks[i + 1], '(')) {
      const close = matchingClose(toks, i + 1);
      let k = i + 2;
      while (k < close) {
        if (toks[k]!.kind === 'newline' || isOp(toks[k], ';')) {
          k++;
          continue;
        }
        const { spec, next } = parseValueSpec(toks, k);
        if (spec.names.length > 0) specs.push(spec);
        k = next > k ? next : k + 1;
      }
      i = close < 0 ? toks.length : close;
    } else {
      const { spec, next } = parseValueSpec(toks, i + 1);
      if (spec.names.length > 0) specs.push(spec);
      i = next - 1;
    }
  }
  return specs;
}

function declarationsOf(specs: ValueSpec[], name: string): ValueSpec[] {
  return specs.filter((s) => s.names.some((n) => n.text === name));
}

/** The name the file imports "time" under (refuses a file without it: the expression needs it). */
function timePackageName(file: string, toks: GoToken[], target: string): string {
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i]!;
    if (t.kind === 'string' && t.text === '"time"') {
      const prev = toks[i - 1];
      if (prev?.kind === 'ident' && prev.text !== 'import') {
        if (prev.text === '_' || prev.text === '.') break;
        return prev.text;
      }
      if (isOp(prev, '.')) break;
      return 'time';
    }
    if (
      t.kind === 'ident' &&
      (t.text === 'func' || t.text === 'const' || t.text === 'var' || t.text === 'type')
    )
      break;
  }
  throw drift(file, target, 'cannot be rewritten: the file does not import "time" by name');
}

function rangeText(src: string, toks: GoToken[], from: number, to: number): string {
  return src.slice(toks[from]!.start, toks[to - 1]!.end);
}

/** A constant's value: exactly one single-name top-level declaration with a value. */
function constantSpan(
  file: string,
  src: string,
  toks: GoToken[],
  specs: ValueSpec[],
  name: string,
  role: TargetRole,
): TargetSpan {
  const decls = declarationsOf(specs, name);
  if (decls.length === 0) throw drift(file, name, 'is not declared (the target is missing)');
  if (decls.length > 1) {
    const lines = decls.map((d) => d.names.find((n) => n.text === name)!.line).join(', ');
    throw new KfError(
      `ambiguous target in ${file}: ${name} is declared ${decls.length} times (lines ${lines})`,
      'the tree is modified or not a Kubernetes release: fix the file so that it declares the constant once',
    );
  }
  const d = decls[0]!;
  const nameTok = d.names.find((n) => n.text === name)!;
  if (d.names.length !== 1 || d.valueEnd <= d.valueStart) {
    throw drift(file, name, `at line ${nameTok.line} is not a single constant with a value`);
  }
  const timePackage = timePackageName(file, toks, name);
  const first = toks[d.valueStart]!;
  return {
    file,
    target: name,
    role,
    start: first.start,
    end: toks[d.valueEnd - 1]!.end,
    line: first.line,
    timePackage,
  };
}

/** Token indexes of the names of top-level functions (not methods) called `name`. */
function topLevelFuncs(toks: GoToken[], name: string): number[] {
  const funcs: number[] = [];
  let braces = 0;
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i]!;
    if (t.kind === 'op' && t.text === '{') braces++;
    else if (t.kind === 'op' && t.text === '}') braces--;
    else if (braces === 0 && t.kind === 'ident' && t.text === 'func') {
      const next = toks[i + 1];
      if (next?.kind === 'ident' && next.text === name) funcs.push(i + 1);
    }
  }
  return funcs;
}

/** The CA's duration: the argument of `.Add(...)` in the one `NotAfter:` of NewSelfSignedCACert. */
function caFunctionSpan(file: string, src: string, toks: GoToken[]): TargetSpan {
  const target = CA_FUNCTION_TARGET;
  const funcs = topLevelFuncs(toks, CA_FUNCTION);
  if (funcs.length === 0) throw drift(file, target, `cannot be found: there is no function ${CA_FUNCTION}`);
  if (funcs.length > 1) {
    throw new KfError(
      `ambiguous target in ${file}: ${CA_FUNCTION} is declared ${funcs.length} times (lines ${funcs.map((f) => toks[f]!.line).join(', ')})`,
      'the tree is modified or not a Kubernetes release: fix the file so that it declares the function once',
    );
  }
  const nameIdx = funcs[0]!;
  if (!isOp(toks[nameIdx + 1], '('))
    throw drift(file, target, `cannot be found: ${CA_FUNCTION} is not a plain function`);
  const paramsEnd = matchingClose(toks, nameIdx + 1);
  let bodyStart = -1;
  for (let k = paramsEnd + 1, depth = 0; paramsEnd > 0 && k < toks.length; k++) {
    const t = toks[k]!;
    if (isOp(t, '(') || isOp(t, '[')) depth++;
    else if (isOp(t, ')') || isOp(t, ']')) depth--;
    else if (depth === 0 && isOp(t, '{')) {
      bodyStart = k;
      break;
    }
  }
  const bodyEnd = bodyStart < 0 ? -1 : matchingClose(toks, bodyStart);
  if (bodyEnd < 0) throw drift(file, target, `cannot be found: the body of ${CA_FUNCTION} does not parse`);

  const keys: number[] = [];
  for (let k = bodyStart + 1; k < bodyEnd; k++) {
    const t = toks[k]!;
    if (t.kind === 'ident' && t.text === 'NotAfter' && isOp(toks[k + 1], ':') && !isOp(toks[k - 1], '.'))
      keys.push(k);
  }
  if (keys.length === 0) throw drift(file, target, `is missing: ${CA_FUNCTION} sets no NotAfter field`);
  if (keys.length > 1) {
    throw new KfError(
      `ambiguous target in ${file}: ${CA_FUNCTION} sets NotAfter ${keys.length} times (lines ${keys.map((k) => toks[k]!.line).join(', ')})`,
      'the tree is modified or not a Kubernetes release: fix the function so that it sets NotAfter once',
    );
  }
  // The value runs to the `,` or `}` that ends the composite-literal element.
  const valueStart = keys[0]! + 2;
  let valueEnd = valueStart;
  for (let depth = 0; valueEnd < bodyEnd; valueEnd++) {
    const t = toks[valueEnd]!;
    if (isOp(t, '(') || isOp(t, '[') || isOp(t, '{')) depth++;
    else if (isOp(t, ')') || isOp(t, ']') || isOp(t, '}')) {
      if (depth === 0) break;
      depth--;
    } else if (depth === 0 && isOp(t, ',')) break;
  }
  const adds: number[] = [];
  for (let k = valueStart, depth = 0; k < valueEnd; k++) {
    const t = toks[k]!;
    if (isOp(t, '(') || isOp(t, '[') || isOp(t, '{')) depth++;
    else if (isOp(t, ')') || isOp(t, ']') || isOp(t, '}')) depth--;
    else if (
      depth === 0 &&
      t.kind === 'ident' &&
      t.text === 'Add' &&
      isOp(toks[k - 1], '.') &&
      isOp(toks[k + 1], '(')
    )
      adds.push(k);
  }
  const value = valueEnd > valueStart ? rangeText(src, toks, valueStart, valueEnd) : '';
  if (adds.length !== 1) {
    throw drift(
      file,
      target,
      `has an unexpected form at line ${toks[keys[0]!]!.line}: ${value} (expected something like now.Add(duration365d * 10).UTC())`,
    );
  }
  const open = adds[0]! + 1;
  const close = matchingClose(toks, open);
  const args = toks.slice(open + 1, close).filter((t) => t.kind !== 'newline');
  if (close < 0 || args.length === 0 || args.some((t) => isOp(t, ','))) {
    throw drift(file, target, `has an unexpected form at line ${toks[keys[0]!]!.line}: ${value}`);
  }
  const timePackage = timePackageName(file, toks, target);
  return {
    file,
    target,
    role: 'ca',
    start: args[0]!.start,
    end: args[args.length - 1]!.end,
    line: args[0]!.line,
    timePackage,
  };
}

/** Refuses trees whose kubeadm has no validity constant (<=1.14), with the reason. */
export function assertPatchableKube(kube: KubeVersion): void {
  if (kube.major !== 1 || !kubeAtLeast(kube, 1, 15)) {
    throw new UsageError(
      `cannot patch Kubernetes ${kubeMinorText(kube)}: kubeadm <=1.14 has no CertificateValidity constant (it signs through client-go with a file-local duration365d)`,
      'use a Kubernetes 1.15 or later source tree',
    );
  }
}

/** Which layout constants.go has: by its declarations, cross-checked with the version when known. */
export function detectPatchShape(constantsSrc: string, opts: PatchOptions = {}): PatchShape {
  const specs = topLevelSpecs(tokensOf(CONSTANTS_FILE, constantsSrc));
  const has = (n: string) => declarationsOf(specs, n).length > 0;
  const expected: PatchShape | undefined = opts.kube
    ? kubeAtLeast(opts.kube, 1, 31)
      ? 'validity-period'
      : 'certificate-validity'
    : undefined;
  let found: PatchShape | undefined;
  if (has(LEAF_CONSTANT) || has(CA_CONSTANT)) found = 'validity-period';
  else if (has(LEGACY_LEAF_CONSTANT)) found = 'certificate-validity';
  if (expected) {
    if (found !== expected) {
      const want =
        expected === 'validity-period' ? `${LEAF_CONSTANT} and ${CA_CONSTANT}` : LEGACY_LEAF_CONSTANT;
      throw drift(CONSTANTS_FILE, want, `is not declared, as Kubernetes ${kubeMinorText(opts.kube!)} should`);
    }
    return expected;
  }
  if (!found) {
    throw drift(
      CONSTANTS_FILE,
      `${LEGACY_LEAF_CONSTANT} (1.15-1.30) / ${LEAF_CONSTANT} (1.31+)`,
      'is not declared; kubeadm 1.14 and older have no such constant and are not supported',
    );
  }
  return found;
}

/**
 * Finds every target of a tree: the expression that holds each validity, in the order the patch
 * rewrites them (constants.go first). Throws KfError naming file and target on drift (missing) or
 * ambiguity (declared twice), so a result always holds every target the tree's layout has.
 */
export function locateTargets(files: SourceFiles, opts: PatchOptions = {}): LocatedTargets {
  if (opts.kube) assertPatchableKube(opts.kube);
  const constantsSrc = files[CONSTANTS_FILE];
  if (constantsSrc === undefined) {
    throw drift(
      CONSTANTS_FILE,
      'the validity constant',
      'cannot be found: the file does not exist (is this a Kubernetes source tree?)',
    );
  }
  const shape = detectPatchShape(constantsSrc, opts);
  const spans: TargetSpan[] = [];
  const notes: string[] = [];
  const constToks = tokensOf(CONSTANTS_FILE, constantsSrc);
  const constSpecs = topLevelSpecs(constToks);
  const constant = (name: string, role: TargetRole) =>
    constantSpan(CONSTANTS_FILE, constantsSrc, constToks, constSpecs, name, role);
  if (shape === 'validity-period') {
    spans.push(constant(LEAF_CONSTANT, 'leaf'), constant(CA_CONSTANT, 'ca'));
    return { spans, notes };
  }
  spans.push(constant(LEGACY_LEAF_CONSTANT, 'leaf'));
  // Before 1.31 kubeadm makes its CAs with client-go's function; a kubeadm-own one would not see
  // the client-go patch, so the CA would silently keep 10 years.
  const helpersSrc = files[KUBEADM_PKI_HELPERS_FILE];
  if (helpersSrc !== undefined) {
    const own = topLevelFuncs(tokensOf(KUBEADM_PKI_HELPERS_FILE, helpersSrc), CA_FUNCTION);
    if (own.length > 0) {
      throw drift(
        KUBEADM_PKI_HELPERS_FILE,
        CA_FUNCTION,
        `is kubeadm's own CA generator here, but constants.go has no ${CA_CONSTANT}: the client-go patch would not reach the CA`,
      );
    }
  }
  // the compiled file first; the staging copy beside a vendored copy is kept the same
  const compiled = opts.clientGoCertFile ?? CLIENT_GO_CERT_FILE;
  const certFiles = [compiled];
  if (compiled !== CLIENT_GO_CERT_FILE && files[CLIENT_GO_CERT_FILE] !== undefined) {
    certFiles.push(CLIENT_GO_CERT_FILE);
    notes.push(
      `${compiled} is a copy in vendor/ (not a link into staging/): the build compiles it, so it is patched; ${CLIENT_GO_CERT_FILE} is patched the same way to stay consistent`,
    );
  }
  for (const file of certFiles) {
    const certSrc = files[file];
    if (certSrc === undefined)
      throw drift(file, CA_FUNCTION_TARGET, 'cannot be found: the file does not exist');
    spans.push(caFunctionSpan(file, certSrc, tokensOf(file, certSrc)));
  }
  return { spans, notes };
}
