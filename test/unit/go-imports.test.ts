import { describe, expect, it } from 'vitest';
import { isStandardImport, scanGoHeader } from '../../src/core/go-imports.js';

describe('scanGoHeader', () => {
  it('reads single, grouped, named, dot and blank imports', () => {
    const src = [
      '// Copyright header',
      '/* a block comment with import "not/this" in it */',
      '',
      '// +build linux',
      '',
      'package constants',
      '',
      'import "fmt"',
      'import (',
      '\t"os"',
      '\tv1 "k8s.io/api/core/v1"',
      '\t. "example.com/dot"',
      '\t_ "example.com/blank" // side effects',
      '\t`example.com/raw`',
      ')',
      'import certutil "k8s.io/client-go/util/cert"; import "example.com/after/semicolon"',
      '',
      'const x = "import \\"example.com/not/an/import\\""',
      'import "example.com/too/late"',
    ].join('\n');
    expect(scanGoHeader(src)).toEqual({
      imports: [
        'fmt',
        'os',
        'k8s.io/api/core/v1',
        'example.com/dot',
        'example.com/blank',
        'example.com/raw',
        'k8s.io/client-go/util/cert',
        'example.com/after/semicolon',
      ],
      embeds: false,
    });
  });

  it('stops at the first declaration and ignores imports inside comments', () => {
    const src = 'package a\n// import "example.com/commented"\nfunc f() {}\nimport "example.com/never"\n';
    expect(scanGoHeader(src).imports).toEqual([]);
  });

  it('finds //go:embed directives only at the start of a line', () => {
    expect(scanGoHeader('package a\n\nimport _ "embed"\n\n//go:embed data/*\nvar data string\n').embeds).toBe(
      true,
    );
    expect(scanGoHeader('package a\n\n// see //go:embed docs\nvar data string\n').embeds).toBe(false);
  });

  it('returns what it read from malformed input instead of throwing', () => {
    expect(scanGoHeader('')).toEqual({ imports: [], embeds: false });
    expect(scanGoHeader('not go at all')).toEqual({ imports: [], embeds: false });
    expect(scanGoHeader('package a\nimport (\n"fmt"\n"unterminated\n').imports).toEqual(['fmt']);
    expect(scanGoHeader('package a\n/* never closed').imports).toEqual([]);
    expect(scanGoHeader('package a\nimport "ok"\nimport (\n"x"\n').imports).toEqual(['ok', 'x']);
  });
});

describe('isStandardImport', () => {
  it('tells the standard library (and cgo) from module paths by the first element', () => {
    for (const p of ['fmt', 'net/http', 'crypto/x509', 'C', 'embed']) expect(isStandardImport(p)).toBe(true);
    for (const p of [
      'k8s.io/api/core/v1',
      'github.com/spf13/cobra',
      'golang.org/x/net/http2',
      'sigs.k8s.io/yaml',
    ]) {
      expect(isStandardImport(p)).toBe(false);
    }
  });
});
