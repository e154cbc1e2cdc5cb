/**
 * The stale-row deletion does not depend on what the planner believes about
 * features_topic_daily. Until autovacuum analyzes the table again its statistics end before
 * the newest days, so the window's stored rows are estimated at about one; the anti join the
 * deletion used to be was then planned as a scan of every computed row for each stored row,
 * and a re-run of 441k rows did not finish in 10 minutes. Checked here on the plan, on both databases: the
 * deletion never scans the computed rows once per stored row, and it deletes exactly the
 * stale rows.
 */
import { describe, expect, test } from 'vitest';
import { plainServer } from '../src/database/backend.js';
import { raw, sql } from '../src/sql/tag.js';
import { deleteStale, dryRunCounts } from '../src/sql/write.js';
import { unsharded, workOf } from '../src/work.js';
import { allBackends, withSession } from './support/backends.js';
import { prepareSchema } from './support/data.js';
import { planOf, type PlanNode } from './support/plans.js';

const backends = await allBackends('stale-rows');

/** The relations and CTEs read in full as the inner side of a nested loop: once per outer row. */
function rescannedUnderNestedLoop(node: PlanNode): string[] {
  const children = node.Plans ?? [];
  const inner = children.filter(
    (c) => c['Parent Relationship'] === 'Inner' && (c['Node Type'] === 'Seq Scan' || c['Node Type'] === 'CTE Scan'),
  );
  const here = node['Node Type'] === 'Nested Loop' ? inner.map((c) => c['Relation Name'] ?? c['CTE Name'] ?? '?') : [];
  return [...here, ...children.flatMap(rescannedUnderNestedLoop)];
}

const range = { since: '2025-03-01', anchor: '2025-03-08', shard: unsharded, backend: plainServer };

describe.each(backends)('stale-row deletion ($name)', (backend) => {
  test('with statistics that end before the window: no computed-row scan per stored row, exactly the stale rows deleted', async () => {
    await withSession(backend, async (session) => {
      await prepareSchema(session);
      // Statistics taken when the table held January only: every day of the March window lies
      // beyond them, as the newest days do every night until autovacuum analyzes the table again
      // (for a table holding a year, after about a tenth of a year). 8 days × 500 students × 2
      // topics stored in each; the computation keeps all but topic t2 of every tenth student.
      const fill = (first: string) =>
        session.query(
          sql`insert into features_topic_daily (user_id, topic_id, date, attempts, correct, hints)
           select 'u' || u, 't' || t, ${first}::date + d, 1, 1, 0
           from generate_series(1, 500) u, generate_series(1, 2) t, generate_series(0, 7) d`,
        );
      await fill('2025-01-01');
      await session.query(sql`analyze features_topic_daily`);
      await fill('2025-03-01');
      await session.query(sql`begin`);
      try {
        await session.query(
          sql`create temporary table agg_computed on commit drop as
           select user_id, topic_id, date from features_topic_daily
           where date >= '2025-03-01' and not (topic_id = 't2' and user_id like '%0')`,
        );
        await session.query(sql`analyze agg_computed`);
        await session.query(sql`create temporary table agg_failed (user_id text, topic_id text, date date) on commit drop`);
        const statement = deleteStale(range);
        expect(rescannedUnderNestedLoop(await planOf(session, statement))).toEqual([]);
        const deleted = (await session.query<{ deleted: number }>(statement)).rows[0]!.deleted;
        expect(deleted).toBe(50 * 8);
        const left = await session.query<{ n: number }>(
          sql`select count(*)::int as n from features_topic_daily where date >= '2025-03-01' and topic_id = 't2' and user_id like '%0'`,
        );
        expect(left.rows[0]!.n).toBe(0);
      } finally {
        await session.query(sql`rollback`);
      }
    });
  });

  test('the dry run counts exactly those stale rows, without rescanning the computation per stored row', async () => {
    await withSession(backend, async (session) => {
      // The March rows above are stored; the source has attempts for half of the students.
      await session.query(
        sql`insert into attempt (student_id, topic_id, completed_at, correct, response_time_ms, hint_used)
         select 'u' || u, 't' || t, ('2025-03-01'::date + d)::timestamp at time zone 'UTC' + interval '9 hours', true, 1000, false
         from generate_series(1, 250) u, generate_series(1, 2) t, generate_series(0, 7) d`,
      );
      const work = workOf({ source: raw('attempt'), timezone: 'UTC', theta: undefined, backend: plainServer }, range, unsharded);
      const statement = dryRunCounts(work);
      expect(rescannedUnderNestedLoop(await planOf(session, statement))).toEqual([]);
      const counts = (await session.query<{ deleted: number }>(statement)).rows[0]!;
      expect(counts.deleted).toBe(250 * 2 * 8);
    });
  });
});
