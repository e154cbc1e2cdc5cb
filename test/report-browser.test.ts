/**
 * The report page in a real headless browser (Debian's chromium, driven by playwright-core):
 * every chart renders with its bars, no console errors, no network request; a screenshot is
 * saved. Skipped only outside CI when chromium is not installed; in CI (CI=true) it must run
 * (.ci/run installs chromium when missing).
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { describe, expect, test } from 'vitest';
import { runBackfill } from '../src/pipeline/backfill.js';
import { loadConfig } from '../src/config/index.js';
import { runDaily } from '../src/pipeline/daily.js';
import { collectReport } from '../src/report/collect.js';
import { reportPage } from '../src/report/html.js';
import { pgliteBackend, withSession } from './support/backends.js';
import { loadAttempts, prepareSchema } from './support/data.js';
import { testTempDir } from './support/resources.js';
import { history } from './support/history.js';
import { createEventStream } from '../src/observe/events.js';

const executablePath = '/usr/bin/chromium';

interface ChartInfo {
  readonly id: string;
  readonly width: number;
  readonly bars: number;
  readonly drawn: number;
}
const available = existsSync(executablePath);
const inCi = process.env.CI === 'true';
if (!available && !inCi) console.warn(`${executablePath} is not installed: the browser test of the report page is skipped (CI runs it)`);

describe.skipIf(!available && !inCi)('the report page in chromium', () => {
  test('charts rendered, no console errors, no network; a screenshot', async () => {
    const backend = pgliteBackend('report_browser');
    const config = loadConfig({ AGG_LOOKBACK_DAYS: '7' });
    const report = await withSession(backend, async (session) => {
      await prepareSchema(session);
      await loadAttempts(session, history({ first: '2025-03-01', days: 30, students: 12, seed: 9 }));
      const shard = { index: 1, count: 1 };
      await runBackfill(
        session,
        config,
        { from: '2025-03-01', to: '2025-03-22', shard, allowFuture: false, maxDays: 100, allowEmptySource: false, runId: 'backfill-1' },
        createEventStream(),
      );
      await runDaily(session, config, { date: '2025-03-24' }, createEventStream());
      return collectReport(session, config, { days: 14, date: '2025-03-24', limit: 10 });
    });
    // Removed with the test file's other directories (AFD_KEEP_TEST_DATA=1 keeps the page and its screenshot).
    const directory = testTempDir('report-browser');
    const file = join(directory, 'report.html');
    writeFileSync(file, reportPage(report));

    const problems: string[] = [];
    const requests: string[] = [];
    const context = await chromium.launchPersistentContext(join(directory, 'profile'), {
      executablePath,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1366, height: 900 },
    });
    try {
      const page = await context.newPage();
      page.on('console', (message) => {
        if (message.type() === 'error' || message.type() === 'warning') problems.push(`${message.type()}: ${message.text()}`);
      });
      page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
      page.on('request', (request) => {
        if (!request.url().startsWith('file:')) requests.push(request.url());
      });
      await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });

      expect(await page.textContent('#verdict')).toBe(report.verdict.status);
      // Evaluated in the page (as text: the test's tsconfig has no DOM types).
      const charts = await page.evaluate<ChartInfo[]>(`[...document.querySelectorAll('svg[data-chart]')].map((svg) => ({
        id: svg.getAttribute('data-chart'),
        width: svg.getBoundingClientRect().width,
        bars: svg.querySelectorAll('rect.bar').length,
        drawn: [...svg.querySelectorAll('rect.bar')].filter((r) => r.getBoundingClientRect().height > 0).length,
      }))`);
      expect(charts.map((c) => c.id)).toEqual(['coverage-users', 'coverage-attempts', 'theta-coverage', 'improvement', 'run-durations']);
      const byId = Object.fromEntries(charts.map((c) => [c.id, c]));
      expect(byId['coverage-users']).toMatchObject({ bars: 14 });
      expect(byId['coverage-users']!.drawn).toBeGreaterThan(10);
      expect(byId['coverage-attempts']!.drawn).toBeGreaterThan(10);
      expect(byId.improvement).toMatchObject({ bars: 20 });
      expect(byId.improvement!.drawn).toBeGreaterThan(3);
      expect(byId['run-durations']!.bars).toBe(report.runs.length);
      // Each run's bar says which command it was and when it started (to the second when two share a minute).
      const runLabels = await page.evaluate<
        { label: string; sublabel: string }[]
      >(`[...document.querySelectorAll('svg[data-chart="run-durations"] text.label')].map((label) => ({
        label: label.textContent,
        sublabel: label.nextElementSibling?.textContent ?? '',
      }))`);
      expect(runLabels.map((l) => l.label)).toEqual(['backfill', 'run']);
      for (const { sublabel } of runLabels) expect(sublabel).toMatch(/^\d\d:\d\d(:\d\d)?$/);
      expect(await page.textContent('figure:last-child .caption')).toMatch(/^labelled by command and start time on \d{4}-\d\d-\d\d/);
      // Readable on a laptop screen: two charts side by side, each at least 480 px wide.
      for (const chart of charts) expect(chart.width).toBeGreaterThan(480);

      const screenshot = join(directory, 'report.png');
      await page.screenshot({ path: screenshot, fullPage: true });
      expect(existsSync(screenshot)).toBe(true);
      console.info(`report page screenshot: ${screenshot}`);
    } finally {
      await context.close();
    }
    expect(problems).toEqual([]);
    expect(requests).toEqual([]);
  });
});
