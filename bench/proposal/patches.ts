/**
 * PROPOSED changes to src/, as replacements that the proposal build applies to its copy of
 * src/ (`npm run bench -- --proposal`); a replacement that no longer matches stops the build,
 * so a stale proposal is never measured by accident. BENCHMARKS.md ("Proposed changes") has
 * the numbers. They do not change any output row: the benchmark compares the proposal's rows
 * with the shipped statement's (bench/variants.ts).
 *
 * 1. sql/compute.ts, the CTEs up to `halves`: two range scans instead of one. The window's
 *    days are grouped with every §4 aggregate; percentile_cont forces a sorting
 *    GroupAggregate, so that sort is kept to the window's attempts. The 27 days before only
 *    need answered/correct counts per day, which a HashAggregate computes without sorting.
 *    (The shipped single GROUP BY sorts every attempt of 35 days, and the sort spills.) The
 *    branches are independent, so PostgreSQL can run them in parallel (Parallel Append).
 *    Grouping keys are compared in the "C" collation: the same groups (text equality is
 *    bytewise under every deterministic collation), but sorting by memcmp with abbreviated
 *    keys instead of strcoll; `halves` hands the keys on in the default collation again.
 * 2. sql/compute.ts, inShard: PostgreSQL's own stable hash (`hashtextextended`, which hash
 *    partitioning relies on, so it cannot change across versions) instead of md5: every shard
 *    hashes every attempt it reads, and md5 costs ~0.65 µs per row against ~0.03 µs.
 * 3. isolate.ts: the normal path fills agg_computed with CREATE TABLE … AS instead of INSERT …
 *    SELECT. PostgreSQL plans INSERT … SELECT without parallel workers; CREATE TABLE … AS may
 *    use them. The empty agg_computed is dropped and re-created inside the same savepoint, so
 *    a row error rolls back to the empty table and the narrowing path is unchanged.
 */
export interface Patch {
  /** Path under src/. */
  readonly file: string;
  readonly from: string | RegExp;
  readonly to: string;
}

const validKeys = `student_id is not null and student_id::text <> ''
    and topic_id is not null and topic_id::text <> ''`;

/** The replacement of the shipped CTEs `attempts`, `sharded`, `daily` and `halves` (TypeScript source text). */
const splitCtes = `with window_days as (
  select student_id::text collate "C" as user_id,
         topic_id::text collate "C"   as topic_id,
         (completed_at at time zone $3::text)::date as day,
         count(*)::int                         as attempts,
         count(*) filter (where correct)::int  as correct,
         count(correct)::int                   as answered,
         round(avg(response_time_ms) filter (where response_time_ms >= 0))::int as avg_time_ms,
         round((percentile_cont(0.5) within group (order by response_time_ms)
                filter (where response_time_ms >= 0))::numeric)::int          as rt_median,
         count(*) filter (where hint_used)::int as hints,
         max(completed_at)                      as last_seen_at
  from {{source}}
  where completed_at >= ($1::date::timestamp at time zone $3::text)
    and completed_at <  (($2::date + 1)::timestamp at time zone $3::text)
    and ${validKeys}
    and \${inShard('student_id::text', '$4', '$5')}
  group by 1, 2, 3
),
earlier_days as (
  select student_id::text collate "C" as user_id,
         topic_id::text collate "C"   as topic_id,
         (completed_at at time zone $3::text)::date as day,
         null::int                             as attempts,
         count(*) filter (where correct)::int  as correct,
         count(correct)::int                   as answered,
         null::int as avg_time_ms, null::int as rt_median, null::int as hints, null::timestamptz as last_seen_at
  from {{source}}
  where completed_at >= (($1::date - 27)::timestamp at time zone $3::text)
    and completed_at <  ($1::date::timestamp at time zone $3::text)
    and ${validKeys}
    and \${inShard('student_id::text', '$4', '$5')}
  group by 1, 2, 3
),
daily as (
  select * from window_days
  union all
  select * from earlier_days
),
halves as (
  select user_id collate "default" as user_id, topic_id collate "default" as topic_id, day,
         attempts, correct, answered, avg_time_ms, rt_median, hints, last_seen_at,
         (sum(answered) over recent)::numeric   as n_r,
         (sum(correct)  over recent)::numeric   as c_r,
         (sum(answered) over previous)::numeric as n_p,
         (sum(correct)  over previous)::numeric as c_p
  from daily
  window recent   as (partition by daily.user_id, daily.topic_id order by daily.day
                      range between '13 days' preceding and current row),
         previous as (partition by daily.user_id, daily.topic_id order by daily.day
                      range between '27 days' preceding and '14 days' preceding)
)`;

export const patches: Patch[] = [
  {
    file: 'sql/compute.ts',
    from: /with attempts as \([\s\S]*?range between '27 days' preceding and '14 days' preceding\)\n\)/,
    to: splitCtes,
  },
  {
    file: 'sql/compute.ts',
    from: "mod(('x' || substr(md5(${userIdColumn}), 1, 8))::bit(32)::bigint, ${countParam}::int)",
    to: 'mod(hashtextextended(${userIdColumn}, 0) & 2147483647, ${countParam}::int)',
  },
  {
    file: 'isolate.ts',
    from: '  const whole = await attempt(wholeWindow, params);',
    to: `  // The normal path as one CREATE TABLE … AS: unlike INSERT … SELECT it may run with parallel
  // workers. It replaces the empty agg_computed inside the savepoint, so a row error rolls back
  // to the empty table and the narrowing below fills it as before.
  const stageWhole = wholeWindow.replace(/^\\s*insert into agg_computed\\b/, 'create temporary table agg_computed on commit drop as');
  checkpoint();
  await session.query('savepoint agg_scope');
  let whole: unknown;
  try {
    await session.query('drop table agg_computed');
    await session.query(stageWhole, params as unknown[]);
    await session.query('release savepoint agg_scope');
  } catch (err) {
    await session.query('rollback to savepoint agg_scope');
    if (!isRowError(err)) throw err;
    whole = err;
  }`,
  },
];
