import { describe, expect, it } from 'vitest';
import { KfError, UsageError } from '../../src/core/errors.js';
import {
  CLIENT_GO_CERT_FILE,
  CONSTANTS_FILE,
  KUBEADM_PKI_HELPERS_FILE,
  detectPatchShape,
  type SourceFiles,
} from '../../src/core/patch-targets.js';
import { computePatch } from '../../src/core/patch.js';
import { resolveValidityPair } from '../../src/core/validity.js';
import { tokenizeGo } from '../../src/core/go-tokenizer.js';
import {
  certGo,
  certGo128,
  constants115,
  constants128,
  constants131,
  pkiHelpers120,
  pkiHelpers131,
} from './fixtures/go-sources.js';

const v199 = resolveValidityPair('199y', '200y');
const tree = (constants: string, cert: string | undefined = certGo): SourceFiles => ({
  [CONSTANTS_FILE]: constants,
  [CLIENT_GO_CERT_FILE]: cert,
});

function kfErrorOf(fn: () => unknown): KfError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(KfError);
    return err as KfError;
  }
  throw new Error('expected a KfError');
}

/** Lines that differ between two texts, as [before, after] pairs (same line count assumed). */
function changedLines(before: string, after: string): Array<[string, string]> {
  const a = before.split('\n');
  const b = after.split('\n');
  expect(b.length).toBe(a.length);
  return a.map((l, i) => [l, b[i]!] as [string, string]).filter(([x, y]) => x !== y);
}

describe('computePatch, 1.15-1.30 shape', () => {
  it('rewrites CertificateValidity and the NotAfter of NewSelfSignedCACert, nothing else', () => {
    const r = computePatch(tree(constants115), v199);
    expect(r.files.map((f) => f.file)).toEqual([CONSTANTS_FILE, CLIENT_GO_CERT_FILE]);
    expect(changedLines(constants115, r.files[0]!.after)).toEqual([
      ['\tCertificateValidity = time.Hour * 24 * 365', '\tCertificateValidity = time.Hour * 24 * 365 * 199'],
    ]);
    expect(changedLines(certGo, r.files[1]!.after)).toEqual([
      [
        '\t\tNotAfter:              now.Add(duration365d * 10).UTC(),',
        '\t\tNotAfter:              now.Add(time.Hour * 24 * 365 * 200).UTC(),',
      ],
    ]);
    expect(r.files[0]!.targets).toEqual(['CertificateValidity']);
    expect(r.files[1]!.targets).toEqual(['NewSelfSignedCACert.NotAfter']);
    expect(r.changes.map((c) => [c.target, c.line, c.before, c.after])).toEqual([
      ['CertificateValidity', 20, 'time.Hour * 24 * 365', 'time.Hour * 24 * 365 * 199'],
      ['NewSelfSignedCACert.NotAfter', 30, 'duration365d * 10', 'time.Hour * 24 * 365 * 200'],
    ]);
  });

  it('produces a unified diff with a/ and b/ paths', () => {
    const r = computePatch(tree(constants115), v199);
    expect(r.diff).toContain(`--- a/${CONSTANTS_FILE}\n+++ b/${CONSTANTS_FILE}\n`);
    expect(r.diff).toContain(`--- a/${CLIENT_GO_CERT_FILE}\n+++ b/${CLIENT_GO_CERT_FILE}\n`);
    expect(r.diff).toContain(
      '-\tCertificateValidity = time.Hour * 24 * 365\n+\tCertificateValidity = time.Hour * 24 * 365 * 199\n',
    );
    expect(r.diff).not.toContain('===');
  });

  it('leaves CertificateBackdate alone in the 1.28+ shape', () => {
    const r = computePatch(tree(constants128), v199, { kube: { major: 1, minor: 28, patch: 0, pre: '' } });
    expect(changedLines(constants128, r.files[0]!.after)).toEqual([
      ['\tCertificateValidity = time.Hour * 24 * 365', '\tCertificateValidity = time.Hour * 24 * 365 * 199'],
    ]);
    expect(r.files[0]!.after).toContain('CertificateBackdate = time.Minute * 5');
  });

  it('patches the 1.28+ client-go cert.go (NotBefore from the config, random serial)', () => {
    const r = computePatch(
      { ...tree(constants128, certGo128), [KUBEADM_PKI_HELPERS_FILE]: pkiHelpers120 },
      v199,
    );
    expect(changedLines(certGo128, r.files[1]!.after)).toEqual([
      [
        '\t\tNotAfter:              now.Add(duration365d * 10).UTC(),',
        '\t\tNotAfter:              now.Add(time.Hour * 24 * 365 * 200).UTC(),',
      ],
    ]);
  });

  it('refuses a pre-1.31 tree where kubeadm has its own NewSelfSignedCACert (CA patch lost)', () => {
    const err = kfErrorOf(() =>
      computePatch({ ...tree(constants128), [KUBEADM_PKI_HELPERS_FILE]: pkiHelpers131 }, v199),
    );
    expect(err.what).toContain(
      `source drift in ${KUBEADM_PKI_HELPERS_FILE}: NewSelfSignedCACert is kubeadm's own CA generator`,
    );
  });

  it('re-patches whatever expression stands there, and is a no-op with the same values', () => {
    const first = computePatch(tree(constants115), v199);
    const patched = tree(first.files[0]!.after, first.files[1]!.after);
    const again = computePatch(patched, v199);
    expect(again.files).toEqual([]);
    expect(again.diff).toBe('');
    expect(again.changes.every((c) => c.before === c.after)).toBe(true);
    const other = computePatch(patched, resolveValidityPair('100y', '150d'.replace('150d', '120y')));
    expect(other.files[0]!.after).toContain('CertificateValidity = time.Hour * 24 * 365 * 100\n');
    expect(other.files[1]!.after).toContain(
      'NotAfter:              now.Add(time.Hour * 24 * 365 * 120).UTC(),',
    );
    const hours = computePatch(patched, resolveValidityPair('30d', '25h'.replace('25h', '1000h')));
    expect(hours.files[0]!.after).toContain('CertificateValidity = time.Hour * 24 * 30\n');
    expect(hours.files[1]!.after).toContain('now.Add(time.Hour * 1000).UTC()');
  });

  it('leaves the unrelated duration365d * 10, comments and strings untouched', () => {
    const after = computePatch(tree(constants115), v199).files[1]!.after;
    expect(after).toContain('NotAfter:  validFrom.Add(duration365d * 10),');
    expect(after).toContain('// NotAfter: now.Add(duration365d * 10) is what this used to say');
    expect(after).toContain('_ = "NotAfter: now.Add(duration365d * 10).UTC()"');
    const consts = computePatch(tree(constants115), v199).files[0]!.after;
    expect(consts).toContain('var msg = fmt.Sprintf("CertificateValidity = time.Hour * 24 * 365")');
    expect(consts).toContain('// CertificateValidity defines the validity');
  });

  it('keeps a trailing comment and handles a typed declaration and a multi-line expression', () => {
    const src = constants115.replace(
      '\tCertificateValidity = time.Hour * 24 * 365\n',
      '\tCertificateValidity time.Duration = time.Hour *\n\t\t24 * 365 // one year\n',
    );
    const after = computePatch(tree(src), v199).files[0]!.after;
    expect(after).toContain('\tCertificateValidity time.Duration = time.Hour * 24 * 365 * 199 // one year\n');
  });
});

describe('computePatch, 1.31+ shape', () => {
  it('rewrites both constants separately (CA is not turned into the leaf value)', () => {
    const r = computePatch(tree(constants131, undefined), v199, {
      kube: { major: 1, minor: 31, patch: 0, pre: '' },
    });
    expect(r.files.map((f) => f.file)).toEqual([CONSTANTS_FILE]);
    expect(changedLines(constants131, r.files[0]!.after)).toEqual([
      [
        '\tCertificateValidityPeriod = time.Hour * 24 * 365',
        '\tCertificateValidityPeriod = time.Hour * 24 * 365 * 199',
      ],
      [
        '\tCACertificateValidityPeriod = time.Hour * 24 * 365 * 10',
        '\tCACertificateValidityPeriod = time.Hour * 24 * 365 * 200',
      ],
    ]);
    expect(r.files[0]!.targets).toEqual(['CertificateValidityPeriod', 'CACertificateValidityPeriod']);
  });

  it("does not mind kubeadm's own NewSelfSignedCACert from 1.31 (it uses the CA constant)", () => {
    const r = computePatch(
      { [CONSTANTS_FILE]: constants131, [KUBEADM_PKI_HELPERS_FILE]: pkiHelpers131 },
      v199,
    );
    expect(r.files.map((f) => f.file)).toEqual([CONSTANTS_FILE]);
  });

  it('does not need client-go cert.go', () => {
    expect(detectPatchShape(constants131)).toBe('validity-period');
    expect(computePatch({ [CONSTANTS_FILE]: constants131 }, v199).files).toHaveLength(1);
  });
});

describe('computePatch refuses drift and ambiguity, naming file and target', () => {
  it('refuses <=1.14 with the reason', () => {
    const err = (() => {
      try {
        computePatch(tree(constants115), v199, { kube: { major: 1, minor: 14, patch: 3, pre: '' } });
      } catch (e) {
        return e as UsageError;
      }
      throw new Error('no error');
    })();
    expect(err).toBeInstanceOf(UsageError);
    expect(err.what).toMatch(/1\.14.*<=1\.14 has no CertificateValidity constant/);
  });

  it('a tree without the constant', () => {
    const src = constants115.replace('\tCertificateValidity = time.Hour * 24 * 365\n', '');
    const err = kfErrorOf(() => computePatch(tree(src), v199));
    expect(err.what).toContain(CONSTANTS_FILE);
    expect(err.what).toContain('CertificateValidity');
    expect(err.exitCode).toBe(1);
  });

  it('a constant that only appears in comments and strings is not a declaration', () => {
    const src = constants115.replace(
      '\tCertificateValidity = time.Hour * 24 * 365\n',
      "\t/* CertificateValidity = time.Hour * 24 * 365 */\n\tX = `\nCertificateValidity = 1\n`\n\tY = 'C'\n",
    );
    const err = kfErrorOf(() => computePatch(tree(src), v199));
    expect(err.what).toMatch(
      /source drift in cmd\/kubeadm\/app\/constants\/constants.go: CertificateValidity/,
    );
  });

  it('a duplicate declaration', () => {
    const src = `${constants115}\nconst CertificateValidity = time.Hour * 24 * 365 * 2\n`;
    const err = kfErrorOf(() => computePatch(tree(src), v199));
    expect(err.what).toBe(
      `ambiguous target in ${CONSTANTS_FILE}: CertificateValidity is declared 2 times (lines 20, 32)`,
    );
  });

  it('a 1.31 tree missing the CA constant', () => {
    const src = constants131.replace(/\tCACertificateValidityPeriod = .*\n/, '');
    const err = kfErrorOf(() => computePatch(tree(src), v199));
    expect(err.what).toContain(`${CONSTANTS_FILE}: CACertificateValidityPeriod is not declared`);
  });

  it('a version that does not match the shape', () => {
    const err = kfErrorOf(() =>
      computePatch(tree(constants115), v199, { kube: { major: 1, minor: 31, patch: 0, pre: '' } }),
    );
    expect(err.what).toContain('CertificateValidityPeriod and CACertificateValidityPeriod');
  });

  it('cert.go without NewSelfSignedCACert, with it twice, or with an unexpected NotAfter', () => {
    const missing = certGo.replace('func NewSelfSignedCACert(', 'func newSelfSignedCACert(');
    expect(kfErrorOf(() => computePatch(tree(constants115, missing), v199)).what).toBe(
      `source drift in ${CLIENT_GO_CERT_FILE}: NewSelfSignedCACert.NotAfter cannot be found: there is no function NewSelfSignedCACert`,
    );
    const twice = `${certGo}\nfunc NewSelfSignedCACert() {}\n`;
    expect(kfErrorOf(() => computePatch(tree(constants115, twice), v199)).what).toMatch(
      /ambiguous target in .*cert\.go: NewSelfSignedCACert is declared 2 times/,
    );
    const odd = certGo.replace('now.Add(duration365d * 10).UTC()', 'farFuture');
    expect(kfErrorOf(() => computePatch(tree(constants115, odd), v199)).what).toContain(
      'NewSelfSignedCACert.NotAfter has an unexpected form',
    );
    expect(kfErrorOf(() => computePatch({ [CONSTANTS_FILE]: constants115 }, v199)).what).toContain(
      `${CLIENT_GO_CERT_FILE}: NewSelfSignedCACert.NotAfter cannot be found`,
    );
  });

  it('nothing is returned when any target fails (all or nothing starts here)', () => {
    const odd = certGo.replace('now.Add(duration365d * 10).UTC()', 'farFuture');
    expect(() => computePatch(tree(constants115, odd), v199)).toThrow(KfError);
  });

  it('a file that is not Go', () => {
    expect(kfErrorOf(() => computePatch(tree('package x\nconst s = "unterminated\n'), v199)).what).toContain(
      'cannot read cmd/kubeadm/app/constants/constants.go as Go',
    );
  });
});

describe('tokenizeGo', () => {
  it('keeps comments, strings, raw strings and runes as single tokens', () => {
    const toks = tokenizeGo("a := \"x // y\" + `raw /* z */` // c\n/* b\n */ r := '\\''\nx.y<<=2");
    expect(toks.map((t) => `${t.kind}:${t.text}`)).toEqual([
      'ident:a',
      'op::=',
      'string:"x // y"',
      'op:+',
      'string:`raw /* z */`',
      'comment:// c',
      'newline:\n',
      'comment:/* b\n */',
      'ident:r',
      'op::=',
      "rune:'\\''",
      'newline:\n',
      'ident:x',
      'op:.',
      'ident:y',
      'op:<<=',
      'number:2',
    ]);
    expect(toks.at(-1)!.line).toBe(4);
  });
  it('reads numbers with exponents and hex', () => {
    expect(tokenizeGo('1e-3 0x1p-2 0xE+1 1_000').map((t) => t.text)).toEqual([
      '1e-3',
      '0x1p-2',
      '0xE',
      '+',
      '1',
      '1_000',
    ]);
  });
});
