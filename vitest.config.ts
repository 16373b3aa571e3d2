import { defineConfig } from 'vitest/config';

// Unit tests are fast; integration and e2e tests drive a real Docker engine and real Go
// builds on a 2-core machine, so files run one at a time and tests get generous timeouts.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    globalSetup: ['./test/helpers/global-setup.ts'],
  },
});
