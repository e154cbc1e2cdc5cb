/**
 * The statements of `report`: the checks an operator runs by hand after a night, as one
 * command. All read-only.
 */

/**
 * Coverage per day for the $2 days ending at $1 (newest first): rows, distinct users and
 * topics, attempts, and rows with a theta estimate. Days without rows are listed with zeros,
 * so a gap shows. A range scan on `date` per day through the primary key is not possible (its
 * first column is user_id), so this reads the period's rows once.
 */
export const coveragePerDay = `
with days as (
  select ($1::date - i) as date from generate_series(0, $2::int - 1) i
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
  where f.date between $1::date - ($2::int - 1) and $1::date
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

/** The $3 most recent rows of the period from $1 − $2 + 1 to $1: newest day first. */
export const recentRows = `
select user_id, topic_id, date::text as date, attempts, correct, avg_time_ms, rt_median, hints,
       theta_estimate::text as theta_estimate, theta_sd::text as theta_sd, improvement::text as improvement,
       last_seen_at::text as last_seen_at, computed_at::text as computed_at
from features_topic_daily
where date between $1::date - ($2::int - 1) and $1::date
order by date desc, computed_at desc, user_id collate "C", topic_id collate "C"
limit $3::int`;

/** The $1 latest runs of the run log, newest first. */
export const lastRuns = `
select run_id, command, shard, since::text as since, anchor::text as anchor, widened_from::text as widened_from,
       started_at::text as started_at,
       round(extract(epoch from (finished_at - started_at))::numeric, 1)::float8 as duration_s,
       outcome, combinations, inserted, updated, unchanged, deleted, failed, error
from aggregate_features_runs
order by started_at desc, run_id
limit $1::int`;
