/**
 * Whether the planner's statistics of features_topic_daily know the days a write reads.
 *
 * Every statement on stored rows names the window's days (inDays), and PostgreSQL estimates
 * how many rows those days hold from the `date` column's statistics. A day written after the
 * last ANALYZE lies beyond them, and no index of the table starts with `date` (from which the
 * planner could read the true end of the range), so such a day is estimated at one row. A
 * window whose written days are all unknown to the statistics is then planned as if it held
 * nothing: the upsert's anti join became a nested loop over every stored row for each computed
 * one (a second 36-day backfill of 498k rows: 10–16 s a day instead of a fraction of a second).
 * Autovacuum analyzes the table only after a tenth of it changed, which a nightly run of a
 * year-long table reaches after about five weeks.
 *
 * The days written are known without reading the table: the source memory lists every day the
 * job wrote (per shard). The statistics' last day is the largest of the column's most common
 * values (a few dozen days are all listed there) and its histogram bounds.
 */
import { sql, type Sql } from './tag.js';

/**
 * One row: `written`, the days of since..anchor the job has written (any shard), and
 * `unknown`, how many of them lie after the last day the statistics of features_topic_daily
 * know (all of them when there are none).
 */
export function writtenDaysUnknownToStatistics(range: { readonly since: string; readonly anchor: string }): Sql {
  return sql`
with known as (
  select max(d) as last_day
  from pg_stats s
  cross join lateral unnest(coalesce(s.most_common_vals::text::date[], '{}'::date[])
                            || coalesce(s.histogram_bounds::text::date[], '{}'::date[])) d
  where s.attname = 'date'
    and (s.schemaname, s.tablename) = (select n.nspname, c.relname
                                       from pg_class c join pg_namespace n on n.oid = c.relnamespace
                                       where c.oid = to_regclass('features_topic_daily'))
),
written as (
  select distinct m.date
  from aggregate_features_source_days m
  where m.date between ${range.since}::date and ${range.anchor}::date
)
select count(*)::int as written,
       count(*) filter (where k.last_day is null or w.date > k.last_day)::int as unknown
from written w cross join known k`;
}

/** The rows of features_topic_daily as the planner's statistics know them (pg_class.reltuples). */
export const knownTargetRows = sql`select greatest(reltuples, 0)::float8 as rows from pg_class where oid = to_regclass('features_topic_daily')`;

/**
 * Refreshes the planner's statistics of features_topic_daily (a sample of at most 30,000 rows).
 * SKIP_LOCKED: when another session holds a lock that ANALYZE would wait for (a CREATE INDEX,
 * an explicit LOCK, another run's ANALYZE), it is skipped rather than waited for, which could
 * also end the run at AGG_LOCK_TIMEOUT_MS; the run then plans on the statistics it has.
 */
export const analyzeTarget = sql`analyze (skip_locked) features_topic_daily`;
