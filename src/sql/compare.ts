/**
 * The comparison of a staged window with the rows stored for it, in one pass (a plain server
 * and PGlite): one full join of the staging table `computed` with the window's stored rows of
 * the shard keeps the keys a write changes (`compared`: new, changed or stale). The stale rows
 * to delete and the rows to upsert are then read from that small table, instead of reading
 * the stored rows once for each (three passes over the window's stored rows: 1.4 s for 332k
 * rows on a re-run that changes nothing, against 0.6 s; BENCHMARKS.md). A re-run whose source
 * did not change keeps no key and writes nothing. The unchanged keys are not kept: writing
 * them was a third of the comparison (0.27 s with them, 0.16 s without, for 332k unchanged
 * rows), and the shrink guard sums its days from the two tables directly (shrink.ts, 0.06 s)
 * instead of reading them back.
 */
import type { Shard } from '../work.js';
import { inDays, inShard } from './compute.js';
import { sql, type Sql } from './tag.js';

/** The days since..anchor of a shard: what the statements on stored rows are restricted to. */
export interface StoredRange {
  readonly since: string;
  readonly anchor: string;
  readonly shard: Shard;
}

/**
 * True when a stored row `f` differs from a computed row `c` in any value the job owns.
 * `includeTheta` (a bound boolean) says whether the theta columns are the job's: with theta
 * disabled they belong to whoever filled them and are neither compared nor written.
 */
export function rowDiffers(f: Sql, c: Sql, includeTheta: boolean): Sql {
  return sql`(${f}.attempts, ${f}.correct, ${f}.avg_time_ms, ${f}.rt_median, ${f}.hints, ${f}.improvement, ${f}.last_seen_at)
       is distinct from (${c}.attempts, ${c}.correct, ${c}.avg_time_ms, ${c}.rt_median, ${c}.hints, ${c}.improvement, ${c}.last_seen_at)
     or (${includeTheta}::boolean and (${f}.theta_estimate, ${f}.theta_sd) is distinct from (${c}.theta_estimate, ${c}.theta_sd))`;
}

/** The labels of `compared.change`: a key only computed, computed differently, only stored; null: equal. */
export const change = { new: 'n', changed: 'c', stale: 's' } as const;

/** Creates the temporary comparison table, dropped when the transaction ends. */
export function createCompared(compared: Sql): Sql {
  return sql`
create temporary table ${compared}
  (user_id text, topic_id text, date date, stored int, computed int, change text, failed boolean)
on commit drop`;
}

/**
 * The rows `c` of `computed` beside the stored rows `f` of the window and shard, one row per key
 * of either side (a full join on the key, which on Citus also joins on the distribution column,
 * so each shard compares its own rows).
 */
export function besideStored(computed: Sql, range: StoredRange): Sql {
  return sql`${computed} c
full join (select f.* from features_topic_daily f
           where ${inDays(sql`f.date`, range)}
             and ${inShard(sql`f.user_id`, range.shard)}) f
  on f.user_id = c.user_id and f.topic_id = c.topic_id and f.date = c.date`;
}

/**
 * Fills `compared` with one row per key a write changes, of the staged rows (`computed`) and of
 * the stored rows of the window and shard: the attempts stored and computed (null on the side
 * that lacks the key), the change (new, changed, stale), and whether the combination failed
 * to compute (`failed`, agg_failed's shape; undefined when none failed), whose stored row
 * stays as it was.
 */
export function compareWithStored(
  compared: Sql,
  computed: Sql,
  failed: Sql | undefined,
  range: StoredRange & { readonly includeTheta: boolean },
): Sql {
  const isFailed = failed
    ? sql`f.user_id is not null and exists (
        select 1 from ${failed} x
        where x.user_id = f.user_id and (x.topic_id = f.topic_id or x.topic_id = '*')
          and (x.date = f.date or x.date is null))`
    : sql`false`;
  return sql`
insert into ${compared} (user_id, topic_id, date, stored, computed, change, failed)
select user_id, topic_id, date, stored, computed, change, failed
from (
  select coalesce(c.user_id, f.user_id) as user_id, coalesce(c.topic_id, f.topic_id) as topic_id,
         coalesce(c.date, f.date) as date, f.attempts as stored, c.attempts as computed,
         case when f.user_id is null then ${change.new}
              when c.user_id is null then ${change.stale}
              when ${rowDiffers(sql`f`, sql`c`, range.includeTheta)} then ${change.changed}
         end as change,
         ${isFailed} as failed
  from ${besideStored(computed, range)}
) keys
where change is not null`;
}

/** What `compared` holds to write: the stale rows to delete (not failed) and the rows to insert or update. */
export function comparedCounts(compared: Sql): Sql {
  return sql`
select count(*) filter (where change = ${change.stale} and not failed)::float8 as stale,
       count(*) filter (where change in (${change.new}, ${change.changed}))::float8 as changes
from ${compared}`;
}

/** Deletes the stored rows `compared` labels stale (and that did not fail); returns how many. */
export function deleteComparedStale(compared: Sql, range: StoredRange): Sql {
  return sql`
with deleted as (
  delete from features_topic_daily f
  using ${compared} x
  where x.change = ${change.stale} and not x.failed
    and f.user_id = x.user_id and f.topic_id = x.topic_id and f.date = x.date
    and ${inDays(sql`f.date`, range)}
  returning 1
)
select count(*)::int as deleted from deleted`;
}

/** True when `compared` labels the staged row `c` new or changed: a row the upsert writes. */
export function labelledForWrite(compared: Sql, c: Sql): Sql {
  return sql`exists (select 1 from ${compared} x
                    where x.user_id = ${c}.user_id and x.topic_id = ${c}.topic_id and x.date = ${c}.date
                      and x.change in (${change.new}, ${change.changed}))`;
}

/** Gives the planner statistics of `compared` before the rows it labels are deleted or written. */
export function analyzeCompared(compared: Sql): Sql {
  return sql`analyze ${compared}`;
}
