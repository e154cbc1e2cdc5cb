/**
 * The statements of `report`: the checks an operator runs by hand after a night, as one
 * command. All read-only.
 */
import { raw, sql, type Sql } from './tag.js';

/** The days from anchor − days + 1 to anchor. */
export interface Period {
  readonly anchor: string;
  readonly days: number;
}

/**
 * Coverage per day for the period's days (newest first): rows, distinct users and
 * topics, attempts, and rows with a theta estimate. Days without rows are listed with zeros,
 * so a gap shows. A range scan on `date` per day through the primary key is not possible (its
 * first column is user_id), so this reads the period's rows once.
 */
export function coveragePerDay(period: Period): Sql {
  const { anchor, days } = period;
  return sql`
with days as (
  select (${anchor}::date - i) as date from generate_series(0, ${days}::int - 1) i
),
stored as (
  select f.date,
         count(*)::int                  as rows,
         count(distinct f.user_id)::int as users,
         count(distinct f.topic_id)::int as topics,
         sum(f.attempts)::float8        as attempts,
         count(f.theta_estimate)::int   as theta_rows,
         max(f.computed_at)             as last_computed_at
  from features_topic_daily f
  where f.date between ${anchor}::date - (${days}::int - 1) and ${anchor}::date
  group by f.date
)
select d.date::text as date,
       coalesce(s.users, 0)      as users,
       coalesce(s.rows, 0)       as rows,
       coalesce(s.topics, 0)     as topics,
       coalesce(s.attempts, 0)   as attempts,
       coalesce(s.theta_rows, 0) as theta_rows,
       s.last_computed_at::text  as last_computed_at
from days d
left join stored s on s.date = d.date
order by d.date desc`;
}

/**
 * The `limit` most recently changed rows of the period (computed_at says when a row's values
 * last changed), newest first.
 */
export function recentRows(period: Period, limit: number): Sql {
  return sql`
select user_id, topic_id, date::text as date, attempts, correct, avg_time_ms, rt_median, hints,
       theta_estimate::text as theta_estimate, theta_sd::text as theta_sd, improvement::text as improvement,
       last_seen_at::text as last_seen_at, computed_at::text as computed_at
from features_topic_daily
where date between ${period.anchor}::date - (${period.days}::int - 1) and ${period.anchor}::date
order by computed_at desc, date desc, user_id collate "C", topic_id collate "C"
limit ${limit}::int`;
}

/** The newest day that holds rows, or NULL for an empty table (where a default report should look). */
export const latestDataDay = sql`select max(date)::text as day from features_topic_daily`;

/** The CTEs `current_layout` and `shards`: the shards of the newest nightly run's shard count (an earlier layout's are ignored). */
export const currentShards = `current_layout as (
  select split_part(shard, '/', 2) as count
  from aggregate_features_runs where command = 'run'
  order by started_at desc limit 1
),
shards as (
  select distinct r.shard from aggregate_features_runs r, current_layout c
  where r.command in ('run', 'backfill') and split_part(r.shard, '/', 2) = c.count
)`;

/**
 * The run log's health, one row per shard of the current shard count (the count of the newest
 * nightly run; shards of an earlier layout are ignored): the last successful nightly run (its
 * anchor, when it finished, hours since) and the newest writing run (run or backfill) with its
 * outcome. Ages are measured by the database's clock, as the run log's timestamps are.
 */
export const runHealth = sql`
with ${raw(currentShards)}
select s.shard,
       ok.anchor::text as success_anchor, ok.finished_at::text as success_finished_at,
       round((extract(epoch from (now() - ok.finished_at)) / 3600)::numeric, 1)::float8 as success_age_hours,
       last.run_id, last.command, last.outcome, last.failed, last.error,
       last.anchor::text as last_anchor, last.started_at::text as last_started_at,
       round((extract(epoch from (now() - last.started_at)) / 3600)::numeric, 1)::float8 as last_age_hours
from shards s
left join lateral (
  select anchor, finished_at from aggregate_features_runs
  where shard = s.shard and command = 'run' and outcome = 'success'
  order by finished_at desc limit 1
) ok on true
left join lateral (
  select run_id, command, outcome, failed, error, anchor, started_at from aggregate_features_runs
  where shard = s.shard and command in ('run', 'backfill')
  order by started_at desc limit 1
) last on true
order by s.shard`;

/** The newest verify recorded in the run log, with hours since it finished. */
export const lastVerify = sql`
select run_id, since::text as since, anchor::text as anchor, outcome, failed, error,
       finished_at::text as finished_at,
       round((extract(epoch from (now() - finished_at)) / 3600)::numeric, 1)::float8 as age_hours
from aggregate_features_runs
where command = 'verify' and finished_at is not null
order by finished_at desc
limit 1`;

/**
 * How many rows of the period have an improvement in each of 20 bins
 * of width 0.1 from −1 to 1 (bin 1 is [−1, −0.9), bin 20 is [0.9, 1]), and how many have none.
 */
export function improvementHistogram(period: Period): Sql {
  return sql`
-- least() ignores NULLs, so a NULL improvement is kept NULL explicitly.
select case when improvement is not null then least(width_bucket(improvement, -1, 1, 20), 20) end as bin, count(*)::int as rows
from features_topic_daily
where date between ${period.anchor}::date - (${period.days}::int - 1) and ${period.anchor}::date
group by 1
order by 1 nulls first`;
}

/** The `limit` latest runs of the run log, newest first. */
export function lastRuns(limit: number): Sql {
  return sql`
select run_id, command, shard, since::text as since, anchor::text as anchor, widened_from::text as widened_from,
       started_at::text as started_at,
       round(extract(epoch from (finished_at - started_at))::numeric, 1)::float8 as duration_s,
       outcome, combinations, inserted, updated, unchanged, deleted, failed, error
from aggregate_features_runs
order by started_at desc, run_id
limit ${limit}::int`;
}
