/**
 * `verify` from the command line on PGlite and the server: exit 0 when the table equals a fresh
 * computation, exit 1 with the differing rows (stored and expected values, capped) after the
 * table is corrupted; explicit ranges, shards, JSON lines, usage errors; and a role that may
 * only SELECT (it writes nothing, not even to the run log).
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { allBackends, withSession } from './support/backends.js';
import { registerRole } from './support/resources.js';
import { runMain } from './support/cli.js';
import { loadAttempts, prepareSchema } from './support/data.js';
import { history } from './support/history.js';
import { raw, sql } from '../src/sql/tag.js';

const backends = await allBackends('verify');
const attempts = history({ first: '2025-01-01', days: 50, seed: 11 });

describe('usage errors (no database needed)', () => {
  const env = { DATABASE_URL: 'postgres://x@127.0.0.1:1/db' };
  test.each([
    [['verify', '--date', '2025-02-01', '--from', '2025-01-01', '--to', '2025-01-02'], /either --date or --from and --to, not both/],
    [['verify', '--from', '2025-01-01'], /verify --from needs --to/],
    [['verify', '--to', '2025-01-01'], /verify --from needs --to/],
    [['verify', '--from', '2025-01-03', '--to', '2025-01-01'], /--from 2025-01-03 is after --to 2025-01-01/],
    [['verify', '--date', '2025-13-01'], /--date "2025-13-01" is not a calendar date/],
    [['verify', '--limit', 'x'], /--limit "x" is not accepted/],
    [['verify', '--shard', '5/4'], /--shard "5\/4"/],
    [['verify', '--chunk-days', 'week'], /--chunk-days "week" is not accepted/],
  ])('%j exits 2', async (args, message) => {
    const result = await runMain(args, env);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
  });
});

describe.each(backends)('verify ($name)', (backend) => {
  const env = (extra: Record<string, string> = {}) => ({ DATABASE_URL: backend.url, ...extra });

  beforeAll(async () => {
    await withSession(backend, async (session) => {
      await prepareSchema(session);
      await loadAttempts(session, attempts);
    });
    // In chunks of 9 days: every "in sync" below also checks that the chunks wrote exact rows.
    const filled = await runMain(['backfill', '--from', '2025-01-01', '--to', '2025-02-19', '--chunk-days', '9'], env());
    expect(filled.code).toBe(0);
  });

  describe('in sync', () => {
    test('in sync: exit 0 and a one-line summary, for a window, a range and a shard', async () => {
      const window = await runMain(['verify', '--date', '2025-02-19'], env({ AGG_LOOKBACK_DAYS: '27' }));
      expect(window.code).toBe(0);
      expect(window.lines).toEqual([
        expect.stringMatching(
          /^\[INFO\] Verify: features_topic_daily matches the source on 2025-01-23\.\.2025-02-19 \(\d+ rows\)$/,
        ) as unknown,
      ]);
      const range = await runMain(['verify', '--from', '2025-01-01', '--to', '2025-02-19'], env());
      expect(range.code).toBe(0);
      expect(range.lines[0]).toMatch(/matches the source on 2025-01-01\.\.2025-02-19/);
      const shard = await runMain(['verify', '--date', '2025-02-19', '--shard', '2/3'], env());
      expect(shard.code).toBe(0);
    });

    test('a window with no rows on either side says it compared nothing; --fail-on-empty makes that exit 1', async () => {
      const empty = await runMain(['verify', '--from', '2020-01-01', '--to', '2020-01-07'], env());
      expect(empty.code).toBe(0);
      expect(empty.lines).toEqual([
        '[WARN] Verify compared nothing on 2020-01-01..2020-01-07: neither the source nor features_topic_daily has a row for these days, so this is no evidence either way; check the days (--date, --from/--to, AGG_LOOKBACK_DAYS), AGG_SOURCE and DATABASE_URL',
      ]);
      expect(empty.stdout + empty.stderr).not.toMatch(/matches/);
      const failing = await runMain(['verify', '--date', '2020-01-07', '--fail-on-empty'], env());
      expect(failing.code).toBe(1);
      expect(failing.stderr).toMatch(/^\[WARN\] Verify compared nothing on 2019-12-31\.\.2020-01-07: /);
      // Rows on the days: compared, so --fail-on-empty changes nothing.
      expect((await runMain(['verify', '--date', '2025-02-19', '--fail-on-empty'], env())).code).toBe(0);
    });
  });

  describe('drift', () => {
    test('drift: exit 1, each differing row with stored and expected values, a summary; capped by --limit', async () => {
      const stored = await withSession(backend, async (session) => {
        const rows = (
          await session.query<{ user_id: string; topic_id: string; date: string; attempts: number; improvement: string | null }>(
            sql`select user_id, topic_id, date::text as date, attempts, improvement::text as improvement
           from features_topic_daily where date between '2025-02-10' and '2025-02-19' and improvement is not null
           order by date, user_id, topic_id limit 2`,
          )
        ).rows;
        const [changed, deleted] = rows as [(typeof rows)[0], (typeof rows)[0]];
        await session.query(
          sql`update features_topic_daily set attempts = attempts + 5, improvement = 0.999 where user_id = ${changed.user_id} and topic_id = ${changed.topic_id} and date = ${changed.date}`,
        );
        await session.query(
          sql`delete from features_topic_daily where user_id = ${deleted.user_id} and topic_id = ${deleted.topic_id} and date = ${deleted.date}`,
        );
        await session.query(
          sql`insert into features_topic_daily (user_id, topic_id, date, attempts, correct, hints) values ('ghost', 'algebra', '2025-02-18', 3, 1, 0)`,
        );
        return { changed, deleted };
      });
      const { changed, deleted } = stored;

      const result = await runMain(['verify', '--date', '2025-02-19'], env({ AGG_LOOKBACK_DAYS: '9' }));
      expect(result.code).toBe(1);
      expect(result.lines).toContain(
        `[ERROR] Drift user=${changed.user_id} topic=${changed.topic_id} date=${changed.date}: differs: attempts stored=${changed.attempts + 5} expected=${changed.attempts}, improvement stored=0.999 expected=${changed.improvement}`,
      );
      expect(result.lines).toContainEqual(
        expect.stringMatching(
          new RegExp(
            `^\\[ERROR\\] Drift user=${deleted.user_id} topic=${deleted.topic_id} date=${deleted.date}: missing, not stored; expected attempts=${deleted.attempts} correct=\\d+ .* improvement=${deleted.improvement!.replace('.', '\\.')} last_seen_at=\\S+Z$`,
          ),
        ),
      );
      expect(result.lines).toContain(
        '[ERROR] Drift user=ghost topic=algebra date=2025-02-18: unexpected, the source has no attempts for it; stored attempts=3 correct=1 avg_time_ms=NULL rt_median=NULL hints=0 improvement=NULL last_seen_at=NULL',
      );
      expect(result.lines.at(-1)).toMatch(
        /^\[ERROR\] Verify found drift on 2025-02-10\.\.2025-02-19: 3 rows differ from a fresh computation \(differs=1, missing=1, unexpected=1; stored=\d+, expected=\d+\)\. Re-run the window/,
      );
      // Theta columns are not the job's with theta disabled: never shown.
      expect(result.stderr).not.toMatch(/theta/);

      const capped = await runMain(['verify', '--date', '2025-02-19', '--limit', '1'], env({ AGG_LOOKBACK_DAYS: '9' }));
      expect(capped.code).toBe(1);
      expect(capped.lines.filter((l) => l.startsWith('[ERROR] Drift '))).toHaveLength(1);
      expect(capped.lines.at(-1)).toMatch(/3 rows differ .*; showing the first 1\. Re-run/);

      const json = await runMain(['verify', '--date', '2025-02-19'], env({ AGG_LOOKBACK_DAYS: '9', LOG_FORMAT: 'json' }));
      expect(json.code).toBe(1);
      const records = json.stderr
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(records.filter((r) => r.event === 'verify_difference')).toHaveLength(3);
      expect(records).toContainEqual(
        expect.objectContaining({
          event: 'verify_difference',
          kind: 'differs',
          user_id: changed.user_id,
          columns: ['attempts', 'improvement'],
          stored: expect.objectContaining({ attempts: String(changed.attempts + 5), improvement: '0.999' }) as unknown,
          expected: expect.objectContaining({ attempts: String(changed.attempts), improvement: changed.improvement }) as unknown,
        }),
      );
      expect(records.at(-1)).toMatchObject({ level: 'error', event: 'verify_summary', differs: 1, missing: 1, unexpected: 1, shown: 3 });

      // A range compared in chunks of 7 days finds and shows the same rows, in the same order,
      // as one statement over the range.
      const whole = await runMain(['verify', '--from', '2025-01-01', '--to', '2025-02-19'], env());
      const chunked = await runMain(['verify', '--from', '2025-01-01', '--to', '2025-02-19', '--chunk-days', '7'], env());
      expect(whole.code).toBe(1);
      expect(chunked.code).toBe(1);
      expect(chunked.lines[0]).toBe('[INFO] Verify: comparing 2025-01-01..2025-02-19 in 8 chunks of at most 7 days');
      expect(chunked.lines.slice(1)).toEqual(whole.lines);
      expect(whole.lines.at(-1)).toMatch(
        /3 rows differ from a fresh computation \(differs=1, missing=1, unexpected=1; stored=\d+, expected=\d+\)/,
      );
      const chunkedCapped = await runMain(
        ['verify', '--from', '2025-01-01', '--to', '2025-02-19', '--limit', '2', '--chunk-days', '7'],
        env({ AGG_WORK_MEM: '64kB' }),
      );
      expect(chunkedCapped.code).toBe(1);
      expect(chunkedCapped.lines.filter((l) => l.startsWith('[ERROR] Drift '))).toEqual(
        whole.lines.filter((l) => l.startsWith('[ERROR] Drift ')).slice(0, 2),
      );

      // Outside the corrupted days all is well; repairing the window (a backfill) ends the drift.
      expect((await runMain(['verify', '--from', '2025-01-01', '--to', '2025-02-09'], env())).code).toBe(0);
      expect((await runMain(['backfill', '--from', '2025-02-10', '--to', '2025-02-19'], env())).code).toBe(0);
      expect((await runMain(['verify', '--date', '2025-02-19'], env({ AGG_LOOKBACK_DAYS: '9' }))).code).toBe(0);
    });
  });

  describe('a read-only role', () => {
    test.runIf(backend.name === 'postgres')('works for a role that may only SELECT, and writes nothing', async () => {
      // Roles are global to the server: name it after this checkout's database.
      const role = `${new URL(backend.url).pathname.slice(1)}_reader`.slice(0, 63);
      await withSession(backend, async (session) => {
        await session.query(raw(`drop owned by ${role}`)).catch(() => undefined);
        await session.query(raw(`drop role if exists ${role}`));
        await session.query(raw(`create role ${role} login`));
        registerRole(role); // dropped at the file's end, after its database
        await session.query(
          raw(`grant select on attempt, features_topic_daily, aggregate_features_runs, aggregate_features_migrations to ${role}`),
        );
      });
      const url = new URL(backend.url);
      url.username = role;
      const before = await withSession(
        backend,
        async (s) => (await s.query<{ n: number }>(sql`select count(*)::int as n from aggregate_features_runs`)).rows[0]!.n,
      );
      const ok = await runMain(['verify', '--date', '2025-02-19'], { DATABASE_URL: url.toString(), AGG_LOOKBACK_DAYS: '27' });
      expect(ok.stderr).toMatch(/matches the source/);
      expect(ok.code).toBe(0);
      await withSession(backend, (s) => s.query(sql`update features_topic_daily set hints = hints + 1 where date = '2025-02-01'`));
      const drift = await runMain(['verify', '--date', '2025-02-19'], { DATABASE_URL: url.toString(), AGG_LOOKBACK_DAYS: '27' });
      expect(drift.code).toBe(1);
      expect(drift.stderr).toMatch(/date=2025-02-01: differs: hints stored=\d+ expected=\d+/);
      // The reader cannot write, and verify did not try: the run log is as it was.
      const denied = await runMain(['--date', '2025-02-19'], { DATABASE_URL: url.toString() });
      expect(denied.code).not.toBe(0);
      const after = await withSession(
        backend,
        async (s) => (await s.query<{ n: number }>(sql`select count(*)::int as n from aggregate_features_runs`)).rows[0]!.n,
      );
      expect(after).toBe(before);
      await withSession(backend, (s) => s.query(sql`update features_topic_daily set hints = hints - 1 where date = '2025-02-01'`));
    });
  });
});
