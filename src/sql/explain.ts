/**
 * The statements of `explain`: everything that makes one row of features_topic_daily, read
 * for one (user, topic, day). All read-only and bound to one pair, so they cost a lookup, not
 * a scan of the window. Parameters: $1 user_id, $2 topic_id, $3 the day, $4 the time zone.
 */
import { computeSelect, type ComputePlan } from './compute.js';
import { validTheta } from './theta.js';

/** Start of day `offset` days after $3 in the time zone $4, as timestamptz. */
const dayStart = (offset: number) => `(($3::date + ${offset})::timestamp at time zone $4::text)`;

/**
 * The day's attempts of the pair, in order, each with what it counts for: `correct IS TRUE`,
 * a valid response time (not NULL and ≥ 0), `hint_used IS TRUE`, and whether it is the last.
 */
export const dayAttempts = `
select completed_at::text as completed_at, correct, response_time_ms, hint_used,
       correct is true                       as counts_correct,
       coalesce(response_time_ms >= 0, false) as valid_time,
       hint_used is true                     as counts_hint,
       completed_at = max(completed_at) over () as is_last
from {{source}}
where completed_at >= ${dayStart(0)} and completed_at < ${dayStart(1)}
  and student_id::text = $1 and topic_id::text = $2
order by completed_at, response_time_ms nulls last`;

/** The answered (correct not NULL) and correct attempts of the pair on each day of d−27 … d. */
export const halvesPerDay = `
select (completed_at at time zone $4::text)::date::text as day,
       count(correct)::int                  as answered,
       count(*) filter (where correct)::int as correct
from {{source}}
where completed_at >= ${dayStart(-27)} and completed_at < ${dayStart(1)}
  and student_id::text = $1 and topic_id::text = $2
group by 1
order by 1`;

/** The first and last days of the two halves of §6 for day $1. */
export const halfBounds = `
select ($1::date - 13)::text as recent_from, $1::date::text as recent_to,
       ($1::date - 27)::text as previous_from, ($1::date - 14)::text as previous_to`;

const validSe = `(s.se::text::numeric >= 0 and round(s.se::text::numeric, 3) < 1000) is true`;

/**
 * Every estimate of the pair in `table` ({{theta}} by user and topic, or {{mirt}} by user:
 * `match`), newest first, with why it is or is not used for day $3: invalid (and why), after
 * the day, or valid; `chosen` marks the one §5 picks (latest valid before the end of the day;
 * ties to the highest theta, then the highest valid se), `recent` and `previous` the latest
 * valid one updated on d−13 … d and d−27 … d−14 (the theta improvement's θ_recent and θ_prev).
 */
export function estimatesOfPair(table: '{{theta}}' | '{{mirt}}', at: 'updated_at' | 'fitted_at', match: string): string {
  const valid = `coalesce(${validTheta('s')}, false)`;
  const rank = (condition: string) =>
    `(${condition}) and row_number() over (partition by (${condition}) order by s.${at} desc, s.theta::text::numeric desc, case when ${validSe} then s.se::text::numeric end desc nulls last) = 1`;
  const before = `s.${at} < ${dayStart(1)}`;
  return `
select s.${at}::text as at, s.theta::text as theta, s.se::text as se,
       case when s.theta is null then 'theta is NULL'
            when s.theta::text::numeric in ('NaN', 'Infinity', '-Infinity') then 'theta is not finite'
            when not ${valid} then 'theta does not fit numeric(6,3)'
            when not (${before}) then 'after the day'
       end as skipped,
       case when ${valid} then round(s.theta::text::numeric, 3)::text end as theta_rounded,
       case when ${validSe} then round(s.se::text::numeric, 3)::text end as sd_rounded,
       ${rank(`${valid} and ${before}`)} as chosen,
       ${rank(`${valid} and s.${at} >= ${dayStart(-13)} and ${before}`)} as recent,
       ${rank(`${valid} and s.${at} >= ${dayStart(-27)} and s.${at} < ${dayStart(-13)}`)} as previous
from ${table} s
where ${match}
order by s.${at} desc, s.theta::text::numeric desc nulls last
limit 200`;
}

/** The stored row, values as text. */
export const storedRow = `
select attempts, correct, avg_time_ms, rt_median, hints, last_seen_at::text as last_seen_at,
       theta_estimate::text as theta_estimate, theta_sd::text as theta_sd, improvement::text as improvement,
       computed_at::text as computed_at
from features_topic_daily
where user_id = $1 and topic_id = $2 and date = $3::date`;

/**
 * The job's own computation (compute.ts) of the row, values as text: the window is the one
 * day, and {{source}} is the pair's attempts only (`pairSource`), which changes nothing for
 * this row: every column of a combination reads only its own pair's attempts and estimates.
 * Parameters as computeSelect ($1 since = $2 anchor = the day, $3 zone, $4, $5 shard 1 of 1),
 * plus $6 user_id and $7 topic_id.
 */
export function recomputedRow(plan: ComputePlan): string {
  return `
select attempts, correct, avg_time_ms, rt_median, hints, last_seen_at::text as last_seen_at,
       theta_estimate::text as theta_estimate, theta_sd::text as theta_sd, improvement::text as improvement
from (${computeSelect(plan)}) c
where c.user_id = $6 and c.topic_id = $7 and c.date = $2::date`;
}

/** The source restricted to one pair, put where {{source}} stands (the name is the quoted source). */
export function pairSource(quotedSource: string): string {
  return `(select * from ${quotedSource} where student_id::text = $6 and topic_id::text = $7) as pair_attempts`;
}
