import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    // Two cores: two test files at a time, each with its own databases.
    maxWorkers: 2,
    testTimeout: 300_000,
    hookTimeout: 180_000,
    globalSetup: ['test/support/global-setup.ts'],
    // Each file drops its databases and removes its temporary directories at its end.
    setupFiles: ['test/support/cleanup.ts'],
    reporters: ['default', './test/support/summary-reporter.ts'],
  },
});
