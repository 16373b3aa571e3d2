import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readPatchInputs } from '../../src/adapters/source-tree.js';
import { CLIENT_GO_CERT_FILE, CONSTANTS_FILE } from '../../src/core/patch-targets.js';
import { computePatch } from '../../src/core/patch.js';
import { resolveValidityPair } from '../../src/core/validity.js';
import { formatPatchResult, runPatch } from '../../src/commands/patch.js';
import { formatPlanResult, runPlan } from '../../src/commands/plan.js';
import { captureIo } from '../helpers/command-io.js';
import { composeShape, type FixtureShape } from '../helpers/fixtures.js';

// A tree whose vendor/k8s.io/* are real copies, not links into staging/. The
// build compiles the vendored cert.go, so that is the file the patch must change (and the
// staging copy is kept the same).

const VENDORED_CERT = 'vendor/k8s.io/client-go/util/cert/cert.go';
const v = resolveValidityPair('199y', '200y');
const temps: string[] = [];
function shape(mode: FixtureShape, vendor: 'links' | 'copies'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `kf-vendored-${mode}-`));
  temps.push(dir);
  return composeShape(mode, dir, { vendor });
}
afterEach(() => {
  for (const t of temps.splice(0)) fs.rmSync(t, { recursive: true, force: true });
});

describe('the cert.go the build compiles', () => {
  it.each(['gopath', 'module'] as const)(
    '%s mode: the staging file through the vendor link',
    async (mode) => {
      const root = shape(mode, 'links');
      const inputs = await readPatchInputs(root, mode);
      expect(inputs.clientGoCertFile).toBe(CLIENT_GO_CERT_FILE);
      const r = computePatch(inputs.files, v, { clientGoCertFile: inputs.clientGoCertFile });
      expect(r.files.map((f) => f.file)).toEqual([CONSTANTS_FILE, CLIENT_GO_CERT_FILE]);
      expect(r.notes).toEqual([]);
    },
  );

  it.each(['gopath', 'module'] as const)(
    '%s mode: the vendored copy, and the staging copy kept the same',
    async (mode) => {
      const root = shape(mode, 'copies');
      expect(fs.lstatSync(path.join(root, 'vendor/k8s.io/client-go')).isDirectory()).toBe(true);
      const inputs = await readPatchInputs(root, mode);
      expect(inputs.clientGoCertFile).toBe(VENDORED_CERT);
      const r = computePatch(inputs.files, v, { clientGoCertFile: inputs.clientGoCertFile });
      expect(r.files.map((f) => f.file)).toEqual([CONSTANTS_FILE, VENDORED_CERT, CLIENT_GO_CERT_FILE]);
      const [, vendored, staging] = r.files;
      expect(vendored!.after).toContain('now.Add(time.Hour * 24 * 365 * 200)');
      expect(staging!.after).toBe(vendored!.after);
      expect(r.notes).toEqual([expect.stringContaining(`${VENDORED_CERT} is a copy in vendor/`)]);
    },
  );

  it('reads the build mode itself when not told (patch DIR)', async () => {
    const root = shape('gopath', 'copies');
    expect((await readPatchInputs(root)).clientGoCertFile).toBe(VENDORED_CERT);
  });

  it('a go.work tree compiles the workspace module, not a stray vendored copy', async () => {
    const root = shape('module', 'copies');
    fs.writeFileSync(
      path.join(root, 'go.work'),
      'go 1.19\n\nuse (\n\t.\n\t./staging/src/k8s.io/client-go\n\t./staging/src/k8s.io/component-base\n)\n',
    );
    expect((await readPatchInputs(root, 'module')).clientGoCertFile).toBe(CLIENT_GO_CERT_FILE);
  });

  it('a copy whose util/cert links back into staging compiles staging', async () => {
    const root = shape('gopath', 'copies');
    const certDir = path.join(root, 'vendor/k8s.io/client-go/util/cert');
    fs.rmSync(certDir, { recursive: true });
    fs.symlinkSync('../../../../staging/src/k8s.io/client-go/util/cert', certDir);
    expect((await readPatchInputs(root, 'gopath')).clientGoCertFile).toBe(CLIENT_GO_CERT_FILE);
  });

  it('a vendored copy without cert.go is drift naming the vendored file', async () => {
    const root = shape('gopath', 'copies');
    fs.rmSync(path.join(root, VENDORED_CERT));
    const inputs = await readPatchInputs(root, 'gopath');
    expect(() => computePatch(inputs.files, v, { clientGoCertFile: inputs.clientGoCertFile })).toThrow(
      `source drift in ${VENDORED_CERT}: NewSelfSignedCACert.NotAfter cannot be found: the file does not exist`,
    );
  });
});

describe('plan and patch show the path actually patched', () => {
  it.each(['gopath', 'module'] as const)(
    'plan --source-dir (%s) diffs the vendored file and says why',
    async (mode) => {
      const root = shape(mode, 'copies');
      const io = captureIo();
      const doc = await runPlan(
        { kubernetesVersion: 'v1.27.3', sourceDir: root, cacheDir: path.join(root, '.no-cache') },
        io,
      );
      expect(io.told()).toBe('');
      expect(doc.patches!.files.map((f: { file: string }) => f.file)).toEqual([
        CONSTANTS_FILE,
        VENDORED_CERT,
        CLIENT_GO_CERT_FILE,
      ]);
      expect(doc.patches!.diff).toContain(`--- a/${VENDORED_CERT}\n+++ b/${VENDORED_CERT}\n`);
      expect(doc.notes.join('\n')).toContain(`${VENDORED_CERT} is a copy in vendor/`);
      const text = formatPlanResult(doc);
      expect(text).toContain(`+++ b/${VENDORED_CERT}`);
    },
  );

  it('patch --check prints the vendored file in the diff (notes on stderr), patch writes both copies', async () => {
    const root = shape('gopath', 'copies');
    const io = captureIo();
    const check = formatPatchResult(await runPatch({ dir: root, check: true }, io));
    expect(check).toContain(`+++ b/${VENDORED_CERT}`);
    expect(check).not.toContain('note:');
    expect(io.told()).toContain(`note: ${VENDORED_CERT} is a copy in vendor/`);
    const r = await runPatch({ dir: root, check: false }, captureIo());
    expect(r.written).toEqual([CONSTANTS_FILE, VENDORED_CERT, CLIENT_GO_CERT_FILE]);
    const vendored = fs.readFileSync(path.join(root, VENDORED_CERT), 'utf8');
    expect(vendored).toContain('now.Add(time.Hour * 24 * 365 * 200)');
    expect(fs.readFileSync(path.join(root, CLIENT_GO_CERT_FILE), 'utf8')).toBe(vendored);
  });
});
