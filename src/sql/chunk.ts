/**
 * The statements of a backfill's chunks (pipeline/range.ts). The chunk's size comes from the
 * planner's estimate (EXPLAIN reads nothing) and the session's sort memory, both asked of the
 * database, so it follows the server's settings. The target's statistics are watched through
 * pg_class.reltuples, the row count the planner itself believes.
 */
import { sql, type Sql } from './tag.js';

/** The planner's estimate of the attempts of `source` from `startsAt` to `endsAt` (epoch seconds). */
export function estimateSourceRows(source: Sql, range: { startsAt: number; endsAt: number }): Sql {
  return sql`explain (format json) select 1 from ${source}
        where completed_at >= to_timestamp(${range.startsAt}::float8) and completed_at < to_timestamp(${range.endsAt}::float8)`;
}

/** The bytes a sort may use: work_mem times the processes of a parallel sort (at most 2 workers and the leader). */
export const sortMemory = sql`select (pg_size_bytes(current_setting('work_mem'))
             * (1 + least(current_setting('max_parallel_workers_per_gather')::int, 2)))::text as bytes`;

/** Indexes the range staging table by day: the chunk's days are read from it one by one. */
export function indexRangeByDay(range: Sql): Sql {
  return sql`create index on ${range} (date)`;
}

/** The rows of features_topic_daily as the planner's statistics know them. */
export const knownTargetRows = sql`select greatest(reltuples, 0)::float8 as rows from pg_class where oid = to_regclass('features_topic_daily')`;

/** Brings the statistics of features_topic_daily up to date. */
export const analyzeTarget = sql`analyze features_topic_daily`;
