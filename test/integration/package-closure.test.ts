import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { packageClosure } from '../../src/adapters/package-closure.js';
import { CLIENT_GO_CERT_FILE, CONSTANTS_FILE } from '../../src/core/patch-targets.js';
import { composeShape, k8sTree, type FixtureShape } from '../helpers/fixtures.js';

// The files a source volume is filled with: the real file system, the Kubernetes-shaped
// fixtures, and Debian's 1.20.2 tree (whose closure the e2e build then compiles).

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-closure-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function write(root: string, rel: string, text: string): void {
  fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  fs.writeFileSync(path.join(root, rel), text);
}

function fixture(shape: FixtureShape): string {
  return composeShape(shape, fs.mkdtempSync(path.join(work, `${shape}-`)));
}

describe('packageClosure', () => {
  it('GOPATH mode: the command, its packages through the vendor links, nothing else', () => {
    const root = fixture('gopath');
    write(root, 'cmd/kubeadm/app/constants/constants_test.go', 'package constants\n');
    write(root, 'pkg/unused/unused.go', 'package unused\n');
    const sel = packageClosure(root, 'gopath', './cmd/kubeadm');
    expect(sel.files).toContain('cmd/kubeadm/kubeadm.go');
    expect(sel.files).toContain(CONSTANTS_FILE);
    // reached as k8s.io/client-go through vendor/k8s.io/client-go -> ../../staging/src/k8s.io/client-go
    expect(sel.files).toContain(CLIENT_GO_CERT_FILE);
    expect(sel.symlinks).toContain('vendor/k8s.io/client-go');
    expect(sel.files.some((f) => f.startsWith('vendor/k8s.io/client-go/'))).toBe(false);
    expect(sel.files).not.toContain('cmd/kubeadm/app/constants/constants_test.go');
    expect(sel.files).not.toContain('pkg/unused/unused.go');
    expect(sel.files).not.toContain('hack/lib/init.sh');
    expect(sel.packages).toBeGreaterThanOrEqual(4);
  });

  it('module mode: go.mod and vendor/modules.txt come along', () => {
    const root = fixture('module');
    const sel = packageClosure(root, 'module', './cmd/kubeadm');
    expect(sel.files).toEqual(
      expect.arrayContaining(['go.mod', 'vendor/modules.txt', CONSTANTS_FILE, CLIENT_GO_CERT_FILE]),
    );
    expect(sel.symlinks).toContain('vendor/k8s.io/client-go');
  });

  it('module mode with a workspace: go.work modules resolve to their own directories', () => {
    const root = path.join(work, 'workspace');
    write(root, 'go.mod', 'module k8s.io/kubernetes\n\ngo 1.22\n');
    write(root, 'go.work', 'go 1.22\n\nuse (\n\t.\n\t./staging/src/k8s.io/api // the api module\n)\n');
    write(
      root,
      'cmd/kubeadm/kubeadm.go',
      'package main\n\nimport (\n\t"fmt"\n\tv1 "k8s.io/api/core/v1"\n\t"github.com/spf13/cobra"\n)\n',
    );
    write(root, 'staging/src/k8s.io/api/go.mod', 'module k8s.io/api\n');
    write(root, 'staging/src/k8s.io/api/core/v1/types.go', 'package v1\n');
    write(root, 'vendor/github.com/spf13/cobra/cobra.go', 'package cobra\n');
    write(root, 'vendor/modules.txt', '# github.com/spf13/cobra v1.8.0\n');
    const sel = packageClosure(root, 'module', './cmd/kubeadm');
    expect(sel.files).toEqual(
      [
        'cmd/kubeadm/kubeadm.go',
        'go.mod',
        'go.work',
        'staging/src/k8s.io/api/core/v1/types.go',
        'staging/src/k8s.io/api/go.mod',
        'vendor/github.com/spf13/cobra/cobra.go',
        'vendor/modules.txt',
      ].sort(),
    );
    expect(sel.symlinks).toEqual([]);
  });

  it('takes everything below a package that embeds files', () => {
    const root = fixture('gopath');
    write(
      root,
      'cmd/kubeadm/app/phases/embed.go',
      'package phases\n\nimport _ "embed"\n\n//go:embed templates/a.tmpl\nvar a string\n',
    );
    write(root, 'cmd/kubeadm/app/phases/templates/a.tmpl', 'x');
    const sel = packageClosure(root, 'gopath', './cmd/kubeadm');
    expect(sel.files).toContain('cmd/kubeadm/app/phases/templates/a.tmpl');
    // without the directive the subdirectory is not a package of the command
    fs.rmSync(path.join(root, 'cmd/kubeadm/app/phases/embed.go'));
    expect(packageClosure(root, 'gopath', './cmd/kubeadm').files).not.toContain(
      'cmd/kubeadm/app/phases/templates/a.tmpl',
    );
  });

  it('never follows a link out of the tree, and names a missing command', () => {
    const root = fixture('gopath');
    const outside = path.join(work, 'outside-client-go');
    fs.mkdirSync(path.join(outside, 'util/cert'), { recursive: true });
    fs.writeFileSync(path.join(outside, 'util/cert/cert.go'), 'package cert\n');
    fs.rmSync(path.join(root, 'vendor/k8s.io/client-go'));
    fs.symlinkSync(outside, path.join(root, 'vendor/k8s.io/client-go'));
    const sel = packageClosure(root, 'gopath', './cmd/kubeadm');
    expect(sel.files.some((f) => f.includes('..') || path.isAbsolute(f))).toBe(false);
    expect(sel.symlinks).not.toContain('vendor/k8s.io/client-go');
    expect(() => packageClosure(root, 'gopath', './cmd/kubectl')).toThrow(/cmd\/kubectl is missing/);
  });

  it("Debian's 1.20.2: a few thousand files instead of the whole tree, the patch targets among them", () => {
    const tree = k8sTree();
    const sel = packageClosure(tree, 'gopath', './cmd/kubeadm');
    expect(sel.files).toEqual(
      expect.arrayContaining([CONSTANTS_FILE, CLIENT_GO_CERT_FILE, 'cmd/kubeadm/kubeadm.go']),
    );
    expect(sel.files.some((f) => f.endsWith('_test.go'))).toBe(false);
    expect(sel.files.some((f) => f.startsWith('test/') || f.startsWith('cluster/'))).toBe(false);
    // measured: 520 packages (go list -deps finds 505; build tags are not applied here)
    expect(sel.packages).toBeGreaterThan(450);
    expect(sel.files.length).toBeLessThan(6000);
    expect(sel.symlinks).toContain('vendor/k8s.io/client-go');
  });
});
