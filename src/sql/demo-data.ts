/**
 * Deterministic, realistic demo attempts, generated inside PostgreSQL (no rows pass through
 * Node). Randomness comes from an integer hash of the row's coordinates, not random(), so the
 * same parameters give the same rows on every PostgreSQL version and plan.
 *
 * Each statement is a function of the demo's description (`DemoData`: students, days of
 * history, last day, time zone); the attempts are generated a range of days-before-the-last-day
 * per statement (so a caller can report progress between statements).
 * Shape: each student has an activity level (active on 15–85% of days), a few favourite
 * topics out of 36 and an ability that grows over the weeks; on an active day they practise
 * 1–3 topics with 3–12 attempts each. About 2% of response times are NULL and 0.3% negative
 * (clock skew), 1% of `correct` and `hint_used` are NULL, and 0.2% of rows have an empty topic.
 */
import { sql, type Sql } from './tag.js';

/** What the demo generates. */
export interface DemoData {
  readonly students: number;
  /** Days of history, ending at lastDay. */
  readonly days: number;
  readonly lastDay: string;
  readonly timezone: string;
}
/** The rows features_topic_daily holds already (an earlier demo on the same directory). */
export const countFeatureRows = sql`select count(*)::int as n from features_topic_daily`;

/** The demo's attempts are generated again from scratch: an earlier demo's table goes first. */
export const dropDemoAttempts = sql`drop table if exists attempt`;

/** Statistics for the generated attempts, so the job's first run is planned for their size. */
export const analyzeDemoAttempts = sql`analyze attempt`;

/**
 * h(k) in [0, 1): an integer hash (LCG step, xor-shift, LCG step), stable everywhere. One
 * expression with no FROM, so PostgreSQL inlines it; float8 math, as numeric is much slower.
 */
export const createDemoHash = sql`
create or replace function pg_temp.lcg(x bigint) returns bigint
language sql immutable as $$ select ((x % 2147483648) * 1103515245 + 12345) % 2147483648 $$;
create or replace function pg_temp.h(k bigint) returns double precision
language sql immutable as $$
  select pg_temp.lcg(pg_temp.lcg(abs(k)) # (pg_temp.lcg(abs(k)) >> 13))::float8 / 2147483648.0::float8
$$`;

/** The attempts of the days range.from … range.to before the last day (0 = the last day). */
export function insertDemoAttempts(demo: DemoData, range: { readonly from: number; readonly to: number }): Sql {
  return sql`
with topics(n, name) as (
  select ordinality::int, name
  from unnest(array[
    'algebra','fractions','decimals','percentages','ratios','linear-equations','quadratics',
    'inequalities','functions','graphs','geometry-angles','triangles','circles','areas',
    'volumes','pythagoras','trigonometry','vectors','probability','statistics','sequences',
    'exponents','logarithms','polynomials','factoring','systems','matrices','number-theory',
    'primes','integers','place-value','measurement','time-money','data-handling','word-problems',
    'mental-arithmetic']) with ordinality as t(name, ordinality)
),
students as (
  select s, 'student-' || lpad(s::text, 5, '0') as student_id,
         0.15 + 0.70 * pg_temp.h(s) as activity,
         floor(36 * pg_temp.h(s + 7777777))::int as favourite,
         pg_temp.h(s + 3333333) as skill
  from generate_series(1, ${demo.students}::int) s
),
active_days as (
  select st.*, d, (${demo.lastDay}::date - d) as day
  from students st, generate_series(${range.from}::int, ${range.to}::int) d
  where pg_temp.h(st.s * 1009 + d * 7919 + 11) < st.activity
),
sessions as (
  select a.*, k,
         1 + (a.favourite + k * 5 + floor(3 * pg_temp.h(a.s * 1013 + a.d * 7927 + k))::int) % 36 as topic_n,
         3 + floor(10 * pg_temp.h(a.s * 1019 + a.d * 7933 + k * 3))::int as attempts
  from active_days a, generate_series(0, 2) k
  where k <= floor(3 * pg_temp.h(a.s * 1021 + a.d * 7937))
),
attempt_rows as (
  select se.*, i,
         pg_temp.h(se.s * 100003 + se.d * 1009 + se.k * 101 + i) as r1,
         pg_temp.h(se.s * 100019 + se.d * 1013 + se.k * 103 + i + 5555555) as r2
  from sessions se, generate_series(1, se.attempts) i
)
insert into attempt (student_id, topic_id, completed_at, correct, response_time_ms, hint_used)
select r.student_id,
       case when r.r2 < 0.002 then '' else t.name end,
       (r.day::timestamp + interval '7 hours' + (r.r1 * 14 * 3600 + r.i * 40) * interval '1 second')
         at time zone ${demo.timezone}::text,
       case when r.r2 between 0.10 and 0.11 then null
            else r.r1 < 0.35 + 0.3 * r.skill + 0.25 * (${demo.days}::int - r.d) / ${demo.days}::int end,
       case when r.r2 between 0.20 and 0.22 then null
            when r.r2 between 0.30 and 0.303 then -1
            else (1500 + 60000 * r.r2 * r.r2 + 4000 * r.r1)::int end,
       case when r.r2 between 0.40 and 0.41 then null else r.r1 > 0.9 end
from attempt_rows r
join topics t on t.n = r.topic_n`;
}

/**
 * Late-arriving attempts: new answers on the last three days, as if mobile clients synced
 * hours late.
 */
export function insertLateAttempts(demo: Pick<DemoData, 'lastDay' | 'timezone'>): Sql {
  return sql`
insert into attempt (student_id, topic_id, completed_at, correct, response_time_ms, hint_used)
select student_id, topic_id, completed_at + interval '3 minutes', not coalesce(correct, false), response_time_ms + 250, hint_used
from attempt
where completed_at >= ((${demo.lastDay}::date - 2)::timestamp at time zone ${demo.timezone}::text)
  and completed_at <  ((${demo.lastDay}::date + 1)::timestamp at time zone ${demo.timezone}::text)
  and pg_temp.h(extract(epoch from completed_at)::bigint) < 0.03`;
}

/**
 * The ability-estimate tables of another (IRT) job, as the demo's stand-in: topic-level
 * estimates in double precision (as a Python estimator writes them) and the user-level
 * fallback in numeric, each with the index docs/theta.md recommends.
 */
export const createDemoThetaTables = sql`
drop table if exists student_topic_theta;
drop table if exists mirt_ability;
create table student_topic_theta (
  user_id    text not null,
  topic_id   text not null,
  theta      double precision,
  se         double precision,
  updated_at timestamptz not null
);
create table mirt_ability (
  user_id   text not null,
  theta     numeric,
  se        numeric,
  fitted_at timestamptz not null
)`;

export const indexDemoThetaTables = sql`
create index on student_topic_theta (user_id, topic_id, updated_at);
create index on mirt_ability (user_id, fitted_at);
analyze student_topic_theta;
analyze mirt_ability`;

/**
 * A theta history derived from the attempts, so it tells the same story: after about half of
 * a student's practice days on a topic the estimator re-fits (user, topic) from all answers
 * so far, 20 minutes to 8 hours after the day's last answer (so late sessions produce
 * estimates dated the next day, and the last day's estimates often fall after the anchor).
 * theta is the logit of the smoothed accuracy plus noise, se ≈ 1/√information. Also: 8% of
 * fits write a second estimate minutes later (several per day), 1% a duplicate at the same
 * instant with a higher theta (a tie), and a few bad rows: NaN, NULL and out-of-range thetas,
 * NULL, negative and NaN se.
 */
export function insertDemoEstimates(demo: Pick<DemoData, 'timezone'>): Sql {
  return sql`
with daily as (
  select student_id, topic_id, (completed_at at time zone ${demo.timezone}::text)::date as day,
         count(correct) as answered, count(*) filter (where correct) as correct,
         max(completed_at) as last_at
  from attempt
  where topic_id <> ''
  group by student_id, topic_id, day
),
fits as (
  select student_id, topic_id, last_at,
         (sum(correct) over w + 1)::float8 / (sum(answered) over w + 2) as p,
         sum(answered) over w as n,
         pg_temp.h(extract(epoch from last_at)::bigint) as r1,
         pg_temp.h(extract(epoch from last_at)::bigint + 7777777) as r2
  from daily
  window w as (partition by student_id, topic_id order by day)
),
estimates as (
  select student_id, topic_id, r1, r2,
         last_at + interval '20 minutes' + r2 * interval '8 hours' as updated_at,
         ln(p / (1 - p)) + (r1 - 0.5) * 0.4 as theta,
         1 / sqrt(n * p * (1 - p) + 0.5) as se
  from fits
  where r1 < 0.5
)
insert into student_topic_theta (user_id, topic_id, theta, se, updated_at)
select student_id, topic_id,
       case when r2 < 0.004 then 'NaN'::float8
            when r2 < 0.007 then null
            when r2 < 0.009 then 1e6
            else theta end,
       case when r2 between 0.5 and 0.53 then null
            when r2 between 0.6 and 0.605 then -1
            when r2 between 0.7 and 0.702 then 'NaN'::float8
            else se end,
       updated_at
from estimates
union all
select student_id, topic_id, theta + 0.03, se * 0.98, updated_at + interval '5 minutes'
from estimates where r1 < 0.04
union all
select student_id, topic_id, theta + 0.05, se, updated_at
from estimates where r1 between 0.04 and 0.045`;
}

/**
 * Weekly user-level fits (the fallback for topics a student has no estimate of yet): every
 * 7 days at 03:00, from the student's overall skill plus a slow drift.
 */
export function insertDemoMirt(demo: DemoData): Sql {
  return sql`
insert into mirt_ability (user_id, theta, se, fitted_at)
select 'student-' || lpad(s::text, 5, '0'),
       round((3 * (pg_temp.h(s + 3333333) - 0.5) + 0.02 * (${demo.days}::int - d) / 7 + 0.2 * (pg_temp.h(s * 31 + d) - 0.5))::numeric, 6),
       round((0.25 + 0.1 * pg_temp.h(s * 37 + d))::numeric, 6),
       ((${demo.lastDay}::date - d)::timestamp + interval '3 hours') at time zone ${demo.timezone}::text
from generate_series(1, ${demo.students}::int) s, generate_series(0, ${demo.days}::int - 1, 7) d`;
}
