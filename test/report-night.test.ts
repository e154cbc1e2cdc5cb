/**
 * `report`'s newest-night check: a run that finished minutes ago for a day a year back has not
 * written last night, so `report --check` fails and names the missing night; a run anchored on
 * a day that was still going covers only the day before; AGG_REPORT_NIGHT_GRACE_HOURS moves
 * when a night is expected; `--date` checks that night instead. On PGlite and the server, with
 * the database's clock.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import type { Report } from '../src/report/collect.js';
import { judgeNight, type ShardNight } from '../src/report/night.js';
import { allBackends, withSession } from './support/backends.js';
import { runMain } from './support/cli.js';
import { loadAttempts, prepareSchema } from './support/data.js';
import { history } from './support/history.js';
import { raw, sql } from '../src/sql/tag.js';

const backends = await allBackends('report_night');

describe('judgeNight (pure)', () => {
  const night = (over: Partial<ShardNight> = {}): ShardNight => ({
    expected_night: '2026-12-04',
    shard: '1/1',
    covered_through: '2026-12-04',
    first_missing: '2026-12-05',
    anchor: '2026-12-04',
    finished_at: '2026-12-05 02:40:00+00',
    ...over,
  });
  const judgeOf = (shards: ShardNight[]) => judgeNight({ shards, timezone: 'UTC', graceHours: 6 });

  test('the expected night covered (or a newer one): no finding', () => {
    expect(judgeOf([night()])).toEqual([]);
    expect(judgeOf([night({ covered_through: '2026-12-05', anchor: '2026-12-05' })])).toEqual([]);
    expect(judgeNight(undefined)).toEqual([]);
  });

  test('an older night: FAIL naming the missing night, what is covered and the backfill that writes it', () => {
    const [finding, ...rest] = judgeOf([night({ covered_through: '2025-11-01', first_missing: '2025-11-02', anchor: '2025-11-01' })]);
    expect(rest).toEqual([]);
    expect(finding).toEqual({
      status: 'FAIL',
      check: 'night',
      message:
        'night 2026-12-04 is missing: successful runs cover the days up to 2025-11-01 (anchor 2025-11-01); expected 6 h after it ends in UTC (AGG_REPORT_NIGHT_GRACE_HOURS); write it with backfill --from 2025-11-02 --to 2026-12-04',
    });
  });

  test('per shard, and a shard without any success is left to the no_success check', () => {
    const findings = judgeOf([
      night({ shard: '1/2' }),
      night({ shard: '2/2', covered_through: '2026-12-03', first_missing: '2026-12-04', anchor: '2026-12-03' }),
      night({ shard: '3/3', covered_through: null, first_missing: null, anchor: null, finished_at: null }),
    ]);
    expect(findings.map((f) => f.message)).toEqual([expect.stringMatching(/^night 2026-12-04 is missing of shard 2\/2: /)]);
  });
});

describe.each(backends)('report --check and the newest night ($name)', (backend) => {
  const env = { DATABASE_URL: backend.url, AGG_REPORT_NIGHT_GRACE_HOURS: '0' };
  /** Days relative to today in UTC, by the database's clock. */
  let today = '';
  let yesterday = '';

  const setRuns = (values: string) =>
    withSession(backend, async (s) => {
      await s.query(sql`delete from aggregate_features_runs`);
      await s.query(
        raw(
          `insert into aggregate_features_runs (run_id, job_version, command, since, anchor, started_at, finished_at, outcome) values ${values}`,
        ),
      );
    });
  const check = async (args: string[] = [], extra: Record<string, string> = {}) => {
    const result = await runMain(['report', '--check', '--json', ...args], { ...env, ...extra });
    return { code: result.code, report: JSON.parse(result.stdout) as Report };
  };
  const night = (report: Report) => report.verdict.reasons.find((r) => r.check === 'night');

  beforeAll(async () => {
    await withSession(backend, async (session) => {
      await prepareSchema(session);
      await loadAttempts(session, history({ first: '2025-10-20', days: 13, seed: 3 }));
      const days = await session.query<{ today: string; yesterday: string }>(
        sql`select (now() at time zone 'UTC')::date::text as today, ((now() at time zone 'UTC')::date - 1)::text as yesterday`,
      );
      ({ today, yesterday } = days.rows[0]!);
    });
  });

  test('a run just now for a day a year back: FAIL naming last night, exit 1 (not "OK: 0.0 h ago")', async () => {
    expect((await runMain(['run', '--date', '2025-11-01'], env)).code).toBe(0);
    const text = await runMain(['report', '--check', '--width', '1000'], env);
    expect(text.code).toBe(1);
    expect(text.stdout.split('\n')[0]).toMatch(
      new RegExp(`^FAIL: night ${yesterday} is missing: successful runs cover the days up to 2025-11-01 \\(anchor 2025-11-01\\)`),
    );
    // When the run ran is still said, as a check that passed.
    expect(text.stdout).toMatch(/OK {4}last successful run \d+\.\d h ago \(anchor 2025-11-01\)/);
    // --date asks about that night, which the run covered.
    expect((await runMain(['report', '--check', '--date', '2025-11-01'], env)).code).toBe(0);
    expect((await check(['--date', '2025-11-02'])).code).toBe(1);
  });

  test('a run anchored on yesterday that finished after it ended covers it; one that finished during it does not', async () => {
    await setRuns(`('r1', 't', 'run', '${yesterday}'::date - 7, '${yesterday}', now() - interval '1 minute', now(), 'success')`);
    const covered = await check();
    expect(night(covered.report)).toBeUndefined();
    expect(covered.code).toBe(0);

    // Anchored on yesterday but finished while yesterday was still going (a --date of that day).
    await setRuns(
      `('r1', 't', 'run', '${yesterday}'::date - 7, '${yesterday}', '${yesterday}'::timestamp at time zone 'UTC' + interval '11 hours', '${yesterday}'::timestamp at time zone 'UTC' + interval '12 hours', 'success')`,
    );
    const early = await check([], { AGG_REPORT_MAX_AGE_HOURS: '100' });
    expect(early.code).toBe(1);
    expect(night(early.report)?.message).toMatch(
      new RegExp(
        `^night ${yesterday} is missing: successful runs cover the days up to \\d{4}-\\d\\d-\\d\\d \\(anchor ${yesterday}, finished .* before that day ended\\)`,
      ),
    );

    // Anchored on today (still going), finished now: yesterday is covered.
    await setRuns(`('r1', 't', 'run', '${today}'::date - 7, '${today}', now() - interval '1 minute', now(), 'success')`);
    expect((await check()).code).toBe(0);

    // A backfill that wrote yesterday counts too, after a failed nightly run.
    await setRuns(
      `('r1', 't', 'run', '${yesterday}'::date - 7, '${yesterday}'::date - 1, now() - interval '20 hours', now() - interval '20 hours', 'success'),
       ('b1', 't', 'backfill', '${yesterday}', '${yesterday}', now() - interval '1 minute', now(), 'success')`,
    );
    expect(night((await check()).report)).toBeUndefined();
  });

  test('AGG_REPORT_NIGHT_GRACE_HOURS: a night is expected only that many hours after it ended', async () => {
    // Covered up to three days ago.
    await setRuns(`('r1', 't', 'run', '${today}'::date - 10, '${today}'::date - 3, now() - interval '1 minute', now(), 'success')`);
    const strict = await check();
    expect(strict.code).toBe(1);
    expect(night(strict.report)?.message).toContain(`night ${yesterday} is missing`);
    // 48 hours of grace: the night expected is the one that ended at least 48 hours ago.
    expect(night((await check([], { AGG_REPORT_NIGHT_GRACE_HOURS: '48' })).report)).toBeUndefined();
    const bad = await runMain(['report'], { ...env, AGG_REPORT_NIGHT_GRACE_HOURS: '-1' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('AGG_REPORT_NIGHT_GRACE_HOURS="-1" is not accepted');
  });
});
