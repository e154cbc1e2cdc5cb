/**
 * `report` from the command line on PGlite and the server: aligned tables and JSON with coverage per
 * day (checked against direct SQL), theta coverage, recent rows and the last runs; the verdict
 * and `--check` exit codes on a healthy window, a missed night, a failed run and a drop; the
 * width limit with long names; the default period when yesterday is empty; `--html`.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import type { Report } from '../src/report/collect.js';
import { allBackends, withSession } from './support/backends.js';
import { testTempDir } from './support/resources.js';
import { runMain } from './support/cli.js';
import { loadAttempts, prepareSchema } from './support/data.js';
import { history } from './support/history.js';
import { sql } from '../src/sql/tag.js';

const backends = await allBackends('report');
const longTopic = 'Unit 12: Solving systems of linear equations by substitution and by elimination, Section 4 (review)';
const attempts = history({ first: '2025-03-01', days: 20, seed: 5, topics: ['algebra', 'geometry', longTopic] });

describe('usage errors', () => {
  test.each([
    [['report', '--days', '0'], /--days "0" is not accepted: use a whole number from 1 to 366/],
    [['report', '--days', '367'], /--days "367"/],
    [['report', '--date', 'yesterday'], /--date "yesterday" is not a calendar date/],
  ])('%j exits 2', async (args, message) => {
    const result = await runMain(args, { DATABASE_URL: 'postgres://x@127.0.0.1:1/db' });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
  });
});

describe.each(backends)('report ($name)', (backend) => {
  const env = { DATABASE_URL: backend.url };

  beforeAll(async () => {
    await withSession(backend, async (session) => {
      await prepareSchema(session);
      await loadAttempts(session, attempts);
    });
    expect((await runMain(['backfill', '--from', '2025-03-01', '--to', '2025-03-15'], env)).code).toBe(0);
    expect((await runMain(['--date', '2025-03-18'], env)).code).toBe(0);
    // Theta from another job on a few rows of one day.
    await withSession(backend, (s) =>
      s.query(sql`update features_topic_daily set theta_estimate = 0.5 where date = '2025-03-17' and user_id in ('s1', 's2')`),
    );
  });

  describe('JSON', () => {
    test('JSON: coverage per day equals direct SQL, theta coverage, recent rows, last runs', async () => {
      const result = await runMain(['report', '--date', '2025-03-19', '--days', '7', '--json'], env);
      expect(result.code).toBe(0);
      expect(result.stderr).toBe('');
      const report = JSON.parse(result.stdout) as Report;
      expect(report.period).toEqual({ from: '2025-03-13', to: '2025-03-19', days: 7, timezone: 'UTC' });

      const truth = await withSession(
        backend,
        async (s) =>
          (
            await s.query<{ date: string; users: number; rows: number; attempts: number; theta_rows: number }>(
              sql`select date::text as date, count(distinct user_id)::int as users, count(*)::int as rows,
                  sum(attempts)::int as attempts, count(theta_estimate)::int as theta_rows
           from features_topic_daily where date between '2025-03-13' and '2025-03-19' group by date`,
            )
          ).rows,
      );
      expect(report.coverage.map((d) => d.date)).toEqual([
        '2025-03-19',
        '2025-03-18',
        '2025-03-17',
        '2025-03-16',
        '2025-03-15',
        '2025-03-14',
        '2025-03-13',
      ]);
      for (const day of report.coverage) {
        const expected = truth.find((t) => t.date === day.date) ?? { users: 0, rows: 0, attempts: 0, theta_rows: 0 };
        expect(day).toMatchObject({
          users: expected.users,
          rows: expected.rows,
          attempts: expected.attempts,
          theta_rows: expected.theta_rows,
        });
      }
      expect(report.coverage[0]).toMatchObject({ rows: 0, users: 0, last_computed_at: null }); // after the last run's anchor
      const rows = truth.reduce((a, t) => a + t.rows, 0);
      const withTheta = truth.reduce((a, t) => a + t.theta_rows, 0);
      expect(withTheta).toBeGreaterThan(0);
      expect(report.theta).toEqual({ enabled: false, rows, with_theta: withTheta, share: Number((withTheta / rows).toFixed(4)) });

      expect(report.recent_rows).toHaveLength(10);
      // The most recently changed first.
      const changed = report.recent_rows.map((r) => r.computed_at as string);
      const newest = await withSession(
        backend,
        async (s) =>
          (
            await s.query<{ t: string }>(
              sql`select max(computed_at)::text as t from features_topic_daily where date between '2025-03-13' and '2025-03-19'`,
            )
          ).rows[0]!.t,
      );
      expect(changed[0]).toBe(newest);
      expect(changed).toEqual([...changed].sort().reverse());
      // The period reaches 2025-03-19, a night no run covered: that is the one finding.
      expect(report.verdict.status).toBe('FAIL');
      const findings = report.verdict.reasons.filter((r) => r.status !== 'OK');
      expect(findings.map((r) => r.check)).toEqual(['night']);
      expect(findings[0]!.message).toMatch(/^night 2025-03-19 is missing: successful runs cover the days up to 2025-03-18/);
      // The improvement histogram: NULL apart, every other row in one of the 20 bins.
      const improved = await withSession(
        backend,
        async (s) =>
          (
            await s.query<{ with: number; without: number }>(
              sql`select count(improvement)::int as with, count(*) filter (where improvement is null)::int as without from features_topic_daily where date between '2025-03-13' and '2025-03-19'`,
            )
          ).rows[0]!,
      );
      expect(report.improvement.filter((b) => b.bin !== null).reduce((a, b) => a + b.rows, 0)).toBe(improved.with);
      expect(report.improvement.find((b) => b.bin === null)?.rows ?? 0).toBe(improved.without);
      expect(report.improvement.every((b) => b.bin === null || (b.bin >= 1 && b.bin <= 20))).toBe(true);
      expect(report.recent_rows.some((r) => r.topic_id === longTopic)).toBe(true);
      expect(report.runs.map((r) => [r.command, r.outcome, r.since, r.anchor])).toEqual([
        ['run', 'success', '2025-03-11', '2025-03-18'],
        ['backfill', 'success', '2025-03-01', '2025-03-15'],
      ]);
    });
  });

  describe('text', () => {
    test('text: titled sections of aligned tables', async () => {
      const result = await runMain(['report', '--date', '2025-03-19', '--days', '3', '--limit', '4'], env);
      expect(result.code).toBe(0);
      const lines = result.stdout.split('\n');
      expect(lines[0]).toMatch(/^FAIL: night 2025-03-19 is missing: /);
      expect(result.stdout).toMatch(/^ {2}OK {4}last successful run \d+\.\d h ago \(anchor 2025-03-18\)$/m);
      expect(lines[1]).toBe('features_topic_daily report: 2025-03-17..2025-03-19 (3 days, AGG_TIMEZONE=UTC)');
      const coverageAt = lines.findIndex((l) => l.startsWith('Coverage per day'));
      expect(lines[coverageAt]).toMatch(/^Coverage per day {3}users [▁▂▃▄▅▆▇█·]{3} {3}attempts [▁▂▃▄▅▆▇█·]{3}$/);
      const header = lines[coverageAt + 1]!;
      expect(header).toMatch(/^date\s+users\s+attempts\s+vs_median\s+rows\s+topics\s+theta$/);
      const rule = lines[coverageAt + 2]!;
      expect(rule).toMatch(/^-{10} {2}-+ {2}-+/);
      expect(lines[coverageAt + 3]).toMatch(/^2025-03-19\s+0\s+0\s+(-|-100%)\s+0\s+0\s+-$/);
      // A bar of users and of attempts on a day with rows.
      expect(lines[coverageAt + 4]).toMatch(/^2025-03-18\s+\d+\s+█+[▏▎▍▌▋▊▉]?\s+\d+\s+█+[▏▎▍▌▋▊▉]?\s+[+-]?\d+%/);
      expect(lines).toContainEqual(
        expect.stringMatching(/^Theta coverage: \d+ of \d+ rows have theta_estimate \(\d+\.\d%\); AGG_INCLUDE_THETA=false$/),
      );
      expect(lines).toContain('Recent rows (the 4 most recently changed)');
      expect(lines).toContain('Last runs (newest 2, from aggregate_features_runs)');
      const runsHeader = lines[lines.indexOf('Last runs (newest 2, from aggregate_features_runs)') + 1]!;
      expect(runsHeader).toMatch(/^run_id\s+command\s+anchor\s+started_at\s+duration_s\s+outcome/);
    });

    test('every line fits --width; long names are shortened with …, full in --json', async () => {
      for (const width of [60, 80, 120]) {
        const result = await runMain(['report', '--date', '2025-03-18', '--width', String(width)], env);
        expect(result.code).toBe(0);
        const lines = result.stdout.trimEnd().split('\n');
        expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(width);
        expect(result.stdout).toMatch(/Unit 12[^\n]*…/);
        expect(result.stdout).not.toContain(longTopic);
      }
      const unlimited = await runMain(['report', '--date', '2025-03-18', '--width', '1000'], env);
      expect(unlimited.stdout).toContain(longTopic);
    });

    test('no --date and an empty yesterday: the period ends at the newest data, and says so', async () => {
      const result = await runMain(['report', '--json'], env);
      const report = JSON.parse(result.stdout) as Report;
      expect(report.period.to).toBe('2025-03-18');
      expect(report.notes).toEqual([
        expect.stringMatching(
          /^no rows for \d{4}-\d{2}-\d{2} \(yesterday in UTC\); the newest data is on 2025-03-18: reporting the 7 days up to it/,
        ),
      ]);
      const text = await runMain(['report', '--width', '200'], env);
      expect(text.stdout.split('\n')[2]).toMatch(/^note: no rows for .* the newest data is on 2025-03-18/);
    });
  });

  describe('--check, --html and before migrate', () => {
    test('--check: 0 when healthy, 1 on FAIL (a missed night, a failed run); WARN only with --fail-on-warn', async () => {
      const check = (extra: string[] = []) => runMain(['report', '--date', '2025-03-18', '--check', ...extra], env);
      expect((await check()).code).toBe(0);

      // A sharp drop on one day: WARN.
      await withSession(backend, (s) => s.query(sql`delete from features_topic_daily where date = '2025-03-16' and user_id not in ('s1')`));
      const warn = await check();
      expect(warn.code).toBe(0);
      expect(warn.stdout.split('\n')[0]).toMatch(/^WARN: 2025-03-16 has \d+ users \(median [\d.]+\)/);
      expect((await check(['--fail-on-warn'])).code).toBe(1);

      // The last success 3 days ago: a missed night, FAIL.
      await withSession(backend, (s) =>
        s.query(
          sql`update aggregate_features_runs set started_at = started_at - interval '3 days', finished_at = finished_at - interval '3 days'`,
        ),
      );
      const stale = await check();
      expect(stale.code).toBe(1);
      expect(stale.stdout.split('\n')[0]).toMatch(/^FAIL: the last successful run finished 3\.0 days ago \(anchor 2025-03-18\)/);
      expect((await runMain(['report', '--date', '2025-03-18'], env)).code).toBe(0); // without --check: the verdict only

      // A newer run that failed: FAIL with its failed combinations.
      await withSession(backend, (s) =>
        s.query(
          sql`insert into aggregate_features_runs (run_id, job_version, command, since, anchor, started_at, finished_at, outcome, failed)
         values ('failed-run', 'test', 'run', '2025-03-11', '2025-03-18', now(), now(), 'failed', 2)`,
        ),
      );
      const failed = await check(['--json']);
      expect(failed.code).toBe(1);
      const report = JSON.parse(failed.stdout) as Report;
      expect(report.verdict.reasons.map((r) => r.check)).toEqual(expect.arrayContaining(['stale', 'run_failed', 'drop']));
      expect(report.verdict.reasons.find((r) => r.check === 'run_failed')?.message).toMatch(/failed: 2 combinations failed$/);

      // Drift found by verify is recorded in the run log and read by the report.
      await withSession(backend, (s) => s.query(sql`delete from aggregate_features_runs where run_id = 'failed-run'`));
      expect((await runMain(['verify', '--date', '2025-03-18'], env)).code).toBe(1);
      const drift = JSON.parse((await check(['--json'])).stdout) as Report;
      expect(drift.last_verify).toMatchObject({ outcome: 'failed', anchor: '2025-03-18' });
      expect(drift.verdict.reasons.find((r) => r.check === 'drift')).toMatchObject({ status: 'FAIL' });
      expect((await runMain(['report', '--check', '--fail-on-warn', '--width', '10'], env)).code).toBe(2);
    });

    test('--html writes one self-contained page with the charts', async () => {
      const file = join(testTempDir('report-html'), 'report.html');
      const result = await runMain(['report', '--date', '2025-03-18', '--html', file], env);
      expect(result.code).toBe(0);
      expect(result.stderr).toContain(`Wrote the report page to ${file}`);
      const page = readFileSync(file, 'utf8');
      for (const chart of ['coverage-users', 'coverage-attempts', 'theta-coverage', 'improvement', 'run-durations']) {
        expect(page).toContain(`data-chart="${chart}"`);
      }
      expect(page).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
      const bad = await runMain(['report', '--date', '2025-03-18', '--html', '/nonexistent/dir/page.html'], env);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/cannot write --html \/nonexistent\/dir\/page.html/);
    });

    test('before migrate: exit 2 with the way out', async () => {
      const fresh = backend.name === 'pglite' ? `pglite:${testTempDir('report-empty')}` : undefined;
      if (fresh === undefined) return;
      // An existing but empty directory (a missing one is refused before: tested in guards.test.ts).
      mkdirSync(fresh.slice('pglite:'.length), { recursive: true });
      const result = await runMain(['report'], { DATABASE_URL: fresh });
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/run `aggregate-features-daily migrate` first/);
    });
  });
});
