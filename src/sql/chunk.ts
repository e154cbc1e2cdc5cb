/**
 * The statements of a backfill's chunks (pipeline/range.ts). The chunk's size comes from the
 * planner's estimate (EXPLAIN reads nothing) and the session's sort memory, both asked of the
 * database, so it follows the server's settings.
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
