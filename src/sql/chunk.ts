/**
 * The statements of a backfill's chunks (pipeline/range.ts). The chunk's size comes from the
 * planner's estimate of the range's attempts (EXPLAIN reads nothing).
 */
import { sql, type Sql } from './tag.js';

/** The planner's estimate of the attempts of `source` from `startsAt` to `endsAt` (epoch seconds). */
export function estimateSourceRows(source: Sql, range: { startsAt: number; endsAt: number }): Sql {
  return sql`explain (format json) select 1 from ${source}
        where completed_at >= to_timestamp(${range.startsAt}::float8) and completed_at < to_timestamp(${range.endsAt}::float8)`;
}
