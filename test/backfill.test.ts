/**
 * The backfill as a library, on PGlite and the server: it equals the oracle over its range and
 * N daily runs, shards add up to the unsharded result, re-running changes nothing, the ripple
 * brings the improvement of the 27 following days to the oracle's values (and touches nothing
 * else), the empty-source guard holds per day, and ranges in the future or too long are refused.
 */
import fc from 'fast-check';
import { describe, expect, test, vi } from 'vitest';
import { runBackfill } from '../src/pipeline/backfill.js';
import { chunkDays, maxChunkAttempts, maxChunkDays, minChunkDays } from '../src/pipeline/range.js';
import { loadConfig } from '../src/config/index.js';
import { ConfigError, LockHeldError, RunFailedError } from '../src/errors.js';
import { runDaily } from '../src/pipeline/daily.js';
import { acquireWriterLock } from '../src/database/lock.js';
import { createEventStream, type RunEvent } from '../src/observe/events.js';
import { oracle, type OracleAttempt, type OracleRow } from './oracle/oracle.js';
import { byKey, scenarioArbitrary } from './support/arbitraries.js';
import { allBackends, useSession } from './support/backends.js';
import { propertyRuns, propertyTimeout } from './support/property.js';
import { loadAttempts, prepareSchema, readFeatures } from './support/data.js';
import { addDays, history } from './support/history.js';
import { sql } from '../src/sql/tag.js';

const backends = await allBackends('backfill');
const timezone = 'America/New_York';
const config = loadConfig({ AGG_TIMEZONE: timezone });
// 2025-01-20 .. 2025-04-04: across the US change to daylight saving time (2025-03-09).
const first = '2025-01-20';
const last = '2025-04-04';
const attempts = history({ first, days: 75, seed: 42 });
const backfillRuns = Math.max(10, Math.round(propertyRuns / 10));
// More runs (PROPERTY_RUNS, TEST_NIGHTLY=1) get a time limit to match.
vi.setConfig({ testTimeout: propertyTimeout(backfillRuns, 10_000) });

function expected(source: OracleAttempt[], since: string, anchor: string): OracleRow[] {
  return oracle(source, { since, anchor, timezone, includeTheta: false, improvementMode: 'accuracy' });
}

describe.each(backends)('backfill ($name)', (backend) => {
  const t = useSession(backend, prepareSchema);
  const events: RunEvent[] = [];
  const stream = createEventStream((e) => events.push(e));
  /** The backfill's progress: its day_written events so far. */
  const progress = () => events.flatMap((e) => (e.type === 'day_written' ? [e] : []));

  async function reset(source: OracleAttempt[]) {
    await t.session.query(sql`truncate features_topic_daily; truncate aggregate_features_runs`);
    await loadAttempts(t.session, source);
    events.length = 0;
  }

  describe('equals the oracle', () => {
    test('equals the oracle over the range, and N daily runs; a re-run changes nothing', async () => {
      await reset(attempts);
      const from = '2025-02-25';
      const to = '2025-03-16';
      const result = await runBackfill(t.session, config, { from, to }, stream);
      const rows = await readFeatures(t.session);
      const oracleRows = expected(attempts, from, to);
      expect(oracleRows.length).toBeGreaterThan(100);
      expect(byKey(rows)).toEqual(byKey(oracleRows));
      expect(result).toMatchObject({ combinations: oracleRows.length, inserted: oracleRows.length, updated: 0, deleted: 0, failed: 0 });
      expect(result.ripple).toBeUndefined(); // nothing stored after the range
      expect(result.window).toMatchObject({ since: from, anchor: to, days: 20 });

      // Progress after every committed chunk (20 days in one, planned from the data's size), with an estimate of the time left.
      expect(progress().map((p) => p.done)).toEqual([20]);
      expect(progress().at(-1)).toMatchObject({ done: 20, total: 20, day: to, etaMs: 0 });
      expect(progress().every((p) => p.etaMs >= 0 && p.elapsedMs >= 0)).toBe(true);

      // The run log: one row, command 'backfill', the range, the counts.
      const log = await t.session.query<Record<string, unknown>>(
        sql`select command, shard, since::text as since, anchor::text as anchor, outcome, combinations, inserted from aggregate_features_runs`,
      );
      expect(log.rows).toEqual([
        {
          command: 'backfill',
          shard: '1/1',
          since: from,
          anchor: to,
          outcome: 'success',
          combinations: oracleRows.length,
          inserted: oracleRows.length,
        },
      ]);

      // Re-running skips nothing (every day recomputed) and duplicates nothing (no row rewritten).
      const again = await runBackfill(t.session, config, { from, to }, stream);
      expect(again).toMatchObject({ combinations: oracleRows.length, inserted: 0, updated: 0, unchanged: oracleRows.length, deleted: 0 });
      expect(byKey(await readFeatures(t.session))).toEqual(byKey(oracleRows));

      // The same days written by N daily runs (lookback 0, one per day) give the same rows.
      await t.session.query(sql`truncate features_topic_daily`);
      const daily = loadConfig({ AGG_TIMEZONE: timezone, AGG_LOOKBACK_DAYS: '0' });
      for (let d = 0; d < 20; d++) await runDaily(t.session, daily, { date: addDays(from, d) }, createEventStream());
      expect(byKey(await readFeatures(t.session))).toEqual(byKey(rows));
    });

    test('computed in chunks of a few days (across the change to daylight saving time) it equals the oracle, day by day', async () => {
      await reset(attempts);
      const from = '2025-02-27';
      const to = '2025-03-16';
      const result = await runBackfill(t.session, config, { from, to, chunkDays: 4 }, stream);
      const oracleRows = expected(attempts, from, to);
      expect(byKey(await readFeatures(t.session))).toEqual(byKey(oracleRows));
      expect(result).toMatchObject({ combinations: oracleRows.length, inserted: oracleRows.length, failed: 0 });
      // Committed and reported chunk by chunk: 4 + 4 + 4 + 4 + 2 days.
      expect(progress().map((p) => p.day)).toEqual(['2025-03-02', '2025-03-06', '2025-03-10', '2025-03-14', '2025-03-16']);
      expect(progress().map((p) => p.done)).toEqual([4, 8, 12, 16, 18]);
      // Chunks of one day take the daily path; a changed attempt is picked up either way.
      const changed = attempts.map((a) =>
        a.completed_at >= '2025-03-10T12:00' && a.completed_at < '2025-03-10T18:00' && a.correct !== null
          ? { ...a, correct: !a.correct }
          : a,
      );
      await loadAttempts(t.session, changed);
      await runBackfill(t.session, config, { from, to, chunkDays: 1 }, stream);
      expect(byKey(await readFeatures(t.session))).toEqual(byKey(expected(changed, from, to)));
    });

    test(`${backfillRuns} generated scenarios: a backfill of the window equals the oracle`, async () => {
      await fc.assert(
        fc.asyncProperty(scenarioArbitrary, async (scenario) => {
          await reset(scenario.attempts);
          const scenarioConfig = loadConfig({ AGG_TIMEZONE: scenario.timezone });
          const from = addDays(scenario.anchor, -scenario.lookbackDays);
          const result = await runBackfill(t.session, scenarioConfig, { from, to: scenario.anchor, allowEmptySource: true }, stream);
          const truth = oracle(scenario.attempts, {
            since: from,
            anchor: scenario.anchor,
            timezone: scenario.timezone,
            includeTheta: false,
            improvementMode: 'accuracy',
          });
          expect(byKey(await readFeatures(t.session))).toEqual(byKey(truth));
          expect(result.combinations).toBe(truth.length);
        }),
        { numRuns: backfillRuns },
      );
    });

    test('three shards together write exactly what one unsharded backfill writes', async () => {
      // Nine students, so that each of the three shards holds some (s9 alone falls in shard 1).
      const students = history({ first, days: 75, seed: 42, students: 9 });
      await reset(students);
      const from = '2025-03-01';
      const to = '2025-03-12';
      const counts = [];
      for (let index = 1; index <= 3; index++) {
        counts.push((await runBackfill(t.session, config, { from, to, shard: { index, count: 3 } }, stream)).combinations);
      }
      const oracleRows = expected(students, from, to);
      expect(counts.every((c) => c > 0)).toBe(true);
      expect(counts.reduce((a, b) => a + b, 0)).toBe(oracleRows.length);
      expect(byKey(await readFeatures(t.session))).toEqual(byKey(oracleRows));
    });
  });

  describe('the ripple and an empty source', () => {
    test('the ripple: improvement of the 27 days after the range follows changed attempts, nothing else is touched', async () => {
      await reset(attempts);
      // The whole history stored, as the nightly runs left it.
      await runBackfill(t.session, config, { from: first, to: last }, stream);
      expect(byKey(await readFeatures(t.session))).toEqual(byKey(expected(attempts, first, last)));

      // Upstream corrects the answers of 2025-02-10 .. 2025-02-16: every correct flag flipped, and
      // one attempt more per (student, topic) practised there.
      const from = '2025-02-10';
      const to = '2025-02-16';
      const inRange = (a: OracleAttempt) => a.completed_at >= '2025-02-10T12:00' && a.completed_at < '2025-02-16T12:00';
      const changed = attempts.map((a) => (inRange(a) && a.correct !== null ? { ...a, correct: !a.correct } : a));
      for (const a of attempts.filter(inRange).slice(0, 20))
        changed.push({ ...a, correct: true, completed_at: a.completed_at.replace(/\.\d+Z$/, '.777Z') });
      await loadAttempts(t.session, changed);

      const truth = expected(changed, first, last);
      const rippleEnd = addDays(to, 27); // 2025-03-15
      const improvementOf = (rows: OracleRow[], since: string, until: string) =>
        byKey(rows.filter((r) => r.date >= since && r.date <= until)).map((r) => [r.user_id, r.topic_id, r.date, r.improvement]);
      // Before the backfill the following days' improvement is stale: the test would notice a missing ripple.
      const before = await readFeatures(t.session);
      expect(improvementOf(before, addDays(to, 1), rippleEnd)).not.toEqual(improvementOf(truth, addDays(to, 1), rippleEnd));
      // One stored row on a ripple day removed, another given a wrong count: the ripple neither
      // inserts rows nor changes columns other than improvement.
      const victim = before.find((r) => r.date === addDays(to, 3))!;
      const tampered = before.find((r) => r.date === addDays(to, 5))!;
      await t.session.query(
        sql`delete from features_topic_daily where user_id = ${victim.user_id} and topic_id = ${victim.topic_id} and date = ${victim.date}`,
      );
      await t.session.query(
        sql`update features_topic_daily set attempts = 999 where user_id = ${tampered.user_id} and topic_id = ${tampered.topic_id} and date = ${tampered.date}`,
      );
      const computedAt = async (since: string, until: string) =>
        (
          await t.session.query<{ key: string; computed_at: string }>(
            sql`select user_id || '|' || topic_id || '|' || date as key, computed_at::text as computed_at
           from features_topic_daily where date between ${since} and ${until} order by 1`,
          )
        ).rows;
      const untouchedBefore = await computedAt(addDays(rippleEnd, 1), last);

      const result = await runBackfill(t.session, config, { from, to }, stream);
      expect(result.ripple).toMatchObject({ since: addDays(to, 1), anchor: rippleEnd });
      expect(result.ripple!.updated).toBeGreaterThan(0);
      expect(events).toContainEqual({ type: 'ripple_finished', since: addDays(to, 1), anchor: rippleEnd, updated: result.ripple!.updated });

      const after = await readFeatures(t.session);
      const expectedAfter = truth
        .filter((r) => !(r.user_id === victim.user_id && r.topic_id === victim.topic_id && r.date === victim.date))
        .map((r) =>
          r.user_id === tampered.user_id && r.topic_id === tampered.topic_id && r.date === tampered.date ? { ...r, attempts: 999 } : r,
        );
      expect(byKey(after)).toEqual(byKey(expectedAfter));
      // Days after the ripple read none of the changed days: not rewritten.
      expect(await computedAt(addDays(rippleEnd, 1), last)).toEqual(untouchedBefore);
    });

    test('the ripple stops at the latest stored day, and is skipped when nothing is stored after the range', async () => {
      await reset(attempts);
      await runBackfill(t.session, config, { from: '2025-03-01', to: '2025-03-20' }, stream);
      const result = await runBackfill(t.session, config, { from: '2025-03-01', to: '2025-03-10' }, stream);
      expect(result.ripple).toMatchObject({ since: '2025-03-11', anchor: '2025-03-20', updated: 0 });
      const none = await runBackfill(t.session, config, { from: '2025-03-15', to: '2025-03-20' }, stream);
      expect(none.ripple).toBeUndefined();
      expect(events).toContainEqual({
        type: 'message',
        level: 'info',
        message: 'Ripple: no stored rows after 2025-03-20; nothing to recompute',
      });
    });

    test('a day whose source is empty but holds rows stops the backfill at its chunk (earlier chunks stay committed)', async () => {
      await reset(attempts);
      await runBackfill(t.session, config, { from: '2025-03-01', to: '2025-03-10' }, stream);
      // An upstream outage: the attempts of 2025-03-05 (New York) are gone.
      const outage = attempts.filter((a) => !(a.completed_at >= '2025-03-05T05:00' && a.completed_at < '2025-03-06T05:00'));
      await loadAttempts(t.session, outage);
      await t.session.query(sql`update features_topic_daily set correct = correct + 100 where date between '2025-03-01' and '2025-03-10'`);
      // In chunks of 4 days: 03-01..03-04 is written, 03-05..03-08 refused (the day's few attempts
      // are below the shrink guard's threshold, but a backfill refuses an emptied day whatever they are).
      const failing = runBackfill(t.session, config, { from: '2025-03-01', to: '2025-03-10', chunkDays: 4 }, stream);
      await expect(failing).rejects.toBeInstanceOf(RunFailedError);
      await expect(failing).rejects.toThrow(/returned no attempts for 2025-03-05, but features_topic_daily holds \d+ rows there/);
      const rows = await readFeatures(t.session);
      const truth = expected(outage, '2025-03-01', '2025-03-04');
      expect(byKey(rows.filter((r) => r.date < '2025-03-05'))).toEqual(byKey(truth)); // repaired, committed
      expect(rows.filter((r) => r.date >= '2025-03-05').every((r) => r.correct >= 100)).toBe(true); // untouched
      const outcome = await t.session.query<{ outcome: string; error: string }>(
        sql`select outcome, error from aggregate_features_runs where command = 'backfill' order by started_at desc limit 1`,
      );
      expect(outcome.rows[0]).toMatchObject({ outcome: 'failed', error: expect.stringMatching(/returned no attempts/) as unknown });

      // A deliberate wipe is allowed with allowEmptySource.
      await runBackfill(t.session, config, { from: '2025-03-01', to: '2025-03-10', allowEmptySource: true }, stream);
      expect(byKey(await readFeatures(t.session, { since: '2025-03-01', anchor: '2025-03-10' }))).toEqual(
        byKey(expected(outage, '2025-03-01', '2025-03-10')),
      );
    });
  });

  describe('refusals and the lock', () => {
    test('refuses a range that ends after today, one longer than the bound, and one that runs backwards', async () => {
      await reset(attempts);
      const today = (await t.session.query<{ d: string }>(sql`select (now() at time zone ${timezone})::date::text as d`)).rows[0]!.d;
      const tomorrow = addDays(today, 1);
      await expect(runBackfill(t.session, config, { from: today, to: tomorrow }, stream)).rejects.toThrow(
        new RegExp(`--to ${tomorrow} is in the future \\(today is ${today} in America/New_York\\)`),
      );
      await expect(runBackfill(t.session, config, { from: today, to: tomorrow }, stream)).rejects.toBeInstanceOf(ConfigError);
      const allowed = await runBackfill(t.session, config, { from: today, to: tomorrow, allowFuture: true }, stream);
      expect(allowed.combinations).toBe(0);
      await expect(runBackfill(t.session, config, { from: '2024-01-01', to: '2025-01-01' }, stream)).rejects.toThrow(
        /has 367 days, more than --max-days 366/,
      );
      await expect(runBackfill(t.session, config, { from: '2025-03-02', to: '2025-03-01' }, stream)).rejects.toThrow(
        /--from 2025-03-02 is after --to 2025-03-01/,
      );
      expect((await runBackfill(t.session, config, { from: '2024-01-01', to: '2025-01-01', maxDays: 400 }, stream)).window.days).toBe(367);
    });

    test.runIf(backend.name === 'postgres')('takes the writer lock of its shard: a held lock is exit 3, another shard runs', async () => {
      await reset(attempts);
      const other = await t.db.connect();
      try {
        // Shard 2/2 is running: the unsharded backfill (which overlaps it) is refused, shard 1/2 runs.
        const release = await acquireWriterLock(other, 2, 2);
        await expect(runBackfill(t.session, config, { from: '2025-03-01', to: '2025-03-02' }, stream)).rejects.toBeInstanceOf(
          LockHeldError,
        );
        await expect(
          runBackfill(t.session, config, { from: '2025-03-01', to: '2025-03-02', shard: { index: 2, count: 2 } }, stream),
        ).rejects.toBeInstanceOf(LockHeldError);
        expect((await readFeatures(t.session)).length).toBe(0);
        const shard = await runBackfill(t.session, config, { from: '2025-03-01', to: '2025-03-02', shard: { index: 1, count: 2 } }, stream);
        expect(shard.combinations).toBeGreaterThan(0);
        await release();
      } finally {
        other.release();
      }
    });
  });
});

describe('chunk size', () => {
  test('holds at most maxChunkAttempts attempts, between a week and a year', () => {
    expect(chunkDays(300_000)).toBe(Math.floor(maxChunkAttempts / 300_000));
    expect(chunkDays(300_000) * 300_000).toBeLessThanOrEqual(maxChunkAttempts);
    expect(chunkDays(10_000_000)).toBe(minChunkDays);
    expect(chunkDays(10)).toBe(maxChunkDays);
    expect(chunkDays(0)).toBe(maxChunkDays);
  });
});
