/**
 * Prints, after vitest's own report, each test file's time (import, setup, tests and hooks;
 * the longest first) and their sum, then one plain closing line, `N passed, N failed,
 * N skipped`, so CI (and anyone grepping a log) reads the outcome in a runner-independent form
 * and sees which files the suite's time goes to (on a loaded machine the wall time says little;
 * the sum and the order still do).
 */
import { relative } from 'node:path';
import type { Reporter, TestModule } from 'vitest/node';

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const counts = { passed: 0, failed: 0, skipped: 0 };
    const times: { file: string; ms: number }[] = [];
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') counts.passed++;
        else if (state === 'failed') counts.failed++;
        else counts.skipped++;
      }
      if (module.state() === 'failed' && module.children.size === 0) counts.failed++;
      const d = module.diagnostic();
      times.push({ file: relative(process.cwd(), module.moduleId), ms: d.collectDuration + d.setupDuration + d.duration });
    }
    times.sort((a, b) => b.ms - a.ms);
    const seconds = (ms: number) => (ms / 1000).toFixed(1).padStart(7);
    const lines = times.map((t) => `${seconds(t.ms)} s  ${t.file}`);
    const sum = times.reduce((total, t) => total + t.ms, 0);
    process.stdout.write(`\nTime per test file:\n${lines.join('\n')}\n${seconds(sum)} s  in all\n`);
    process.stdout.write(`\n${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped\n`);
  }
}
