import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fixturesDir, goImage, k8s1202, k8sTarball, repoRoot } from './env.js';

/** Throws with the fix when scripts/test-env.sh has not prepared something. */
export function requireFile(file: string, what: string): void {
  if (!fs.existsSync(file)) {
    throw new Error(`${what} missing at ${file}: run 'sudo bash scripts/test-env.sh up' first`);
  }
}

/**
 * The pristine Debian kubernetes 1.20.2 tree, unpacked once under test/.fixtures. Never modify
 * it: copy it (copyTree) or use `patch --check`.
 */
export function k8sTree(): string {
  requireFile(k8sTarball, "Debian's kubernetes source tarball");
  const dir = path.join(fixturesDir, 'kubernetes-1.20.2');
  if (!fs.existsSync(path.join(dir, 'cmd/kubeadm'))) {
    // Unpack beside it and rename: concurrent test runs never see (or make) a half tree.
    const tmp = fs.mkdtempSync(path.join(fixturesDir, '.unpack-'));
    try {
      execFileSync('tar', ['-xzf', k8sTarball, '-C', tmp, '--strip-components=1', '--no-same-owner']);
      fs.renameSync(tmp, dir);
    } catch (err) {
      fs.rmSync(tmp, { recursive: true, force: true });
      if (!fs.existsSync(path.join(dir, 'cmd/kubeadm'))) throw err;
    }
  }
  return dir;
}

/** A private copy of a tree (cp -a keeps symlinks and modes). */
export function copyTree(src: string, dest: string): string {
  execFileSync('cp', ['-a', `${src}/.`, dest]);
  return dest;
}

/** The build modes of the Kubernetes-shaped Go fixtures (test/fixtures/k8s-shape). */
export type FixtureShape = 'gopath' | 'module' | 'workspace';

const shapesDir = path.join(repoRoot, 'test/fixtures/k8s-shape');

/**
 * A Kubernetes-shaped tree at `dest` (created): the files the modes share, then the mode's own
 * (hack/lib/init.sh; go.mod and vendor/modules.txt for module mode; also go.work and a
 * `## workspace` vendor/modules.txt, needing Go 1.22+, for workspace mode).
 */
export function composeShape(
  shape: FixtureShape,
  dest: string,
  opts: { vendor?: 'links' | 'copies' } = {},
): string {
  fs.mkdirSync(dest, { recursive: true });
  copyTree(path.join(shapesDir, 'common'), dest);
  // workspace modules are not vendored: `go work vendor` leaves no vendor/k8s.io, and links
  // there would make every staging import ambiguous
  if (shape === 'workspace') fs.rmSync(path.join(dest, 'vendor/k8s.io'), { recursive: true, force: true });
  copyTree(path.join(shapesDir, shape), dest);
  if (opts.vendor === 'copies') vendorCopies(dest);
  return dest;
}

/**
 * Replaces every vendor/k8s.io/* link into staging/ with a real copy of what it points at, as
 * some tarballs and uploads have them: the build then compiles the copy.
 */
export function vendorCopies(root: string): void {
  const vendor = path.join(root, 'vendor/k8s.io');
  for (const name of fs.readdirSync(vendor)) {
    const link = path.join(vendor, name);
    if (!fs.lstatSync(link).isSymbolicLink()) continue;
    const target = fs.realpathSync(link);
    fs.rmSync(link);
    fs.cpSync(target, link, { recursive: true });
  }
}

/**
 * An unpatched kubeadm 1.20.2 built from Debian's source with correct version strings, for
 * tests that need a stock node (PKI, renew). Built once with the docker CLI (test
 * infrastructure, not the tool under test) and kept under test/.fixtures.
 */
export function stockKubeadm(): string {
  return buildKubeadmFixture(k8sTree(), 'kubeadm-v1.20.2-stock');
}

/**
 * Builds kubeadm 1.20.2 from `tree` (pristine or patched) with the release's version strings
 * into test/.fixtures/<outName>, once: an existing file is reused. GOPATH mode, as the facts say.
 */
export function buildKubeadmFixture(tree: string, outName: string): string {
  const out = path.join(fixturesDir, outName);
  if (fs.existsSync(out)) return out;
  const pkg = 'k8s.io/kubernetes/vendor/k8s.io';
  const x = (p: string, k: string, v: string) => `-X ${pkg}/${p}.${k}=${v}`;
  const ldflags = [
    '-s -w',
    ...['component-base/version', 'client-go/pkg/version'].flatMap((p) => [
      x(p, 'gitVersion', k8s1202.gitVersion),
      x(p, 'gitCommit', k8s1202.gitCommit),
      x(p, 'gitTreeState', 'clean'),
      x(p, 'gitMajor', '1'),
      x(p, 'gitMinor', '20'),
      x(p, 'buildDate', '2021-01-13T13:25:59Z'),
    ]),
  ].join(' ');
  // pid-unique names: several test runs may build the same fixture at once; the rename wins.
  const name = `kf-test-kubeadm-${process.pid}`;
  const tmpName = `${outName}.${process.pid}.tmp`;
  try {
    execFileSync(
      'docker',
      [
        'run',
        '--name',
        name,
        '--label',
        'kubeadm-forever-test=1',
        '-v',
        `${tree}:/go/src/k8s.io/kubernetes:ro`,
        '-v',
        `${fixturesDir}:/out`,
        // a named volume keeps Go's build cache: the patched build after the stock one relinks
        // in seconds instead of compiling cold again (remove: docker volume rm kf-test-gocache)
        '-v',
        'kf-test-gocache:/gocache',
        '-e',
        'GO111MODULE=off',
        '-e',
        'CGO_ENABLED=0',
        '-e',
        'GOCACHE=/gocache',
        '-w',
        '/go/src/k8s.io/kubernetes',
        goImage,
        'go',
        'build',
        '-ldflags',
        ldflags,
        '-o',
        `/out/${tmpName}`,
        './cmd/kubeadm',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20 * 60_000 },
    );
    fs.renameSync(path.join(fixturesDir, tmpName), out);
  } finally {
    fs.rmSync(path.join(fixturesDir, tmpName), { force: true });
    try {
      execFileSync('docker', ['rm', '-f', name], { stdio: 'ignore' });
    } catch {
      /* already gone */
    }
  }
  return out;
}
