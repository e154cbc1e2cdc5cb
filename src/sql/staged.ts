/**
 * The statements over a window's staged rows inside its write transaction (staging.ts names
 * the tables). The staging tables are passed in as fragments, so one text serves the
 * temporary tables and the distributed ones. The debug rows are read through a cursor, a
 * thousand at a time, so that a large window's rows are never all in memory at once.
 */
import { sql, type Sql } from './tag.js';

/** Stages the combinations that failed: one array per column, a NULL date for a failure over several days. */
export function insertFailedCombinations(
  failed: Sql,
  combinations: { users: (string | null)[]; topics: (string | null)[]; dates: (string | null)[] },
): Sql {
  return sql`insert into ${failed} select * from unnest(${combinations.users}::text[], ${combinations.topics}::text[], ${combinations.dates}::date[])`;
}

/** Statistics for a staging table, so the statements that follow are planned for its size. */
export function analyzeStaged(table: Sql): Sql {
  return sql`analyze ${table}`;
}

/** The rows of a staging table. */
export function countStaged(table: Sql): Sql {
  return sql`select count(*)::int as n from ${table}`;
}

/** Opens the cursor debug_rows over the computed combinations, in key order. */
export function declareDebugRows(computed: Sql): Sql {
  return sql`declare debug_rows no scroll cursor for
     select user_id, topic_id, date::text as date, attempts, correct, avg_time_ms, rt_median, hints,
            theta_estimate, theta_sd, improvement, last_seen_at
     from ${computed} order by user_id, topic_id, date`;
}

/** The next thousand rows of debug_rows. */
export const fetchDebugRows = sql`fetch 1000 from debug_rows`;

/** Closes debug_rows. */
export const closeDebugRows = sql`close debug_rows`;
