/**
 * The report page's run-duration chart, without a browser: each bar is labelled with its
 * command and a start time short enough to fit and long enough to tell the runs apart (the
 * seconds when two runs share a minute, the day when they span days), and the caption says
 * what the labels are. test/report-browser.test.ts looks at the rendered page.
 */
import { describe, expect, test } from 'vitest';
import type { Report } from '../src/report/collect.js';
import { reportPage, startLabels } from '../src/report/html.js';

describe('start labels', () => {
  test('the time of day; seconds only when two runs share a minute; the day only when they span days', () => {
    expect([...startLabels(['2025-03-24 02:30:05.1+00', '2025-03-24 03:30:07+00'])]).toEqual(['02:30', '03:30']);
    const sameMinute = startLabels(['2025-03-24 02:30:05.123+00', '2025-03-24 02:30:41.5+00']);
    expect([...sameMinute]).toEqual(['02:30:05', '02:30:41']);
    expect(sameMinute.caption).toBe('labelled by command and start time on 2025-03-24 (UTC+00)');
    const days = startLabels(['2025-03-23 02:30:05+01', '2025-03-24 02:31:00+01']);
    expect([...days]).toEqual(['03-23 02:30', '03-24 02:31']);
    expect(days.caption).toBe('labelled by command and start time (UTC+01)');
  });
});

describe('the run-duration chart', () => {
  const runs = Array.from({ length: 10 }, (_, i) => ({
    command: ['run', 'backfill', 'verify'][i % 3],
    outcome: 'success',
    anchor: '2025-03-24',
    started_at: `2025-03-25 02:30:${String(10 + 3 * i)}.5+00`,
    duration_s: 1 + i,
  })).reverse(); // the report lists the newest first
  const report = {
    verdict: { status: 'OK', reasons: [] },
    period: { from: '2025-03-18', to: '2025-03-24', days: 7, timezone: 'UTC' },
    notes: [],
    coverage: [],
    trend: [],
    theta: { enabled: false, rows: 0, with_theta: 0, share: null },
    improvement: [],
    shards: [],
    last_verify: null,
    recent_rows: [],
    runs,
  } as unknown as Report;

  test('every bar of the default ten says its command and start time, oldest first', () => {
    const page = reportPage(report);
    const chart = /<svg[^>]*data-chart="run-durations"[^]*?<\/svg>/.exec(page)![0];
    const labels = [...chart.matchAll(/<text class="label"[^>]*>([^<]*)<\/text><text class="sublabel"[^>]*>([^<]*)<\/text>/g)].map(
      (m) => `${m[1]} ${m[2]}`,
    );
    expect(labels).toEqual(Array.from({ length: 10 }, (_, i) => `${['run', 'backfill', 'verify'][i % 3]} 02:30:${String(10 + 3 * i)}`));
    expect(page).toContain('labelled by command and start time on 2025-03-25 (UTC+00)');
  });
});
