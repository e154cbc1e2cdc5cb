/**
 * What the job remembers of its source, on PGlite and the server, over six weeks of generated
 * attempts with a weekly pattern (200 students; 600 attempts on a weekday, 240 on a weekend day,
 * spread over 08:00–19:59 UTC), backfilled 2025-09-24 … 2025-11-04:
 * - a newest day delivered in part (80% of the students missing, the source cut at 14:00) is
 *   refused by the real run and the dry run alike, naming its count and baseline; too little
 *   history means no judgement, said in the log; a memory younger than the table falls back to
 *   the stored rows;
 * - a stored day losing 40% a night is stopped on the second night (against its highest count,
 *   not last night's); --allow-shrink lowers what is remembered;
 * - a quiet holiday is refused and published by --allow-incomplete, and report stays green for
 *   it; published by a looser threshold instead, report fails on it;
 * - a double delivery is a WARN in the run's log and in report, with its numbers; a topic
 *   missing from a normal day is named by report;
 * - a backfill judges only the days the nightly window of today still covers: older days are
 *   history the source finished delivering (their quiet days are holidays, not a delivery in
 *   progress), so the six weeks backfilled here are not judged;
 * - AGG_TIMEZONE changed after a UTC backfill is refused (exit 2, nothing written) until
 *   `backfill --redefine` has rebuilt the history, whose attempts then add up to the source's.
 */
import { describe, expect, test } from 'vitest';
import { ensureAttemptTable } from '../src/source/attempt-table.js';
import { loadConfig } from '../src/config/index.js';
import type { Session } from '../src/database/db.js';
import { HeldBackError, JobError } from '../src/errors.js';
import { createEventStream, type RunEvent } from '../src/observe/events.js';
import { parseQualifiedName } from '../src/sql/identifiers.js';
import { loadMigrations, migrate } from '../src/database/migrate.js';
import { runBackfill } from '../src/pipeline/backfill.js';
import { runDaily, type RunOptions } from '../src/pipeline/daily.js';
import { collectReport, type Report } from '../src/report/collect.js';
import { allBackends, useSession } from './support/backends.js';
import { prepareSchema, readFeatures } from './support/data.js';
import { raw, sql } from '../src/sql/tag.js';

/** Attempts of the days first + 0 … first + count − 1 into `table`: a weekday has all 200 students, a weekend day 80. */
const generate = (table: string, first: string, count: number) => `
  insert into ${table} (student_id, topic_id, completed_at, correct, response_time_ms, hint_used)
  select 's' || s, 't' || (s + d) % 5,
         timestamptz '${first} 00:00Z' + d * interval '1 day' + interval '8 hours' + (s % 12) * interval '1 hour' + i * interval '1 minute',
         (s + i) % 3 > 0, 800 + (s * i) % 3000, i % 7 = 0
  from generate_series(0, ${count - 1}) d, generate_series(1, 200) s, generate_series(1, 3) i
  where extract(isodow from date '${first}' + d) < 6 or s % 5 < 2`;

const student = `substr(student_id, 2)::int`;
const onDay = (day: string) =>
  `completed_at >= timestamptz '${day} 00:00Z' and completed_at < timestamptz '${day} 00:00Z' + interval '1 day'`;

const views = `
  create view src_full as select * from attempt union all select * from attempt_new;
  create view src_partition as select * from attempt union all select * from attempt_new where ${student} % 5 = 0;
  create view src_cutoff as select * from attempt union all select * from attempt_new where completed_at < timestamptz '2025-11-05 14:00Z';
  create view src_holiday as select * from attempt union all select * from attempt_new where ${onDay('2025-11-05')} and ${student} % 3 = 0;
  create view src_loss1 as select * from attempt where not (${onDay('2025-11-03')}) or ${student} % 5 < 3;
  create view src_loss2 as select * from attempt where not (${onDay('2025-11-03')}) or ${student} % 25 < 9;
  create view src_loss3 as select * from attempt where not (${onDay('2025-11-03')}) or ${student} % 125 < 27;
  create view src_topic_missing as
    select * from src_holiday union all select * from attempt_new where ${onDay('2025-11-06')} and topic_id <> 't1';
  create view src_double as
    select * from src_holiday union all select * from attempt_new where ${onDay('2025-11-06')}
    union all select * from attempt_new where ${onDay('2025-11-06')};
  create view src_double_friday as
    select * from src_double union all select * from attempt_new where ${onDay('2025-11-07')}
    union all select * from attempt_new where ${onDay('2025-11-07')};
  create view src_friday_partial as
    select * from src_double union all select * from attempt_new where ${onDay('2025-11-07')} and ${student} % 5 = 0`;

/** The exit code and message a CLI run would show. */
async function outcome(run: () => Promise<unknown>): Promise<{ code: number; message: string | undefined; heldBack?: readonly string[] }> {
  try {
    await run();
    return { code: 0, message: undefined };
  } catch (err) {
    if (err instanceof HeldBackError) return { code: err.exitCode, message: err.message, heldBack: err.days };
    if (err instanceof JobError) return { code: err.exitCode, message: err.message };
    throw err;
  }
}

async function memoryOf(
  session: Session,
  day: string,
): Promise<{ first: number; highest: number; last: number; accepted: boolean } | undefined> {
  const result = await session.query<{ first: number; highest: number; last: number; accepted: boolean }>(
    sql`select first_attempts::int as first, highest_attempts::int as highest, last_attempts::int as last, accepted
     from aggregate_features_source_days where shard = '1/1' and date = ${day}::date`,
  );
  return result.rows[0];
}

async function snapshot(session: Session): Promise<unknown> {
  const memory = await session.query(sql`select * from aggregate_features_source_days order by shard, date`);
  return { features: await readFeatures(session), memory: memory.rows };
}

/** "STATUS message" of the report's reason `check`, if it has one. */
function reasonOf(report: Report, check: string): string | undefined {
  const reason = report.verdict.reasons.find((r) => r.check === check);
  return reason && `${reason.status} ${reason.message}`;
}

const backends = await allBackends('source_memory');

describe.each(backends)('the source memory ($name)', (backend) => {
  const backfillEvents: RunEvent[] = [];
  const t = useSession(backend, async (session) => {
    await prepareSchema(session);
    await session.query(sql`create table attempt_new (like attempt)`);
    await session.query(raw(generate('attempt', '2025-09-24', 42)));
    await session.query(raw(generate('attempt_new', '2025-11-05', 3)));
    await session.query(raw(views));
    // A backfill of history long delivered (every day before the nightly window of today) is not judged for completeness.
    await runBackfill(
      session,
      loadConfig({}),
      { from: '2025-09-24', to: '2025-11-04' },
      createEventStream((e) => backfillEvents.push(e)),
    );
  });

  const run = (source: string, date: string, options: Partial<RunOptions> = {}, env: Record<string, string> = {}, events?: RunEvent[]) =>
    runDaily(
      t.session,
      loadConfig({ AGG_SOURCE: source, ...env }),
      { date, ...options },
      createEventStream((e) => events?.push(e)),
    );
  const report = (date: string) => collectReport(t.session, loadConfig({}), { days: 7, date, limit: 5 });

  describe('judging the newest day', () => {
    test('the backfill remembered every day, and judged none of them: all lie before the nightly window of today', async () => {
      expect(await memoryOf(t.session, '2025-11-04')).toEqual({ first: 600, highest: 600, last: 600, accepted: false });
      expect(await memoryOf(t.session, '2025-11-01')).toEqual({ first: 240, highest: 240, last: 240, accepted: false });
      const judged = backfillEvents.filter((e) => e.type === 'message' && /^Newest-day check/.test(e.message));
      expect(judged).toEqual([]);
    });

    test('80% of the students missing from the newest day: refused with its count and baseline, nothing written', async () => {
      const before = await snapshot(t.session);
      const real = await outcome(() => run('src_partition', '2025-11-05'));
      const dry = await outcome(() => run('src_partition', '2025-11-05', { dryRun: true }));
      expect(real).toEqual(dry);
      expect(real.code).toBe(1);
      expect(real.heldBack).toEqual(['2025-11-05']);
      expect(real.message).toMatch(
        /^the source "src_partition" looks incomplete: the new day fell more than 40% below the same weekday of the weeks before \(2025-11-05: 120 attempts, 20% of its baseline 600\); nothing was written\. .*--allow-incomplete/,
      );
      expect(await snapshot(t.session)).toEqual(before);
      // report --check fails while the newest day is held back.
      const held = await report('2025-11-05');
      expect(held.verdict.status).toBe('FAIL');
    });

    test('the source cut at 14:00 on the newest day: refused too', async () => {
      const real = await outcome(() => run('src_cutoff', '2025-11-05'));
      expect(real.code).toBe(1);
      expect(real.message).toMatch(/\(2025-11-05: 303 attempts, 51% of its baseline 600\)/);
      expect(await outcome(() => run('src_cutoff', '2025-11-05', { dryRun: true }))).toEqual(real);
    });

    test('too little history: no judgement, said in the log', async () => {
      const events: RunEvent[] = [];
      const dry = await outcome(() => run('src_partition', '2025-11-05', { dryRun: true }, { AGG_NEWEST_MIN_WEEKS: '7' }, events));
      expect(dry.code).toBe(0);
      expect(events).toContainEqual(
        expect.objectContaining({
          type: 'message',
          level: 'info',
          message:
            'Newest-day check: 2025-11-05 not judged: 4 of the 4 weeks before hold that weekday, at least 7 needed (AGG_NEWEST_MIN_WEEKS)',
        }),
      );
    });
  });

  describe('shrinking days, holidays, topics and double deliveries', () => {
    test('a stored day losing 40% a night: stopped on the second night against its highest count; --allow-shrink lowers it', async () => {
      // Night 1: 600 → 360 (−40%), under the 50% threshold.
      expect((await outcome(() => run('src_loss1', '2025-11-04'))).code).toBe(0);
      expect(await memoryOf(t.session, '2025-11-03')).toEqual({ first: 600, highest: 600, last: 360, accepted: false });
      // Night 2: 360 → 216, only −40% from last night, but −64% from the highest.
      const before = await snapshot(t.session);
      const night2 = await outcome(() => run('src_loss2', '2025-11-04'));
      expect(night2.code).toBe(1);
      expect(night2.message).toMatch(
        /1 day of 2025-10-28..2025-11-04 lost more than 50% .*\(2025-11-03: stored 360, highest 600, now 216\)/,
      );
      expect(await outcome(() => run('src_loss2', '2025-11-04', { dryRun: true }))).toEqual(night2);
      expect(await snapshot(t.session)).toEqual(before);
      // The operator confirms the correction: what is remembered is lowered, and the next night is judged from there.
      expect((await outcome(() => run('src_loss2', '2025-11-04', { allowShrink: true }))).code).toBe(0);
      expect(await memoryOf(t.session, '2025-11-03')).toEqual({ first: 600, highest: 216, last: 216, accepted: true });
      expect((await outcome(() => run('src_loss3', '2025-11-04'))).code).toBe(0);
      // The attempts come back: the highest rises with them.
      expect((await outcome(() => run('attempt', '2025-11-04'))).code).toBe(0);
      expect(await memoryOf(t.session, '2025-11-03')).toMatchObject({ highest: 600, last: 600 });
    });

    test('a quiet holiday: refused, then published by --allow-incomplete; report fails only for a day nobody accepted', async () => {
      const refused = await outcome(() => run('src_holiday', '2025-11-05'));
      expect(refused.code).toBe(1);
      expect(refused.message).toMatch(/\(2025-11-05: 198 attempts, 33% of its baseline 600\)/);
      // Published by loosening the threshold, the day is below its baseline in the memory: report fails.
      expect((await outcome(() => run('src_holiday', '2025-11-05', {}, { AGG_NEWEST_MAX_DROP: '0.9' }))).code).toBe(0);
      const loose = await report('2025-11-05');
      expect(reasonOf(loose, 'below_baseline')).toMatch(/^FAIL 2025-11-05 has 198 attempts, 33% of its baseline 600/);
      expect(loose.baselines.days[0]).toEqual({ date: '2025-11-05', attempts: 198, baseline: 600, weeks: 4, accepted: false });
      // The documented override accepts it: report is green for it.
      expect((await outcome(() => run('src_holiday', '2025-11-05', { allowIncomplete: true }))).code).toBe(0);
      expect(await memoryOf(t.session, '2025-11-05')).toMatchObject({ last: 198, accepted: true });
      const accepted = await report('2025-11-05');
      expect(accepted.verdict.reasons.filter((r) => r.check === 'below_baseline')).toEqual([]);
      expect(accepted.verdict.status).not.toBe('FAIL');
    });

    test('a topic missing from a normal day is named by report', async () => {
      expect((await outcome(() => run('src_topic_missing', '2025-11-06'))).code).toBe(0);
      const r = await report('2025-11-06');
      expect(reasonOf(r, 'topic_drop')).toMatch(/^WARN 2025-11-06: 1 topic fell .*\(t1: 0 attempts, baseline 1\d\d\)/);
    });

    test('a double delivery: a WARN with its numbers in the run and in report', async () => {
      expect((await outcome(() => run('src_double', '2025-11-06'))).code).toBe(0);
      const r = await report('2025-11-06');
      expect(reasonOf(r, 'above_baseline')).toMatch(/^WARN 2025-11-06 has 1200 attempts, 200% of its baseline 600/);
      // A new day delivered twice warns in the run's own log (and in the dry run's).
      const events: RunEvent[] = [];
      expect((await outcome(() => run('src_double_friday', '2025-11-07', { dryRun: true }, { AGG_LOOKBACK_DAYS: '0' }, events))).code).toBe(
        0,
      );
      const warnings = events.flatMap((e) => (e.type === 'message' && e.level === 'warn' ? [e.message] : []));
      expect(warnings.join('\n')).toMatch(/^Newest-day check: 2025-11-07 has 1200 attempts, 200% of its baseline 600 .*twice/m);
    });
  });

  describe('the memory itself', () => {
    test('a memory younger than the table (an installation that gained it by migrate): the new day is judged against the stored rows', async () => {
      await t.session.query(sql`delete from aggregate_features_source_days where date < '2025-11-01'`);
      const real = await outcome(() => run('src_friday_partial', '2025-11-07', {}, { AGG_LOOKBACK_DAYS: '0' }));
      expect(real.code).toBe(1);
      expect(real.message).toMatch(/\(2025-11-07: 120 attempts, 20% of its baseline 600\)/);
      expect(await outcome(() => run('src_friday_partial', '2025-11-07', { dryRun: true }, { AGG_LOOKBACK_DAYS: '0' }))).toEqual(real);
    });

    test('AGG_TIMEZONE changed after a UTC backfill: exit 2 and nothing written, until backfill --redefine rebuilds the history', async () => {
      const before = await snapshot(t.session);
      const seoul = { AGG_TIMEZONE: 'Asia/Seoul' };
      const changed = await outcome(() => run('src_full', '2025-11-06', {}, seoul));
      expect(changed.code).toBe(2);
      expect(changed.message).toMatch(
        /^features_topic_daily was computed with AGG_TIMEZONE=UTC \(recorded .*\), not AGG_TIMEZONE=Asia\/Seoul; nothing was written\. .*backfill --redefine --from 2025-09-24 --to 2025-11-06$/,
      );
      expect((await outcome(() => run('src_full', '2025-11-06', { dryRun: true }, seoul))).code).toBe(2);
      expect(await snapshot(t.session)).toEqual(before);
      const config = loadConfig({ AGG_SOURCE: 'src_full', ...seoul });
      const narrow = await outcome(() =>
        runBackfill(t.session, config, { from: '2025-10-01', to: '2025-11-07', redefine: true }, createEventStream()),
      );
      expect(narrow.code).toBe(2);
      expect(narrow.message).toMatch(
        /--redefine must rebuild every stored day \(2025-09-24..2025-11-06\).*use --from 2025-09-24 --to 2025-11-07/,
      );
      // 2025-11-06 is stored as delivered twice: the rebuild corrects that too, a loss confirmed with --allow-shrink.
      await runBackfill(
        t.session,
        config,
        { from: '2025-09-24', to: '2025-11-07', redefine: true, allowShrink: true },
        createEventStream(),
      );
      const sums = await t.session.query<{ stored: number; source: number }>(
        sql`select (select sum(attempts)::int from features_topic_daily) as stored,
              (select count(*)::int from src_full where (completed_at at time zone 'Asia/Seoul')::date between '2025-09-24' and '2025-11-07') as source`,
      );
      expect(sums.rows[0]!.stored).toBe(sums.rows[0]!.source);
      expect((await outcome(() => run('src_full', '2025-11-07', {}, seoul))).code).toBe(0);
      const back = await outcome(() => run('src_full', '2025-11-07'));
      expect(back.code).toBe(2);
      expect(back.message).toMatch(/computed with AGG_TIMEZONE=Asia\/Seoul/);
    });
  });
});

describe.each(await allBackends('source_memory_upgrade'))('an installation from before the memory ($name)', (backend) => {
  const t = useSession(backend, async (session) => {
    await migrate(session, loadMigrations().slice(0, 2));
    await ensureAttemptTable(session, parseQualifiedName('attempt', 'table'));
    await session.query(raw(generate('attempt', '2025-09-24', 43)));
    // Five weeks of rows, as the job before the memory left them.
    await session.query(sql`
      insert into features_topic_daily (user_id, topic_id, date, attempts)
      select student_id, topic_id, (completed_at at time zone 'UTC')::date, count(*)
      from attempt where completed_at < timestamptz '2025-11-05 00:00Z' group by 1, 2, 3`);
    await session.query(sql`
      create view attempt_partial as
      select * from attempt where completed_at < timestamptz '2025-11-05 00:00Z' or substr(student_id, 2)::int % 5 = 0`);
  });

  test('gains it by migrate and judges at once, from the stored rows', async () => {
    expect(await migrate(t.session)).toEqual(['003_source_memory']);
    const refused = await outcome(() =>
      runDaily(t.session, loadConfig({ AGG_SOURCE: 'attempt_partial' }), { date: '2025-11-05' }, createEventStream()),
    );
    expect(refused.code).toBe(1);
    expect(refused.message).toMatch(/\(2025-11-05: 120 attempts, 20% of its baseline 600\)/);
    expect((await t.session.query(sql`select 1 from aggregate_features_source_days`)).rowCount).toBe(0);
    await runDaily(t.session, loadConfig({}), { date: '2025-11-05' }, createEventStream());
    expect(await memoryOf(t.session, '2025-11-05')).toEqual({ first: 600, highest: 600, last: 600, accepted: false });
    expect((await t.session.query(sql`select 1 from aggregate_features_source_days`)).rowCount).toBe(8);
    const definition = await t.session.query(sql`select timezone, improvement_mode from aggregate_features_definition`);
    expect(definition.rows).toEqual([{ timezone: 'UTC', improvement_mode: 'accuracy' }]);
  });
});

describe.each(await allBackends('source_memory_recent'))('a backfill of the days the nightly window of today covers ($name)', (backend) => {
  // Six weeks ending yesterday (dated from the server's clock); yesterday delivered for one student in five only.
  let yesterday = '';
  let first = '';
  const t = useSession(backend, async (session) => {
    await prepareSchema(session);
    const days = await session.query<{ first: string; yesterday: string }>(
      sql`select (current_date - 42)::text as first, (current_date - 1)::text as yesterday`,
    );
    ({ first, yesterday } = days.rows[0]!);
    await session.query(raw(generate('attempt', first, 42)));
    await session.query(
      raw(`create view src_recent_partial as select * from attempt where not (${onDay(yesterday)}) or ${student} % 5 = 0`),
    );
  });

  test('a new day inside the nightly window is judged: refused when incomplete, published by --allow-incomplete', async () => {
    const config = loadConfig({ AGG_SOURCE: 'src_recent_partial' });
    const dayBefore = (await t.session.query<{ d: string }>(sql`select (${yesterday}::date - 1)::text as d`)).rows[0]!.d;
    // The history up to the day before: the last days (within the nightly window) are judged and normal.
    await runBackfill(t.session, config, { from: first, to: dayBefore }, createEventStream());
    const refused = await outcome(() => runBackfill(t.session, config, { from: yesterday, to: yesterday }, createEventStream()));
    expect(refused.code).toBe(1);
    expect(refused.heldBack).toEqual([yesterday]);
    expect(refused.message).toMatch(new RegExp(`looks incomplete: .*\\(${yesterday}: \\d+ attempts, \\d+% of its baseline \\d+\\)`));
    expect(await memoryOf(t.session, yesterday)).toBeUndefined();
    expect(
      (await outcome(() => runBackfill(t.session, config, { from: yesterday, to: yesterday, allowIncomplete: true }, createEventStream())))
        .code,
    ).toBe(0);
    expect((await memoryOf(t.session, yesterday))?.accepted).toBe(true);
  });
});
