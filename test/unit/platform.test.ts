import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/core/errors.js';
import { manifestProblem } from '../../src/core/cache-manifest.js';
import { formatPlatform, parsePlatformDir, platformDir, platformFromText } from '../../src/core/platform.js';
import { parsePlatform } from '../../src/core/version.js';

/**
 * One platform rule for input (--platform, kubeadm version's platform) and for what the cache and
 * bundles read back (manifest.json, entry directory names): whatever one accepts, the other does.
 */
describe('platform: one rule for input, manifests and directory names', () => {
  const good = ['linux/amd64', 'linux/arm64', 'linux/ppc64le', 'linux/s390x', 'windows/amd64'];
  const bad = [
    'linux',
    'linux/amd64/v2',
    'Linux/amd64',
    'linux/',
    '/amd64',
    '1inux/amd64',
    'linux/amd-64',
    'linux/../x',
    `linux/${'a'.repeat(17)}`,
    'linux\u001b/amd64',
  ];

  it('reads and writes os/arch and os-arch as each other', () => {
    for (const text of good) {
      const p = platformFromText(text)!;
      expect(p).not.toBeNull();
      expect(formatPlatform(p)).toBe(text);
      expect(parsePlatformDir(platformDir(p))).toEqual(p);
      expect(parsePlatform(text, '--platform')).toEqual(p);
    }
    expect(platformDir({ os: 'linux', arch: 'arm64' })).toBe('linux-arm64');
    expect(parsePlatformDir('linux-arm64-x')).toBeNull();
  });

  it('refuses the same texts as input (UsageError naming the field) and in a manifest', () => {
    const manifest = (platform: string) => ({ schema: 1, key: 'abcdefgh12', platform });
    for (const text of bad) {
      expect(platformFromText(text)).toBeNull();
      expect(() => parsePlatform(text, '--platform')).toThrow(UsageError);
      expect(() => parsePlatform(text, '--platform')).toThrow(/--platform/);
      expect(manifestProblem(manifest(text))).toMatch(/^bad platform/);
    }
    // a 16-letter part is the longest a directory name takes, on both sides
    const longest = `linux/${'a'.repeat(16)}`;
    expect(platformFromText(longest)).not.toBeNull();
    expect(manifestProblem(manifest(longest))).not.toMatch(/platform/);
  });

  it('input is trimmed, stored text is not', () => {
    expect(parsePlatform(' linux/amd64\n')).toEqual({ os: 'linux', arch: 'amd64' });
    expect(platformFromText(' linux/amd64')).toBeNull();
  });
});
