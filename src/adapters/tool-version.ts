import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

/**
 * Set by the bundler when the tool is made into one executable (scripts/dist.ts): there is no
 * package.json beside the code then. Undeclared (typeof is "undefined") when run from dist/.
 */
declare const KF_BUNDLED_VERSIONS: { tool: string; deps: Record<string, string> } | undefined;

const bundled = typeof KF_BUNDLED_VERSIONS === 'undefined' ? undefined : KF_BUNDLED_VERSIONS;

/**
 * This tool's version, from package.json (two levels above src/adapters/ and dist/adapters/), recorded in
 * every cache manifest and bundle so a binary can be traced to the tool that built it.
 */
export const TOOL_VERSION: string =
  bundled?.tool ??
  (() => {
    try {
      const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
        version?: unknown;
      };
      return typeof pkg.version === 'string' ? pkg.version : '0.0.0-unknown';
    } catch {
      return '0.0.0-unknown';
    }
  })();

/** The installed version of a dependency (its package.json), or "unknown" when it cannot be read. */
export function dependencyVersion(name: string): string {
  if (bundled) return bundled.deps[name] ?? 'unknown';
  try {
    const file = createRequire(import.meta.url).resolve(`${name}/package.json`);
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}
