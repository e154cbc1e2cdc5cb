/**
 * The aggregation (SPEC §4 and the accuracy index of §6) as one SELECT over every
 * (user, topic, day) combination of the window at once.
 *
 * Parameters: $1 since (date), $2 anchor (date), $3 time zone (IANA name), $4 shard count,
 * $5 shard index (1-based; 1 of 1 for an unsharded run).
 *
 * Shape, and why:
 * - One range scan of the source from since−27 to the end of the anchor day (sargable on
 *   `completed_at`, so an index on it is used). Days are cut in the job's time zone.
 * - One GROUP BY (user, topic, day) over those 28 + window days. The full aggregates are
 *   only needed for the window's days; the median's FILTER keeps its sort to those. Every
 *   day contributes answered/correct counts, which is all the improvement index reads.
 * - The two 14-day halves are window frames over the daily counts (RANGE with a date
 *   offset), so no self-join and no per-row query.
 * - The improvement is computed in numeric as one exact fraction, then rounded half away
 *   from zero: (p_r − p_p) · min(n_r, 30)/30 · (1 − min(½, 1.96·√(c_r(n_r−c_r)/n_r³)))
 *   = (c_r·n_p − c_p·n_r) · min(n_r, 30) · (100·n_r² − min(50·n_r², 196·s))
 *     / (n_r · n_p · 3000 · n_r²), with s = √(c_r·(n_r−c_r)·n_r).
 *   Whenever the true value is a rational number (s an integer) this is exact to the last
 *   digit, also exactly on a rounding boundary such as 0.0005; a literal evaluation in
 *   doubles or 16-digit decimals is not.
 * - Students are split into shards by a stable hash of user_id (md5, the same on every
 *   PostgreSQL version), so N shards together compute exactly the unsharded rows.
 */
export function inShard(userIdColumn: string, countParam: string, indexParam: string): string {
  return `(${countParam}::int = 1 or mod(('x' || substr(md5(${userIdColumn}), 1, 8))::bit(32)::bigint, ${countParam}::int) = ${indexParam}::int - 1)`;
}

export const computeSelect = `
with attempts as (
  select student_id::text as user_id,
         topic_id::text   as topic_id,
         (completed_at at time zone $3::text)::date as day,
         completed_at, correct, response_time_ms, hint_used
  from {{source}}
  where completed_at >= (($1::date - 27)::timestamp at time zone $3::text)
    and completed_at <  (($2::date + 1)::timestamp at time zone $3::text)
    and student_id is not null and student_id::text <> ''
    and topic_id is not null and topic_id::text <> ''
),
sharded as (
  select * from attempts where ${inShard('user_id', '$4', '$5')}
),
daily as (
  select user_id, topic_id, day,
         count(*)::int                         as attempts,
         count(*) filter (where correct)::int  as correct,
         count(correct)::int                   as answered,
         round(avg(response_time_ms) filter (where response_time_ms >= 0 and day >= $1::date))::int as avg_time_ms,
         round((percentile_cont(0.5) within group (order by response_time_ms)
                filter (where response_time_ms >= 0 and day >= $1::date))::numeric)::int          as rt_median,
         count(*) filter (where hint_used)::int as hints,
         max(completed_at)                      as last_seen_at
  from sharded
  group by user_id, topic_id, day
),
halves as (
  select daily.*,
         (sum(answered) over recent)::numeric   as n_r,
         (sum(correct)  over recent)::numeric   as c_r,
         (sum(answered) over previous)::numeric as n_p,
         (sum(correct)  over previous)::numeric as c_p
  from daily
  window recent   as (partition by user_id, topic_id order by day
                      range between '13 days' preceding and current row),
         previous as (partition by user_id, topic_id order by day
                      range between '27 days' preceding and '14 days' preceding)
)
select user_id, topic_id, day as date,
       attempts, correct, avg_time_ms, rt_median, hints, last_seen_at,
       null::numeric(6,3) as theta_estimate,
       null::numeric(6,3) as theta_sd,
       case when n_r > 0 and n_p > 0 then
         round(greatest(-1, least(1,
           ((c_r * n_p - c_p * n_r) * least(n_r, 30)
             * (100 * n_r * n_r - least(50 * n_r * n_r, 196 * sqrt((c_r * (n_r - c_r) * n_r)::numeric(1000, 40)))))
           / (n_r * n_p * 3000 * n_r * n_r))), 3)
       end::numeric(6,3) as improvement
from halves
where day >= $1::date
`;
