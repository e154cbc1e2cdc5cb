/**
 * The statements that match computed rows with stored ones read only the window's stored rows,
 * whatever features_topic_daily holds before and after it. Joined on the key alone, PostgreSQL
 * may build a hash of the whole table to probe it: with 4.5M rows stored, a re-run's upsert
 * took 3.0 s instead of 0.58 s and the dry run 10.4 s instead of 8.5 s (BENCHMARKS.md). Checked
 * on the plans, on both databases, with hash joins forced (the join PostgreSQL picks once the
 * table is large next to the window): every read of the table is bounded by the window's days.
 */
import { describe, expect, test } from 'vitest';
import type { Session } from '../src/database/db.js';
import { plainServer } from '../src/database/backend.js';
import { rippleImprovement } from '../src/sql/backfill.js';
import { compareWithStored, createCompared, deleteComparedStale } from '../src/sql/compare.js';
import { raw, type Sql, sql } from '../src/sql/tag.js';
import { deleteStale, dryRunCounts, upsertComputed } from '../src/sql/write.js';
import { unsharded, workOf } from '../src/work.js';
import { allBackends, withSession } from './support/backends.js';
import { prepareSchema } from './support/data.js';
import { planNodes, planOf } from './support/plans.js';

const backends = await allBackends('window-bounds');

const window = { since: '2025-03-01', anchor: '2025-03-08' };
const scanTypes = new Set(['Seq Scan', 'Index Scan', 'Index Only Scan', 'Bitmap Heap Scan']);

/** The scans of features_topic_daily in the plan of `statement` that do not bound its date by the window. */
async function unboundedReads(session: Session, statement: Sql): Promise<string[]> {
  const plan = await planOf(session, statement);
  return planNodes(plan)
    .filter((node) => scanTypes.has(node['Node Type']) && node['Relation Name'] === 'features_topic_daily')
    .filter((scan) => {
      const conditions = planNodes(scan).flatMap((n) => [n.Filter, n['Index Cond'], n['Recheck Cond']]);
      return !conditions.some((c) => c?.includes(`date >= '${window.since}'::date`) && c.includes(`date <= '${window.anchor}'::date`));
    })
    .map((scan) => `${scan['Node Type']} ${JSON.stringify([scan.Filter, scan['Index Cond']])}`);
}

describe.each(backends)('statements on stored rows read only the window ($name)', (backend) => {
  test('the upsert, the dry run, the comparison, the stale-row deletions and the ripple bound their reads of features_topic_daily by the window', async () => {
    await withSession(backend, async (session) => {
      await prepareSchema(session);
      await session.query(sql`truncate features_topic_daily`);
      // Sixty days stored, eight of them the window's.
      await session.query(
        sql`insert into features_topic_daily (user_id, topic_id, date, attempts, correct, hints)
         select 'u' || u, 't' || t, '2025-01-15'::date + d, 1, 1, 0
         from generate_series(1, 100) u, generate_series(1, 2) t, generate_series(0, 59) d`,
      );
      await session.query(sql`analyze features_topic_daily`);
      const work = workOf({ source: raw('attempt'), timezone: 'UTC', theta: undefined, backend: plainServer }, window, unsharded);
      await session.query(sql`begin`);
      try {
        await session.query(sql`set local enable_nestloop = off`);
        await session.query(sql`set local enable_mergejoin = off`);
        await session.query(
          raw(`create temporary table agg_computed on commit drop as
           select user_id, topic_id, date, attempts, correct, avg_time_ms, rt_median, hints,
                  last_seen_at, theta_estimate, theta_sd, improvement
           from features_topic_daily where date between '${window.since}' and '${window.anchor}'`),
        );
        await session.query(sql`analyze agg_computed`);
        const scope = {
          runTimestamp: '2025-03-09T02:00:00Z',
          includeTheta: false,
          users: null,
          topic: null,
          date: null,
          staging: plainServer.staging,
          ...window,
        };
        expect(await unboundedReads(session, upsertComputed(scope)), 'upsert').toEqual([]);
        expect(await unboundedReads(session, dryRunCounts(work)), 'dry run').toEqual([]);
        await session.query(sql`create temporary table agg_failed (user_id text, topic_id text, date date) on commit drop`);
        expect(await unboundedReads(session, deleteStale(work)), 'stale-row deletion').toEqual([]);
        expect(await unboundedReads(session, rippleImprovement(work, scope.runTimestamp)), 'ripple').toEqual([]);
        const compared = raw('agg_compared');
        await session.query(createCompared(compared));
        const comparison = compareWithStored(compared, raw('agg_computed'), raw('agg_failed'), { ...work, includeTheta: false });
        expect(await unboundedReads(session, comparison), 'comparison with the stored rows').toEqual([]);
        expect(await unboundedReads(session, deleteComparedStale(compared, work)), 'stale-row deletion after it').toEqual([]);
      } finally {
        await session.query(sql`rollback`);
      }
    });
  });
});
