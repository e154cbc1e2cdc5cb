/**
 * The aggregation (the output columns, theta as of each day, and the improvement index) as
 * one SELECT over every (user, topic, day) combination of the window at once.
 *
 * A function of the work (work.ts): its source, window (since, anchor), time zone, shard and
 * theta plan; every value is a bound parameter.
 *
 * Shape, and why (BENCHMARKS.md has the measurements):
 * - Two range scans of the source, both sargable on `completed_at` (an index on it is used);
 *   days are cut in the job's time zone. `window_days` groups the window's days with every
 *   output column's aggregate. percentile_cont can only be computed by a sorting GroupAggregate, so
 *   that sort is kept to the window's attempts. `earlier_days` gives the 27 days before the
 *   window only the answered/correct counts the improvement index reads, which a
 *   HashAggregate computes without sorting. (One GROUP BY over all 35 days sorted every
 *   attempt read, spilled to disk and took 3.8× as long at 10M attempts.) Both branches split the attempts
 *   by instant, so each attempt is counted once, also where a local midnight repeats. For a
 *   window of up to 14 days `earlier_days` keeps only the pairs with an attempt in the window
 *   (shortWindow): the others are never written.
 * - Grouping keys are compared in the "C" collation: the same groups (text equality is
 *   bytewise under every deterministic collation), sorted by memcmp instead of strcoll.
 *   A uuid or integer key is grouped in its own type and made text once per output row
 *   (KeyKind, work.ts): the per-attempt cast was about a fifth of the statement on uuid ids.
 *   `h` hands the keys on as text in the default collation again. On Citus (the backend's
 *   userByDistributionColumn) the user is grouped by `student_id` as it is: `collate "C"`
 *   hides the distribution column, and Citus then ships the window's raw attempts to the
 *   coordinator and groups them there; without it the whole statement, theta lookups
 *   included, runs on each shard (docs/scale-out.md).
 * - The sort of the window's attempts for the median, and for a short window (hashOrdered)
 *   the sort of the daily rows for the halves' frames, sort by a 64-bit hash of the pair
 *   first (pairHashFirst): text ids that share a long prefix ("student-000123") made every
 *   comparison a memcmp of both texts, the hash decides nearly all of them with one integer
 *   comparison. The groups and partitions are still the pairs themselves (the texts follow
 *   the hash), so a collision changes nothing. On shape B's daily run at 3M the statement
 *   took 2.49 s instead of 2.66 s (BENCHMARKS.md).
 * - The two 14-day halves are window frames over the daily counts (RANGE with an offset in
 *   days from `since`, an integer: cheaper to compare than a date and an interval), so no
 *   self-join and no per-row query: the 14 recent days and the 28 days that end
 *   on the row, the previous half being their difference (one sort, both frames contain the
 *   current row). The sums stay bigint through the frames and into the formula below.
 * - The improvement is computed in numeric as one exact fraction, then rounded half away
 *   from zero: (p_r − p_p) · min(n_r, 30)/30 · (1 − min(½, 1.96·√(c_r(n_r−c_r)/n_r³)))
 *   = (c_r·n_p − c_p·n_r) · min(n_r, 30) · (100·n_r² − min(50·n_r², 196·s))
 *     / (n_r · n_p · 3000 · n_r²), with s = √(c_r·(n_r−c_r)·n_r).
 *   Whenever the true value is a rational number (s an integer) this is exact to the last
 *   digit, also exactly on a rounding boundary such as 0.0005; a literal evaluation in
 *   doubles or 16-digit decimals is not. The same fraction is evaluated in doubles first
 *   and rounded from them wherever they cannot round differently (1000 × the value at least
 *   1e-6 from a boundary k + ½; their error is below 1e-10), numeric only elsewhere: the
 *   same digits at a third of the cost, which was a fifth of the serial part of the
 *   statement on data with few attempts a row.
 * - Theta (only when enabled: its tables may not exist otherwise) is joined to the window's
 *   combinations by LATERAL lookups of the latest valid estimate before the end of each day;
 *   see theta.ts. The theta improvement falls back to the accuracy formula per combination.
 * - Students are split into shards by a stable hash of user_id (see inShard), so N shards
 *   together compute exactly the unsharded rows; each shard filters the attempts it reads.
 */
import { castKeys, type KeyKind, type Keys, type Shard, type UserKey, type Work } from '../work.js';
import { raw, sql, type Sql } from './tag.js';
import { thetaColumns, thetaImprovement, thetaJoins } from './theta.js';
export type { UserKey } from '../work.js';

/**
 * True when the user of `userIdColumn` belongs to `shard`.
 * hashtextextended is PostgreSQL's own hash of text, the one hash partitioning stores rows
 * by, so it does not change between versions; it costs about 0.03 µs a row, md5 about 0.65.
 * The test is wrapped in CASE for the planner: it estimates `expression = value` to keep
 * 0.5 % of the rows, so a shard's groups were planned as if few and sorted instead of hashed
 * (1.3× slower at 10M attempts); a boolean CASE is estimated at 50 %, near 1/N.
 */
export function inShard(userIdColumn: Sql, shard: Shard): Sql {
  return sql`(${shard.count}::int = 1 or case when mod(hashtextextended(${userIdColumn}, 0) & 2147483647, ${shard.count}::int) = ${shard.index}::int - 1 then true else false end)`;
}

/**
 * True when the date in `column` is a day of `range` (since..anchor, both included). Every
 * statement that reads stored rows names the window's days, also where a join on the key
 * implies them: joined on the key alone, PostgreSQL may hash the whole table to probe it.
 */
export function inDays(column: Sql, range: { readonly since: string; readonly anchor: string }): Sql {
  return sql`${column} between ${range.since}::date and ${range.anchor}::date`;
}

/** One row per day of `range` (since..anchor, both included), in a column `date`. */
export function daysOf(range: { readonly since: string; readonly anchor: string }): Sql {
  return sql`select ${range.since}::date + i as date from generate_series(0, ${range.anchor}::date - ${range.since}::date) i`;
}

/** The four counts of the improvement index (bigint): answered and correct, recent and previous half. */
export interface HalfCounts {
  readonly nr: Sql;
  readonly cr: Sql;
  readonly np: Sql;
  readonly cp: Sql;
}

/** The counts of a row `h` with columns n_r, c_r, n_p, c_p. */
const countsOfH: HalfCounts = { nr: raw('h.n_r'), cr: raw('h.c_r'), np: raw('h.n_p'), cp: raw('h.c_p') };

/** `counts` as `type`. */
function countsAs(counts: HalfCounts, type: 'numeric' | 'float8'): HalfCounts {
  const as = (count: Sql) => sql`(${count})::${raw(type)}`;
  return { nr: as(counts.nr), cr: as(counts.cr), np: as(counts.np), cp: as(counts.cp) };
}

/** The accuracy improvement in numeric, rounded: exact (see the module comment). */
const exactAccuracyImprovement = (() => {
  const { nr, cr, np, cp } = countsAs(countsOfH, 'numeric');
  return sql`round(greatest(-1, least(1,
           ((${cr} * ${np} - ${cp} * ${nr}) * least(${nr}, 30)
             * (100 * ${nr} * ${nr} - least(50 * ${nr} * ${nr}, 196 * sqrt((${cr} * (${nr} - ${cr}) * ${nr})::numeric(1000, 40)))))
           / (${nr} * ${np} * 3000 * ${nr} * ${nr}))), 3)`;
})();

/**
 * Counts below this (2^26) may take the formula in doubles: every product of two counts is
 * then an integer below 2^52, exact in a double, so the one subtraction (c_r·n_p − c_p·n_r) is
 * exact and every other step adds at most a few units in the last place (the penalty
 * 100·n_r² − min(50·n_r², 196·s) is at least 50·n_r²: no cancellation).
 */
const doubleCountLimit = raw(String(2 ** 26));

/**
 * 1000 × the clamped accuracy improvement of `counts` in doubles, within 1e-10 of the exact
 * value; NULL when a half has no answered attempt. A row of `h` carries it as `scaled`,
 * evaluated once: written out in accuracyImprovement, PostgreSQL evaluated it three times.
 */
export function scaledAccuracy(counts: HalfCounts): Sql {
  const { nr, cr, np, cp } = countsAs(counts, 'float8');
  return sql`case when ${counts.nr} > 0 and ${counts.np} > 0 then 1000 * greatest(-1, least(1,
           ((${cr} * ${np} - ${cp} * ${nr}) * least(${nr}, 30) * (100 * ${nr} * ${nr} - least(50 * ${nr} * ${nr}, 196 * sqrt(${cr} * (${nr} - ${cr}) * ${nr}))))
           / (${nr} * ${np} * 3000 * ${nr} * ${nr}))) end`;
}

/**
 * The improvement index by the accuracy formula, from a row `h` with the counts n_r, c_r, n_p,
 * c_p and their scaledAccuracy `scaled`; see the module comment.
 */
export const accuracyImprovement = sql`case when h.n_r > 0 and h.n_p > 0 then
         case when h.n_r < ${doubleCountLimit} and h.n_p < ${doubleCountLimit}
                   and abs(h.scaled - floor(h.scaled) - 0.5) > 1e-6
              then round(h.scaled)::int * 0.001
              else ${exactAccuracyImprovement} end
       end`;

/** The grouping key of a source column of kind `kind` (see KeyKind). */
function keyOf(column: Sql, kind: KeyKind): Sql {
  if (kind === 'native') return column;
  if (kind === 'text') return sql`${column} collate "C"`;
  return sql`${column}::text collate "C"`;
}

/** The source row's key is usable: not NULL, and not empty (a uuid or a number never is). */
function validKey(column: Sql, kind: KeyKind): Sql {
  if (kind === 'native') return sql`${column} is not null`;
  if (kind === 'text') return sql`${column} is not null and ${column} <> ''`;
  return sql`${column} is not null and ${column}::text <> ''`;
}

/**
 * The sort key that leads the pairs' sorts (see the module comment), followed by a comma: a
 * 64-bit hash of the grouped `user` and `topic` where they are text, of the user alone where
 * only it is. A uuid or integer user sorts fast as it is (and hashing it would cast it to
 * text for every attempt): nothing.
 */
function pairHashFirst(user: Sql, topic: Sql, keys: Keys): Sql {
  if (keys.student === 'native') return sql``;
  const userHash = sql`hashtextextended(${user}, 0)`;
  return keys.topic === 'native' ? sql`${userHash}, ` : sql`hashtextextended(${topic}, ${userHash}), `;
}

/** The output text of a grouped key, in the default collation again. */
function keyText(column: Sql, kind: KeyKind): Sql {
  return kind === 'native' ? sql`${column}::text` : sql`${column} collate "default"`;
}

/** The user grouped like the topic, by its key (keyOf): a plain server and PGlite. */
export const userByKey: UserKey = Object.freeze({
  group: (kind: KeyKind) => keyOf(sql`student_id`, kind),
  text: (kind: KeyKind) => keyText(sql`user_id`, kind),
});

/**
 * On Citus the user stays the distribution column as it is, or made text without a collation
 * (a collation would hide it from the theta lookups' joins); a uuid or integer key is still
 * made text for the output.
 */
export const userByDistributionColumn: UserKey = Object.freeze({
  group: (kind: KeyKind) => (kind === 'cast' ? sql`student_id::text` : sql`student_id`),
  text: (kind: KeyKind) => (kind !== 'native' ? sql`user_id` : keyText(sql`user_id`, kind)),
});

/**
 * The halves' counts as window aggregates over the daily rows (`pair` ordered by day offset,
 * see computeSelect): the 14 recent days, and the 28 that end on the row minus them.
 */
const halfCounts: HalfCounts = {
  nr: sql`sum(answered) over recent`,
  cr: sql`sum(correct) over recent`,
  np: sql`(sum(answered) over whole - sum(answered) over recent)`,
  cp: sql`(sum(correct) over whole - sum(correct) over recent)`,
};

/** Windows of at most this many days read the 27 days before them only for their own pairs (shortWindow). */
export const shortWindowDays = 14;

/**
 * True when the window of `work` is short next to the 27 days read before it. The earlier
 * days are then read only for the (student, topic) pairs with an attempt in the window: the
 * rows of other pairs are never written and only made the window frames longer (on a daily
 * run of many students with few attempts each, half of the earlier days' rows: the statement
 * took 4.1 s instead of 5.7 s). For a longer window the pairs cost more to collect than they
 * save (lookback 30: 3.6 s → 4.1 s), so it reads every pair. BENCHMARKS.md has the
 * measurements. A window whose days are not dates (the benchmark's placeholders) is short.
 */
function shortWindow(work: Work): boolean {
  const days = (Date.parse(`${work.anchor}T00:00:00Z`) - Date.parse(`${work.since}T00:00:00Z`)) / 86_400_000 + 1;
  return !(days > shortWindowDays);
}

/**
 * True when the rows of `work` come out of computeSelect in the order of the pair hash
 * (pairHashFirst) rather than of their key: a short window whose user is text. Its halves'
 * sort is then led by the hash too (0.2 s of a 3.1 s re-run of shape B at 3M). An INSERT of
 * such rows sorts them by key first (insertAllComputed): into the primary key in hash order
 * they went at 2.4 µs a row more (331k rows: 2.0 s instead of 1.2 s), which a long window
 * (a backfill's chunk, millions of rows) would pay in full, so its sort stays by key.
 */
export function hashOrdered(work: Work): boolean {
  return shortWindow(work) && (work.keys ?? castKeys).student !== 'native';
}

/**
 * The (student_id, topic_id) pairs of the window's attempts, in the source's own types: a
 * pair equal to one of them as bytes is equal to it in any collation, so this keeps every
 * pair the window groups (and at most more, which changes nothing).
 */
function windowPairs(work: Work): Sql {
  const { since, anchor, timezone: zone, source } = work;
  return sql`select student_id, topic_id from ${source}
    where completed_at >= (${since}::date::timestamp at time zone ${zone}::text)
      and completed_at <  ((${anchor}::date + 1)::timestamp at time zone ${zone}::text)`;
}

/** The computation of `work`: one row per combination, the output table's columns. */
export function computeSelect(work: Work): Sql {
  const { theta, since, anchor, timezone: zone, source } = work;
  const halves = halfCounts;
  const columns = theta ? thetaColumns(theta) : { estimate: sql`null`, sd: sql`null` };
  const improvement = theta?.thetaMode ? thetaImprovement(accuracyImprovement) : accuracyImprovement;
  const student = sql`student_id::text`;
  const keys = work.keys ?? castKeys;
  const valid = sql`${validKey(sql`student_id`, keys.student)}
    and ${validKey(sql`topic_id`, keys.topic)}`;
  const user = work.backend.userKey.group(keys.student);
  const topicKey = keyOf(sql`topic_id`, keys.topic);
  const userText = work.backend.userKey.text(keys.student);
  return sql`
with window_days as (
  select ${user} as user_id,
         ${topicKey} as topic_id,
         (completed_at at time zone ${zone}::text)::date as day,
         count(*)::int                         as attempts,
         count(*) filter (where correct)::int  as correct,
         count(correct)::int                   as answered,
         round(avg(response_time_ms) filter (where response_time_ms >= 0))::int as avg_time_ms,
         round((percentile_cont(0.5) within group (order by response_time_ms)
                filter (where response_time_ms >= 0))::numeric)::int          as rt_median,
         count(*) filter (where hint_used)::int as hints,
         max(completed_at)                      as last_seen_at
  from ${source}
  where completed_at >= (${since}::date::timestamp at time zone ${zone}::text)
    and completed_at <  ((${anchor}::date + 1)::timestamp at time zone ${zone}::text)
    and ${valid}
    and ${inShard(student, work.shard)}
  group by ${pairHashFirst(user, topicKey, keys)}1, 2, 3
),
earlier_days as (
  select ${user} as user_id,
         ${topicKey} as topic_id,
         (completed_at at time zone ${zone}::text)::date as day,
         null::int                             as attempts,
         count(*) filter (where correct)::int  as correct,
         count(correct)::int                   as answered,
         null::int as avg_time_ms, null::int as rt_median, null::int as hints, null::timestamptz as last_seen_at
  from ${source}
  where completed_at >= ((${since}::date - 27)::timestamp at time zone ${zone}::text)
    and completed_at <  (${since}::date::timestamp at time zone ${zone}::text)
    and ${valid}
    and ${inShard(student, work.shard)}
    ${shortWindow(work) ? sql`and (student_id, topic_id) in (${windowPairs(work)})` : sql``}
  group by 1, 2, 3
),
daily as (
  select * from window_days
  union all
  select * from earlier_days
),
halves as (
  select user_id, topic_id, day,
         attempts, correct, avg_time_ms, rt_median, hints, last_seen_at,
         ${halves.nr} as n_r, ${halves.cr} as c_r, ${halves.np} as n_p, ${halves.cp} as c_p,
         case when day >= ${since}::date then ${scaledAccuracy(halves)} end as scaled
  from daily
  window pair   as (partition by ${hashOrdered(work) ? pairHashFirst(sql`daily.user_id`, sql`daily.topic_id`, keys) : sql``}daily.user_id, daily.topic_id
                     order by daily.day - ${since}::date),
         recent as (pair range between 13 preceding and current row),
         whole  as (pair range between 27 preceding and current row)
),
h as (
  select ${userText} as user_id, ${keyText(sql`topic_id`, keys.topic)} as topic_id, day,
         attempts, correct, avg_time_ms, rt_median, hints, last_seen_at, n_r, c_r, n_p, c_p, scaled
  from halves
  where day >= ${since}::date
)
select h.user_id, h.topic_id, h.day as date,
       h.attempts, h.correct, h.avg_time_ms, h.rt_median, h.hints, h.last_seen_at,
       (${columns.estimate})::numeric(6,3) as theta_estimate,
       (${columns.sd})::numeric(6,3) as theta_sd,
       (${improvement})::numeric(6,3) as improvement
from h
${theta ? thetaJoins(theta, zone) : sql``}
`;
}
