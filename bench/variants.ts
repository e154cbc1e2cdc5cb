/**
 * Shapes and settings of the compute statement, measured against the shipped one on the same
 * data: each variant creates a temporary table the way the job creates `agg_computed` (CREATE
 * TABLE … AS; or INSERT … SELECT into an empty table where the variant says so), with the
 * same parameters and session settings, timed as the median of several runs, and checked row
 * for row against the shipped statement (EXCEPT ALL both ways must be empty).
 *
 * The shipped SQL is loaded from the build being measured (`<dist>/sql/compute.js`), never
 * from src/ directly, so this file measures exactly what runs. The first release's shape (one
 * GROUP BY over all 35 days read) is rebuilt from it by replacing its CTEs, so the two differ
 * only where the design changed.
 *
 * Why these variants (BENCHMARKS.md, "What EXPLAIN showed"): percentile_cont can only be
 * computed by a sorting GroupAggregate, and that sort is most of the run. The variants
 * separate the effects of the sort's size (one GROUP BY over 35 days vs the window's 8), of
 * its comparison (collate "C"), of memory (work_mem), of JIT and of parallel workers.
 */
import type pg from 'pg';
import { watchBackends } from './cpu.js';
import { waitForQuiet } from './quiet.js';
import { plainBackendOf, rawOf, sqlModule, statementText, symbolicWork } from './statements.js';
import { median } from './stats.js';

/** The compute SELECT (theta disabled) of a built CLI, and what the first release's rows need to be read by it. */
export interface ComputeSql {
  readonly statement: string;
  /**
   * Builds whose final SELECT reads `h.scaled` (the improvement in doubles, evaluated once a
   * row): its expression over columns n_r, c_r, n_p, c_p; undefined for builds before it.
   */
  readonly scaled: string | undefined;
}

/** The compute SELECT (theta disabled) of a built CLI. */
export async function loadComputeSql(cli: string): Promise<ComputeSql> {
  const raw = await rawOf(cli);
  const work = symbolicWork(raw, await plainBackendOf(cli));
  const compute = await sqlModule(cli, 'compute.js');
  const statement = statementText(compute, 'computeSelect', work);
  if (statement === undefined) throw new Error(`${cli}: sql/compute.js exports no computeSelect; update bench/variants.ts`);
  const counts = { nr: raw('n_r'), cr: raw('c_r'), np: raw('n_p'), cp: raw('c_p') };
  return { statement, scaled: statementText(compute, 'scaledAccuracy', counts) };
}

/** `sql` with `from` replaced by `to`; throws when `from` is missing (the shipped SQL changed). */
function edit(sql: string, from: string | RegExp, to: string): string {
  const found = typeof from === 'string' ? sql.includes(from) : from.test(sql);
  if (!found) throw new Error(`bench/variants.ts: the compute statement no longer contains ${String(from)}; update it`);
  return sql.replace(from, () => to);
}

/**
 * The CTEs of the first release (commit 2c6d68a), up to `halves`: one range scan and one GROUP
 * BY over the window and the 27 days before it, so every attempt read is sorted; the window's
 * aggregates are FILTERed to its days. Keys in the default collation.
 */
const firstReleaseCtes = `with attempts as (
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
  from attempts
  where $4::int = 1 or mod(hashtextextended(user_id, 0) & 2147483647, $4::int) = $5::int - 1
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
)`;

/** The first release's compute statement, rebuilt from the shipped one. */
export function firstRelease(compute: ComputeSql): string {
  const shipped = compute.statement;
  const scaled = compute.scaled === undefined ? '' : `, ${compute.scaled} as scaled`;
  // Since issue 14 the shipped statement ends its CTEs with `h`, the window's rows with their
  // halves (keys as text, sums as numeric), which the final SELECT reads.
  const withH = /with window_days as \([\s\S]*?\n\)\nselect h\.user_id/;
  if (withH.test(shipped))
    return edit(
      shipped,
      withH,
      `${firstReleaseCtes},
h as (
  select user_id, topic_id, day, attempts, correct, avg_time_ms, rt_median, hints, last_seen_at, n_r, c_r, n_p, c_p${scaled}
  from halves where day >= $1::date
)
select h.user_id`,
    );
  return edit(shipped, /with window_days as \([\s\S]*?range between '27 days' preceding and '14 days' preceding\)\n\)/, firstReleaseCtes);
}

export interface Variant {
  readonly name: string;
  readonly sql: string;
  /** How the table is filled: CREATE TABLE … AS, as the job does (default), or INSERT … SELECT into an empty one. */
  readonly stage?: 'create-as' | 'insert';
  /** Session settings for this variant only (set locally in its transaction). */
  readonly settings?: Record<string, string>;
}

/** The variants of the shipped compute statement. */
export function variantsOf(compute: ComputeSql): Variant[] {
  const shipped = compute.statement;
  const defaultCollation = shipped.replaceAll(' collate "C"', '').replaceAll(' collate "default"', '');
  const first = firstRelease(compute);
  return [
    { name: 'shipped', sql: shipped },
    { name: 'shipped, filled by INSERT … SELECT (no parallel workers)', sql: shipped, stage: 'insert' },
    { name: 'shipped, max_parallel_workers_per_gather 0', sql: shipped, settings: { max_parallel_workers_per_gather: '0' } },
    { name: 'shipped, jit off', sql: shipped, settings: { jit: 'off' } },
    { name: 'shipped, work_mem 4MB (server default)', sql: shipped, settings: { work_mem: '4MB' } },
    { name: 'shipped, work_mem 64MB', sql: shipped, settings: { work_mem: '64MB' } },
    { name: 'shipped, work_mem 1GB', sql: shipped, settings: { work_mem: '1GB' } },
    { name: 'shipped, keys in the default collation', sql: defaultCollation },
    { name: 'first release: one GROUP BY over 35 days, INSERT … SELECT', sql: first, stage: 'insert' },
    { name: 'first release, filled by CREATE TABLE … AS', sql: first },
    {
      name: 'first release + collate "C" keys',
      sql: edit(
        edit(first, 'select student_id::text as user_id,', 'select student_id::text collate "C" as user_id,'),
        'topic_id::text   as topic_id,',
        'topic_id::text collate "C" as topic_id,',
      ),
    },
  ];
}

export interface VariantResult {
  readonly name: string;
  readonly ms: number;
  readonly rows: number;
  /** Rows that differ from the shipped statement's (0 = identical). */
  readonly differing: number;
  /** Median CPU of the backend and its parallel workers, ms (NaN when not watched). */
  readonly cpuMs: number;
}

const withSource = (sql: string) => sql.replaceAll('{{source}}', '"attempt"');
const countDiffering = `
select count(*) as n from ((select * from bench_variant except all select * from bench_reference)
                           union all (select * from bench_reference except all select * from bench_variant)) d`;

/** Measures every variant; `params` as the compute statement's. */
export async function measureVariants(
  client: pg.Client,
  list: Variant[],
  params: unknown[],
  workMem: string,
  reps: number,
  log: (line: string) => void,
  watch?: { monitor: pg.Client; database: string },
): Promise<VariantResult[]> {
  const pid = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
  await client.query('drop table if exists bench_reference');
  await client.query(`create temporary table bench_reference as ${withSource(list[0]!.sql)}`, params);
  const results: VariantResult[] = [];
  for (const variant of list) {
    const times: number[] = [];
    const cpu: number[] = [];
    let rows = 0;
    let differing = 0;
    for (let rep = 0; rep < reps; rep++) {
      await waitForQuiet();
      await client.query('begin');
      try {
        if (workMem.toLowerCase() !== 'default') await client.query("select set_config('work_mem', $1, true)", [workMem]);
        for (const [name, value] of Object.entries(variant.settings ?? {}))
          await client.query('select set_config($1, $2, true)', [name, value]);
        if (variant.stage === 'insert') await client.query('create temporary table bench_variant (like bench_reference) on commit drop');
        const watcher = watch ? watchBackends(watch.monitor, { database: watch.database, pid }) : undefined;
        const t0 = performance.now();
        const staged =
          variant.stage === 'insert'
            ? await client.query(`insert into bench_variant ${withSource(variant.sql)}`, params)
            : await client.query(`create temporary table bench_variant on commit drop as ${withSource(variant.sql)}`, params);
        times.push(performance.now() - t0);
        cpu.push(watcher ? await watcher.stop() : NaN);
        rows = staged.rowCount ?? 0;
        if (rep === 0) differing = Number((await client.query<{ n: string }>(countDiffering)).rows[0]!.n);
      } finally {
        await client.query('rollback');
      }
    }
    const result = { name: variant.name, ms: median(times), rows, differing, cpuMs: median(cpu) };
    log(
      `  variant ${variant.name}: ${(result.ms / 1000).toFixed(2)} s (CPU ${(result.cpuMs / 1000).toFixed(2)} s), ${rows} rows, ${differing} differing`,
    );
    results.push(result);
  }
  await client.query('drop table bench_reference');
  return results;
}

/** A window, time zone and shard count on which the shipped statement must give the first release's rows. */
export interface EquivalenceCase {
  readonly since: string;
  readonly anchor: string;
  readonly timezone: string;
  readonly shards: number;
}

/**
 * Checks that the shipped statement computes exactly the first release's rows: the union of
 * its N shards against the first release's unsharded statement. Returns the number of
 * differing rows per case.
 */
export async function checkEquivalence(
  client: pg.Client,
  compute: ComputeSql,
  cases: EquivalenceCase[],
): Promise<{ label: string; rows: number; differing: number }[]> {
  const out: { label: string; rows: number; differing: number }[] = [];
  for (const c of cases) {
    await client.query('begin');
    try {
      const reference = `create temporary table bench_reference on commit drop as ${withSource(firstRelease(compute))}`;
      const staged = await client.query(reference, [c.since, c.anchor, c.timezone, 1, 1]);
      await client.query('create temporary table bench_variant (like bench_reference) on commit drop');
      for (let shard = 1; shard <= c.shards; shard++) {
        await client.query(`insert into bench_variant ${withSource(compute.statement)}`, [c.since, c.anchor, c.timezone, c.shards, shard]);
      }
      const differing = Number((await client.query<{ n: string }>(countDiffering)).rows[0]!.n);
      out.push({ label: `${c.since}…${c.anchor} ${c.timezone}, ${c.shards} shard(s)`, rows: staged.rowCount ?? 0, differing });
    } finally {
      await client.query('rollback');
    }
  }
  return out;
}
