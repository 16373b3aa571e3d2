import { describe, expect, it } from 'vitest';
import {
  debianGoroot,
  goVersionFromFile,
  gorootLinkRoots,
  imageChanges,
  imageGoVersion,
  imageTags,
  parseDebianGoPackage,
  parseImageName,
  parseLdd,
} from '../../src/core/go-image-layout.js';
import { escapeControl } from '../../src/core/errors.js';

describe('Go image core', () => {
  it('reads the Go version from a VERSION file (Go 1.21+ adds a time line)', () => {
    expect(goVersionFromFile('go1.19.8')).toBe('go1.19.8');
    expect(goVersionFromFile('go1.22.12\ntime 2025-02-04T20:29:53Z\n')).toBe('go1.22.12');
    expect(goVersionFromFile('devel +abc\n')).toBeUndefined();
  });

  it('takes the toolchain version; --go-version must agree and is needed only without one', () => {
    expect(imageGoVersion('go1.22.12', undefined, '/x')).toBe('go1.22.12');
    expect(imageGoVersion('go1.22.12', '1.22.12', '/x')).toBe('go1.22.12');
    expect(imageGoVersion(undefined, '1.20.3', '/x')).toBe('go1.20.3');
    expect(() => imageGoVersion('go1.22.12', '1.22.5', '/x')).toThrow(
      /--go-version 1.22.5 does not match the toolchain in \/x, which is go1.22.12/,
    );
    expect(() => imageGoVersion(undefined, undefined, '/x')).toThrow(/names no Go version/);
    expect(() => imageGoVersion(undefined, '1.22;rm', '/x')).toThrow(/invalid --go-version/);
  });

  it('tags the image with the name build picks for that Go unless --tag says otherwise', () => {
    expect(imageTags('go1.22.12', [])).toEqual(['golang:1.22.12-alpine']);
    expect(
      imageTags('go1.19.8', ['local/golang:1.19.8', 'golang:1.19.8-alpine', 'local/golang:1.19.8']),
    ).toEqual(['local/golang:1.19.8', 'golang:1.19.8-alpine']);
    expect(() => imageTags('go1.19.8', ['Bad Name'])).toThrow(/invalid image name "Bad Name"/);
    expect(() => imageTags('go1.19.8', ['a:b:c'])).toThrow(/invalid image name/);
  });

  it('splits image names, registry ports included', () => {
    expect(parseImageName('golang:1.22.12-alpine')).toEqual({ repo: 'golang', tag: '1.22.12-alpine' });
    expect(parseImageName('registry.local:5000/go/golang')).toEqual({
      repo: 'registry.local:5000/go/golang',
      tag: 'latest',
    });
  });

  it("recognises Debian's Go package names and their layout", () => {
    expect(parseDebianGoPackage('golang-1.22-go')).toEqual({ series: '1.22', part: 'go' });
    expect(parseDebianGoPackage('golang-1.22-src')).toEqual({ series: '1.22', part: 'src' });
    expect(parseDebianGoPackage('golang-go')).toBeUndefined();
    expect(parseDebianGoPackage('golang-1.22-doc')).toBeUndefined();
    expect(debianGoroot('1.22')).toEqual({ goroot: 'usr/lib/go-1.22', share: 'usr/share/go-1.22' });
  });

  it("lets links lead into Debian's share/go-1.NN beside lib/go-1.NN, nowhere else", () => {
    expect(gorootLinkRoots('/usr/lib/go-1.19')).toEqual(['/usr/lib/go-1.19', '/usr/share/go-1.19']);
    expect(gorootLinkRoots('/tmp/x/usr/lib/go-1.22')).toEqual([
      '/tmp/x/usr/lib/go-1.22',
      '/tmp/x/usr/share/go-1.22',
    ]);
    expect(gorootLinkRoots('/usr/local/go')).toEqual(['/usr/local/go']);
  });

  it('reads the libraries from ldd output', () => {
    const out =
      '\tlinux-vdso.so.1 (0x00007ffd)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f6d3093d000)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f6d30b32000)\n';
    expect(parseLdd(out)).toEqual(['/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2']);
    expect(parseLdd('\tnot a dynamic executable\n')).toEqual([]);
  });

  it('sets PATH and GOPATH like the official images and labels the Go version', () => {
    expect(imageChanges('go1.22.12')).toEqual([
      'ENV PATH=/usr/local/go/bin:/bin',
      'ENV GOPATH=/go',
      'LABEL kubeadm-forever.go-version=go1.22.12',
    ]);
  });

  it('escapes control characters of input in messages', () => {
    expect(escapeControl('a\nb\x1b[31mc\u0085')).toBe('a\\nb\\x1b[31mc\\x85');
  });
});
