/**
 * The statements of `explain`: everything that makes one row of features_topic_daily, read
 * for one (user, topic, day). All read-only and bound to one pair, so they cost a lookup, not
 * a scan of the window. Each is a function of the pair and its day (`PairDay`).
 */
import type { QualifiedName } from './identifiers.js';
import type { Work } from '../work.js';
import { computeSelect } from './compute.js';
import { ident, raw, sql, type Sql } from './tag.js';
import { validTheta } from './theta.js';

/** One (user, topic) pair on one day, read from `source` with days cut in `timezone`. */
export interface PairDay {
  readonly source: Sql;
  readonly user: string;
  readonly topic: string;
  readonly date: string;
  readonly timezone: string;
}

/** Start of the day `offset` days after the pair's day in its time zone, as timestamptz. */
const dayStart = (pair: PairDay, offset: number) =>
  sql`((${pair.date}::date + ${raw(String(offset))})::timestamp at time zone ${pair.timezone}::text)`;

/**
 * The day's attempts of the pair, in order, each with what it counts for: `correct IS TRUE`,
 * a valid response time (not NULL and ≥ 0), `hint_used IS TRUE`, and whether it is the last.
 */
export function dayAttempts(pair: PairDay): Sql {
  return sql`
select completed_at::text as completed_at, correct, response_time_ms, hint_used,
       correct is true                       as counts_correct,
       coalesce(response_time_ms >= 0, false) as valid_time,
       hint_used is true                     as counts_hint,
       completed_at = max(completed_at) over () as is_last
from ${pair.source}
where completed_at >= ${dayStart(pair, 0)} and completed_at < ${dayStart(pair, 1)}
  and student_id::text = ${pair.user} and topic_id::text = ${pair.topic}
order by completed_at, response_time_ms nulls last`;
}

/** The answered (correct not NULL) and correct attempts of the pair on each day of d−27 … d. */
export function halvesPerDay(pair: PairDay): Sql {
  return sql`
select (completed_at at time zone ${pair.timezone}::text)::date::text as day,
       count(correct)::int                  as answered,
       count(*) filter (where correct)::int as correct
from ${pair.source}
where completed_at >= ${dayStart(pair, -27)} and completed_at < ${dayStart(pair, 1)}
  and student_id::text = ${pair.user} and topic_id::text = ${pair.topic}
group by 1
order by 1`;
}

/** The first and last days of the improvement index's two 14-day halves for `day`. */
export function halfBounds(day: string): Sql {
  return sql`
select (${day}::date - 13)::text as recent_from, ${day}::date::text as recent_to,
       (${day}::date - 27)::text as previous_from, (${day}::date - 14)::text as previous_to`;
}

const validSe = sql`(s.se::text::numeric >= 0 and round(s.se::text::numeric, 3) < 1000) is true`;

/**
 * Every estimate of the pair in `table` (student_topic_theta by user and topic, or
 * mirt_ability by user), newest first, with why it is or is not used for the day: invalid (and why), after
 * the day, or valid; `chosen` marks the one the day's theta takes (latest valid before the end of the day;
 * ties to the highest theta, then the highest valid se), `recent` and `previous` the latest
 * valid one updated on d−13 … d and d−27 … d−14 (the theta improvement's θ_recent and θ_prev).
 */
export function estimatesOfPair(pair: PairDay, table: QualifiedName, by: 'user and topic' | 'user'): Sql {
  const at = raw(by === 'user' ? 'fitted_at' : 'updated_at');
  const match =
    by === 'user'
      ? sql`s.user_id::text = ${pair.user} and ${pair.topic}::text is not null`
      : sql`s.user_id::text = ${pair.user} and s.topic_id::text = ${pair.topic}`;
  const valid = sql`coalesce(${validTheta(sql`s`)}, false)`;
  const rank = (condition: Sql) =>
    sql`(${condition}) and row_number() over (partition by (${condition}) order by s.${at} desc, s.theta::text::numeric desc, case when ${validSe} then s.se::text::numeric end desc nulls last) = 1`;
  const before = sql`s.${at} < ${dayStart(pair, 1)}`;
  return sql`
select s.${at}::text as at, s.theta::text as theta, s.se::text as se,
       case when s.theta is null then 'theta is NULL'
            when s.theta::text::numeric in ('NaN', 'Infinity', '-Infinity') then 'theta is not finite'
            when not ${valid} then 'theta does not fit numeric(6,3)'
            when not (${before}) then 'after the day'
       end as skipped,
       case when ${valid} then round(s.theta::text::numeric, 3)::text end as theta_rounded,
       case when ${validSe} then round(s.se::text::numeric, 3)::text end as sd_rounded,
       ${rank(sql`${valid} and ${before}`)} as chosen,
       ${rank(sql`${valid} and s.${at} >= ${dayStart(pair, -13)} and ${before}`)} as recent,
       ${rank(sql`${valid} and s.${at} >= ${dayStart(pair, -27)} and s.${at} < ${dayStart(pair, -13)}`)} as previous
from ${ident(table)} s
where ${match}
order by s.${at} desc, s.theta::text::numeric desc nulls last
limit 200`;
}

/** The stored row, values as text. */
export function storedRow(pair: Pick<PairDay, 'user' | 'topic' | 'date'>): Sql {
  return sql`
select attempts, correct, avg_time_ms, rt_median, hints, last_seen_at::text as last_seen_at,
       theta_estimate::text as theta_estimate, theta_sd::text as theta_sd, improvement::text as improvement,
       computed_at::text as computed_at
from features_topic_daily
where user_id = ${pair.user} and topic_id = ${pair.topic} and date = ${pair.date}::date`;
}

/**
 * The job's own computation (compute.ts) of the row, values as text: `work` is the one day,
 * unsharded, and its source the pair's attempts only (`pairSource`), which changes nothing for
 * this row: every column of a combination reads only its own pair's attempts and estimates.
 */
export function recomputedRow(work: Work, pair: Pick<PairDay, 'user' | 'topic'>): Sql {
  return sql`
select attempts, correct, avg_time_ms, rt_median, hints, last_seen_at::text as last_seen_at,
       theta_estimate::text as theta_estimate, theta_sd::text as theta_sd, improvement::text as improvement
from (${computeSelect(work)}) c
where c.user_id = ${pair.user} and c.topic_id = ${pair.topic} and c.date = ${work.anchor}::date`;
}

/** The source (a relation) restricted to one pair, as a relation. */
export function pairSource(source: Sql, pair: Pick<PairDay, 'user' | 'topic'>): Sql {
  return sql`(select * from ${source} where student_id::text = ${pair.user} and topic_id::text = ${pair.topic}) as pair_attempts`;
}
