/**
 * `report` as a subprocess on PGlite and the server: aligned tables and JSON with coverage per
 * day (checked against direct SQL), theta coverage, recent rows and the last runs.
 */
import { mkdirSync } from 'node:fs';
import { beforeAll, describe, expect, test } from 'vitest';
import type { Report } from '../src/report.js';
import { allBackends, withSession } from './support/backends.js';
import { testTempDir } from './support/resources.js';
import { runCli } from './support/cli.js';
import { loadAttempts, prepareSchema } from './support/data.js';
import { history } from './support/history.js';

const backends = await allBackends('report');
const attempts = history({ first: '2025-03-01', days: 20, seed: 5 });

describe('usage errors', () => {
  test.each([
    [['report', '--days', '0'], /--days "0" is not accepted: use a whole number from 1 to 366/],
    [['report', '--days', '367'], /--days "367"/],
    [['report', '--date', 'yesterday'], /--date "yesterday" is not a calendar date/],
  ])('%j exits 2', async (args, message) => {
    const result = await runCli(args, { DATABASE_URL: 'postgres://x@127.0.0.1:1/db' });
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
    expect((await runCli(['backfill', '--from', '2025-03-01', '--to', '2025-03-15'], env)).code).toBe(0);
    expect((await runCli(['--date', '2025-03-18'], env)).code).toBe(0);
    // Theta from another job on a few rows of one day.
    await withSession(backend, (s) =>
      s.query("update features_topic_daily set theta_estimate = 0.5 where date = '2025-03-17' and user_id in ('s1', 's2')"),
    );
  });

  test('JSON: coverage per day equals direct SQL, theta coverage, recent rows, last runs', async () => {
    const result = await runCli(['report', '--date', '2025-03-19', '--days', '7', '--json'], env);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    const report = JSON.parse(result.stdout) as Report;
    expect(report.period).toEqual({ from: '2025-03-13', to: '2025-03-19', days: 7, timezone: 'UTC' });

    const truth = await withSession(
      backend,
      async (s) =>
        (
          await s.query<{ date: string; users: number; rows: number; attempts: number; theta_rows: number }>(
            `select date::text as date, count(distinct user_id)::int as users, count(*)::int as rows,
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
    expect(report.theta).toEqual({ rows, with_theta: withTheta, share: Number((withTheta / rows).toFixed(4)) });

    expect(report.recent_rows).toHaveLength(10);
    // Newest day first: the last run's anchor.
    const dates = report.recent_rows.map((r) => r.date as string);
    expect(dates[0]).toBe('2025-03-18');
    expect(dates).toEqual([...dates].sort().reverse());
    expect(report.runs.map((r) => [r.command, r.outcome, r.since, r.anchor])).toEqual([
      ['run', 'success', '2025-03-11', '2025-03-18'],
      ['backfill', 'success', '2025-03-01', '2025-03-15'],
    ]);
  });

  test('text: titled sections of aligned tables', async () => {
    const result = await runCli(['report', '--date', '2025-03-19', '--days', '3', '--limit', '4'], env);
    expect(result.code).toBe(0);
    const lines = result.stdout.split('\n');
    expect(lines[0]).toBe('features_topic_daily report: 2025-03-17..2025-03-19 (3 days, AGG_TIMEZONE=UTC)');
    const coverageAt = lines.indexOf('Coverage per day');
    const header = lines[coverageAt + 1]!;
    expect(header).toMatch(/^date\s+users\s+rows\s+topics\s+attempts\s+theta_rows\s+theta_share\s+last_computed_at$/);
    const rule = lines[coverageAt + 2]!;
    expect(rule).toMatch(/^-{10} {2}-+ {2}-+/);
    // Aligned: every column starts where its header does.
    const starts = [...header.matchAll(/\S+/g)].map((m) => m.index);
    for (const line of lines.slice(coverageAt + 3, coverageAt + 6)) {
      for (const start of starts.slice(0, 7)) expect(line[start - 1] ?? ' ').toBe(' ');
    }
    expect(lines[coverageAt + 3]).toMatch(/^2025-03-19\s+0\s+0\s+0\s+0\s+0\s+-\s+NULL$/);
    expect(lines).toContainEqual(expect.stringMatching(/^Theta coverage: \d+ of \d+ rows have theta_estimate \(\d+\.\d%\)$/));
    expect(lines).toContain('Recent rows (newest 4)');
    expect(lines).toContain('Last runs (newest 2, from aggregate_features_runs)');
    const runsHeader = lines[lines.indexOf('Last runs (newest 2, from aggregate_features_runs)') + 1]!;
    expect(runsHeader).toMatch(/^run_id\s+command\s+shard\s+since\s+anchor\s+widened_from\s+started_at\s+duration_s\s+outcome/);
  });

  test('before migrate: exit 2 with the way out', async () => {
    const fresh = backend.name === 'pglite' ? `pglite:${testTempDir('report-empty')}` : undefined;
    if (fresh === undefined) return;
    // An existing but empty directory (a missing one is refused before: tested in guards.test.ts).
    mkdirSync(fresh.slice('pglite:'.length), { recursive: true });
    const result = await runCli(['report'], { DATABASE_URL: fresh });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/run `aggregate-features-daily migrate` first/);
  });
});
