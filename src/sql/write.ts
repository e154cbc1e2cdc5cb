/**
 * The statements that write a computed window, and the dry run's comparison. They read the
 * staging table (staging.ts: the temporary `agg_computed`, or on Citus its distributed
 * counterpart; one row per combination, columns of the output table) that the run fills from
 * `computeSelect` inside its transaction.
 */
import type { ThetaPlan, Work } from '../work.js';
import { computeSelect, daysOf, inDays, inShard } from './compute.js';
import { shrinkDays } from './shrink.js';
import type { Staging } from '../work.js';
import { besideStored, labelledForWrite, rowDiffers, type StoredRange } from './compare.js';
import { sql, type Sql } from './tag.js';
import { skippedEstimatesSelect } from './theta.js';

export type { DryRunRow } from '../work.js';
export { rowDiffers, type StoredRange } from './compare.js';

/** With theta enabled: the invalid estimates skipped for the staged combinations (see skippedEstimatesSelect). */
export function countSkippedEstimates(plan: ThetaPlan, window: Pick<Work, 'anchor' | 'timezone' | 'backend'>): Sql {
  return skippedEstimatesSelect(window.backend.staging.computed, plan, window);
}

/**
 * Deletes the window's rows whose combination has no attempts any more, only in this
 * run's shard. The stale keys are found by EXCEPT, which PostgreSQL computes by hashing or
 * sorting both sides once whatever it believes about their sizes. The anti join it replaced
 * (`not exists` per stored row) was planned, when features_topic_daily had no statistics yet
 * (written since it was created or truncated, before autovacuum analyzed it), as a scan of
 * every computed row for each stored row: a re-run right after a first run of 441k rows did
 * not finish in 10 minutes. As EXCEPT: 0.9 s then, and 0.45 s (0.4 s before) with statistics.
 * The DELETE, too, names the window's days, so it never hashes the whole table to find them.
 */
export function deleteStale(range: StoredRange & Pick<Work, 'backend'>): Sql {
  const staging = range.backend.staging;
  return sql`
with stale as (
  select f.user_id, f.topic_id, f.date
  from features_topic_daily f
  where ${inDays(sql`f.date`, range)}
    and ${inShard(sql`f.user_id`, range.shard)}
  except
  select c.user_id, c.topic_id, c.date
  from ${staging.computed} c
),
deleted as (
  delete from features_topic_daily f
  using stale s
  where f.user_id = s.user_id and f.topic_id = s.topic_id and f.date = s.date
    and ${inDays(sql`f.date`, range)}
    and not exists (select 1 from ${staging.failed} x
                    where x.user_id = f.user_id and (x.topic_id = f.topic_id or x.topic_id = '*')
                      and (x.date = f.date or x.date is null))
  returning 1
)
select count(*)::int as deleted from deleted`;
}

/** Rows stored in the window for this shard. */
export function countStored(range: StoredRange): Sql {
  return sql`
select count(*)::int as stored
from features_topic_daily f
where ${inDays(sql`f.date`, range)}
  and ${inShard(sql`f.user_id`, range.shard)}`;
}

/** Which computed rows an upsert writes: all, some students, or one (topic, date) of them. */
export interface UpsertScope {
  /** computed_at of every row written: the run's timestamp. */
  readonly runTimestamp: string;
  /** Whether the theta columns are the job's (theta enabled). */
  readonly includeTheta: boolean;
  /** Only these students; null: every one. */
  readonly users: readonly string[] | null;
  /** Only this topic on `date`; null: every one. */
  readonly topic: string | null;
  readonly date: string | null;
  /** The staging tables the rows are read from (staging.ts). */
  readonly staging: Staging;
  /** The window's first and last day: every staged row's date lies between them. */
  readonly since: string;
  readonly anchor: string;
  /**
   * The comparison table (compare.ts) when the window was compared with its stored rows: only
   * the rows it labels new or changed are written. Undefined (Citus): the stored rows are read.
   */
  readonly compared?: Sql | undefined;
}

/**
 * The columns an INSERT into features_topic_daily fills, and the staged rows `c` that fill
 * them, stamped with the run's timestamp.
 */
function stagedRows(scope: Pick<UpsertScope, 'runTimestamp' | 'staging'>): Sql {
  return sql`(user_id, topic_id, date, attempts, correct, avg_time_ms, rt_median, hints,
   theta_estimate, theta_sd, improvement, last_seen_at, computed_at)
  select c.user_id, c.topic_id, c.date, c.attempts, c.correct, c.avg_time_ms, c.rt_median, c.hints,
         c.theta_estimate, c.theta_sd, c.improvement, c.last_seen_at, ${scope.runTimestamp}::timestamptz
  from ${scope.staging.computed} c`;
}

/** True when no stored row equals the staged row `c` (an anti join over the window's stored rows). */
function unlessStoredEqual(scope: UpsertScope): Sql {
  return sql`not exists (select 1 from features_topic_daily s
                    where s.user_id = c.user_id and s.topic_id = c.topic_id and s.date = c.date
                      and ${inDays(sql`s.date`, scope)}
                      and not (${rowDiffers(sql`s`, sql`c`, scope.includeTheta)}))`;
}

/**
 * Inserts new combinations and updates changed ones; a row whose values are all equal is not
 * touched, so computed_at says when its values last changed. Unchanged rows are left out
 * before the INSERT (NOT EXISTS an equal stored row), not only by ON CONFLICT's WHERE, which
 * PostgreSQL evaluates after locking the conflicting row: for a re-run that changes nothing
 * (222k rows at 10M) 0.2 s instead of 0.7–1.2 s, and 0.9 s instead of 1.2 s when the table holds
 * a year. (A LEFT JOIN instead of NOT EXISTS was planned as a hash join over the whole table:
 * 6 s with a year stored.) The anti join names the window's days, which every staged row
 * lies in: without them PostgreSQL may hash the whole table to probe it (4.5M stored rows for a
 * window of 222k: 3.0 s, against 0.58 s with them). Where the window was compared with its
 * stored rows already (`compared`, compare.ts), the rows it labels new or changed are taken
 * instead, and the stored rows are not read again. ON CONFLICT stays for rows that appear in
 * between.
 * The run's timestamp is a parameter, not now(): the same value for every row, and allowed on
 * Citus. The scope narrows it to some students, or one (topic, date) of them, when a row fails.
 */
export function upsertComputed(scope: UpsertScope): Sql {
  const { includeTheta: theta, users, topic, date } = scope;
  return sql`
with upserted as (
  insert into features_topic_daily as f
  ${stagedRows(scope)}
  where (${users}::text[] is null or c.user_id = any(${users}::text[]))
    and (${topic}::text is null or (c.topic_id = ${topic}::text and c.date = ${date}::date))
    and ${scope.compared ? labelledForWrite(scope.compared, sql`c`) : unlessStoredEqual(scope)}
  on conflict (user_id, topic_id, date) do update set
    attempts       = excluded.attempts,
    correct        = excluded.correct,
    avg_time_ms    = excluded.avg_time_ms,
    rt_median      = excluded.rt_median,
    hints          = excluded.hints,
    improvement    = excluded.improvement,
    last_seen_at   = excluded.last_seen_at,
    theta_estimate = case when ${theta}::boolean then excluded.theta_estimate else f.theta_estimate end,
    theta_sd       = case when ${theta}::boolean then excluded.theta_sd else f.theta_sd end,
    computed_at    = excluded.computed_at
  where ${rowDiffers(sql`f`, sql`excluded`, theta)}
  returning (xmax = 0) as inserted
)
select count(*) filter (where inserted)::int     as inserted,
       count(*) filter (where not inserted)::int as updated
from upserted`;
}

/**
 * Inserts every staged row, for a window that held no stored rows of this shard when the
 * shrink guard looked (a first run, a chunk of a backfill into an empty range): each computed
 * row is then new, so a plain INSERT does what upsertComputed would, without its anti join and
 * ON CONFLICT's speculative insertion (441k rows into an empty table: 1.8 s instead of 2.9 s;
 * BENCHMARKS.md). Should a row appear in between (a writer the lock does not exclude, such as a
 * run of another shard count), the unique violation rolls this back and the upsert runs
 * instead (upsert.ts). Rows staged in the order of the pair hash (`hashOrdered`, compute.ts) are
 * inserted in the order of the primary key, which its index takes faster.
 */
export function insertAllComputed(scope: Pick<UpsertScope, 'runTimestamp' | 'staging'> & { readonly hashOrdered: boolean }): Sql {
  return sql`
insert into features_topic_daily
${stagedRows(scope)}
${scope.hashOrdered ? sql`order by c.user_id, c.topic_id, c.date` : sql``}`;
}

/**
 * The dry run in one read-only SELECT (no temporary table, so it also works in a read-only
 * transaction or on a replica): what a run would insert, update, leave and delete, and with
 * theta the invalid estimates it would skip. The rows it would delete are counted by EXCEPT,
 * as deleteStale finds them, for the same reason. The stored rows it compares are joined
 * within the window's days, as in upsertComputed (10M attempts, 4.5M rows stored: 10.4 s
 * without those bounds, 8.5 s with them).
 */
export function dryRunCounts(work: Work): Sql {
  const c = sql`c`;
  const skipped = work.theta
    ? sql`skipped as (${skippedEstimatesSelect(c, work.theta, work)}),`
    : sql`skipped as (select null::int as student_topic_theta, null::int as mirt_ability),`;
  const inThisShard = inShard(sql`f.user_id`, work.shard);
  return sql`
with c as (${computeSelect(work)}),
${skipped}
compared as (
  select f.user_id is null as is_new, ${rowDiffers(sql`f`, c, work.theta !== undefined)} as differs
  from c
  left join features_topic_daily f
    on f.user_id = c.user_id and f.topic_id = c.topic_id and f.date = c.date
   and ${inDays(sql`f.date`, work)}
)
select count(*)::int                                          as combinations,
       count(*) filter (where is_new)::int                    as inserted,
       count(*) filter (where not is_new and differs)::int    as updated,
       count(*) filter (where not is_new and not differs)::int as unchanged,
       (select count(*)::int
        from (select f.user_id, f.topic_id, f.date
              from features_topic_daily f
              where ${inDays(sql`f.date`, work)}
                and ${inThisShard}
              except
              select c.user_id, c.topic_id, c.date from c) stale
       ) as deleted,
       (select student_topic_theta from skipped) as skipped_student_topic_theta,
       (select mirt_ability from skipped) as skipped_mirt_ability,
       (${countStored(work)}) as stored_rows,
       (select coalesce(json_agg(json_build_object('date', d.date, 'rows', d.rows, 'stored', d.stored, 'current', d.current) order by d.date), '[]')
        from (${shrinkDays(c, undefined, work)}) d) as days
from compared`;
}

/**
 * On Citus: the computed window `c` beside the stored rows of the window and shard `f`, one
 * row per combination of either, joined on the distribution column, so each shard compares its
 * own rows: the comparison of the dry run and of verify.
 */
export function computedBesideStored(work: Work): Sql {
  return besideStored(sql`(${computeSelect(work)})`, work);
}

/**
 * dryRunCounts on Citus, without the skipped estimates (dryRunSkipped): one full join per
 * shard, grouped by day so that the shrink guard's days come from the same pass. Each shard
 * returns one row per day and the coordinator adds them up: the computed window never leaves
 * the workers. (dryRunCounts reads its CTE `c` several times; Citus would compute it once and
 * pull all of it to the coordinator.)
 */
export function dryRunCountsDistributed(work: Work): Sql {
  const differs = rowDiffers(sql`f`, sql`c`, work.theta !== undefined);
  return sql`
with per_day as (
  select coalesce(c.date, f.date) as date,
         count(c.user_id) as combinations,
         count(*) filter (where f.user_id is null) as inserted,
         count(*) filter (where c.user_id is not null and f.user_id is not null and (${differs})) as updated,
         count(*) filter (where c.user_id is not null and f.user_id is not null and not (${differs})) as unchanged,
         count(*) filter (where c.user_id is null) as deleted,
         count(f.user_id) as stored_rows,
         sum(f.attempts) as stored,
         sum(c.attempts) as current
  from ${computedBesideStored(work)}
  group by 1
),
days as (
  ${daysOf(work)}
)
select coalesce(sum(combinations), 0)::int as combinations,
       coalesce(sum(inserted), 0)::int     as inserted,
       coalesce(sum(updated), 0)::int      as updated,
       coalesce(sum(unchanged), 0)::int    as unchanged,
       coalesce(sum(deleted), 0)::int      as deleted,
       null::int as skipped_student_topic_theta,
       null::int as skipped_mirt_ability,
       coalesce(sum(stored_rows), 0)::int  as stored_rows,
       json_agg(json_build_object('date', d.date, 'rows', coalesce(stored_rows, 0)::float8, 'stored', coalesce(stored, 0)::float8,
                                  'current', coalesce(current, 0)::float8) order by d.date) as days
from days d
left join per_day p on p.date = d.date`;
}

/** With theta, on Citus: the invalid estimates a run of the window would skip (see skippedEstimatesSelect). */
export function dryRunSkipped(work: Work & { theta: ThetaPlan }): Sql {
  return skippedEstimatesSelect(sql`(${computeSelect(work)})`, work.theta, work);
}
