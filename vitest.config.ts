import { defineConfig } from 'vitest/config';
import LongFirstSequencer from './test/support/sequencer.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    // Two cores: two test files at a time, each with its own databases.
    maxWorkers: 2,
    // The two workers run file after file without a fresh module graph for each: the modules
    // (and PGlite's WebAssembly, compiled once per worker) are loaded once, not once per file.
    // Each file still gets its own databases and temporary directories (test/support/), and no
    // test changes process-wide state (environment, mocks, timers).
    isolate: false,
    // The long files first (test/support/sequencer.ts).
    sequence: { sequencer: LongFirstSequencer },
    testTimeout: 300_000,
    hookTimeout: 180_000,
    globalSetup: ['test/support/global-setup.ts'],
    // Each file drops its databases and removes its temporary directories at its end.
    setupFiles: ['test/support/cleanup.ts'],
    reporters: ['default', './test/support/summary-reporter.ts'],
  },
});
