/**
 * Deterministic, realistic demo attempts, generated inside PostgreSQL (no rows pass through
 * Node). Randomness comes from an integer hash of the row's coordinates, not random(), so the
 * same parameters give the same rows on every PostgreSQL version and plan.
 *
 * Parameters: $1 students, $2 days of history, $3 last day (date), $4 time zone, and $5..$6
 * the range of days-before-the-last-day to generate in this statement (so a caller can report
 * progress between statements).
 * Shape: each student has an activity level (active on 15–85% of days), a few favourite
 * topics out of 36 and an ability that grows over the weeks; on an active day they practise
 * 1–3 topics with 3–12 attempts each. About 2% of response times are NULL and 0.3% negative
 * (clock skew), 1% of `correct` and `hint_used` are NULL, and 0.2% of rows have an empty topic.
 */
/**
 * h(k) in [0, 1): an integer hash (LCG step, xor-shift, LCG step), stable everywhere. One
 * expression with no FROM, so PostgreSQL inlines it; float8 math, as numeric is much slower.
 */
export const createDemoHash = `
create or replace function pg_temp.lcg(x bigint) returns bigint
language sql immutable as $$ select ((x % 2147483648) * 1103515245 + 12345) % 2147483648 $$;
create or replace function pg_temp.h(k bigint) returns double precision
language sql immutable as $$
  select pg_temp.lcg(pg_temp.lcg(abs(k)) # (pg_temp.lcg(abs(k)) >> 13))::float8 / 2147483648.0::float8
$$`;

export const insertDemoAttempts = `
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
  from generate_series(1, $1::int) s
),
active_days as (
  select st.*, d, ($3::date - d) as day
  from students st, generate_series($5::int, $6::int) d
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
         at time zone $4::text,
       case when r.r2 between 0.10 and 0.11 then null
            else r.r1 < 0.35 + 0.3 * r.skill + 0.25 * ($2::int - r.d) / $2::int end,
       case when r.r2 between 0.20 and 0.22 then null
            when r.r2 between 0.30 and 0.303 then -1
            else (1500 + 60000 * r.r2 * r.r2 + 4000 * r.r1)::int end,
       case when r.r2 between 0.40 and 0.41 then null else r.r1 > 0.9 end
from attempt_rows r
join topics t on t.n = r.topic_n`;

/**
 * Late-arriving attempts: new answers on the last three days, as if mobile clients synced
 * hours late. $1 last day, $2 time zone.
 */
export const insertLateAttempts = `
insert into attempt (student_id, topic_id, completed_at, correct, response_time_ms, hint_used)
select student_id, topic_id, completed_at + interval '3 minutes', not coalesce(correct, false), response_time_ms + 250, hint_used
from attempt
where completed_at >= (($1::date - 2)::timestamp at time zone $2::text)
  and completed_at <  (($1::date + 1)::timestamp at time zone $2::text)
  and pg_temp.h(extract(epoch from completed_at)::bigint) < 0.03`;
