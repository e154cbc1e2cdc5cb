/**
 * Days written since the last ANALYZE are estimated at one row (no index of features_topic_daily
 * starts with `date`), and a write whose window is all such days was planned as if it held
 * nothing: a second backfill's upsert became a nested loop over the day's stored rows for each
 * computed row. Before a window is written, the job analyzes the table when most of the
 * window's written days (the source memory lists them) lie beyond the statistics. Checked on
 * both databases: when it analyzes and when not, and that the upsert then compares each
 * computed row with its stored one once, not with every stored row.
 */
import { describe, expect, test } from 'vitest';
import { plainServer } from '../src/database/backend.js';
import { refreshStatisticsFor } from '../src/pipeline/statistics.js';
import { sql } from '../src/sql/tag.js';
import { upsertComputed } from '../src/sql/write.js';
import { allBackends, withSession } from './support/backends.js';
import { prepareSchema } from './support/data.js';
import { planNodes, planOf, type PlanNode } from './support/plans.js';

const backends = await allBackends('statistics');

/** The nested loops whose inner side is a whole relation read again for each outer row. */
function rescannedPerRow(plan: PlanNode): PlanNode[] {
  return planNodes(plan).filter(
    (node) =>
      node['Node Type'] === 'Nested Loop' &&
      (node.Plans ?? []).some(
        (inner) => inner['Parent Relationship'] === 'Inner' && ['Materialize', 'Seq Scan'].includes(inner['Node Type']),
      ),
  );
}

const march = { since: '2025-03-01', anchor: '2025-03-01' };

describe.each(backends)('statistics before a write ($name)', (backend) => {
  test('analyzes when the written days of the window lie beyond the statistics, and only then', async () => {
    await withSession(backend, async (session) => {
      await prepareSchema(session);
      // 500 students × 4 topics a day: 36 days from January 1 (then analyzed), and March 1 (not
      // yet), as a backfill of one day finds its day after a first backfill.
      const fill = (first: string, days: number) =>
        session.query(sql`insert into features_topic_daily (user_id, topic_id, date, attempts, correct, hints)
          select 'u' || u, 't' || t, ${first}::date + d, 1, 1, 0
          from generate_series(1, 500) u, generate_series(1, 4) t, generate_series(0, ${days - 1}) d`);
      const remember = (first: string, days: number) =>
        session.query(sql`insert into aggregate_features_source_days
            (shard, date, first_attempts, first_at, highest_attempts, highest_at, last_attempts, last_at)
          select '1/1', ${first}::date + d, 2000, now(), 2000, now(), 2000, now() from generate_series(0, ${days - 1}) d`);
      await fill('2025-01-01', 36);
      await remember('2025-01-01', 36);
      await session.query(sql`analyze features_topic_daily`);
      await fill('2025-03-01', 1);
      await remember('2025-03-01', 1);

      // January is known to the statistics; April was never written (a first run): nothing to do.
      expect(await refreshStatisticsFor(session, { since: '2025-01-01', anchor: '2025-02-05' })).toBe(false);
      expect(await refreshStatisticsFor(session, { since: '2025-04-01', anchor: '2025-04-08' })).toBe(false);

      await session.query(sql`begin`);
      try {
        // A re-run of March that changes nothing: the computed rows are the stored ones.
        await session.query(sql`create temporary table agg_computed on commit drop as
          select user_id, topic_id, date, attempts, correct, avg_time_ms, rt_median, hints,
                 theta_estimate, theta_sd, improvement, last_seen_at
          from features_topic_daily where date between '2025-03-01' and '2025-03-08'`);
        await session.query(sql`analyze agg_computed`);
        const upsert = upsertComputed({
          runTimestamp: '2025-03-09T00:00:00Z',
          includeTheta: false,
          users: null,
          topic: null,
          date: null,
          staging: plainServer.staging,
          ...march,
        });
        // Planned on the old statistics, the day's stored rows are read in full for each computed
        // row (on the server; PGlite plans this small example with a hash anti join already).
        if (backend.name === 'postgres') expect(rescannedPerRow(await planOf(session, upsert))).not.toEqual([]);
        expect(await refreshStatisticsFor(session, march)).toBe(true);
        // Now known: the next window of March days is not analyzed again.
        expect(await refreshStatisticsFor(session, march)).toBe(false);
        // The stored rows are no longer read in full for each computed row.
        const rescanned = planNodes(await planOf(session, upsert)).filter(
          (node) =>
            node['Node Type'] === 'Nested Loop' &&
            (node.Plans ?? []).some(
              (inner) => inner['Parent Relationship'] === 'Inner' && ['Materialize', 'Seq Scan'].includes(inner['Node Type']),
            ),
        );
        expect(rescanned).toEqual([]);
        const written = (await session.query<{ inserted: number; updated: number }>(upsert)).rows[0]!;
        expect(written).toEqual({ inserted: 0, updated: 0 });
      } finally {
        await session.query(sql`rollback`);
      }
    });
  });
});
