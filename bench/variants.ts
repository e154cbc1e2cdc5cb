/**
 * Shapes and settings of the compute statement, measured against the shipped one on the same
 * data: each variant fills a temporary table the way the job fills `agg_computed` (INSERT …
 * SELECT into an empty table; or CREATE TABLE … AS where the variant says so), with the same
 * parameters and session settings, timed as the median of several runs, and checked row for
 * row against the shipped statement (EXCEPT ALL both ways must be empty).
 *
 * The SQL is loaded from the builds being measured (`<dist>/sql/compute.js` of the shipped
 * copy and of the proposal copy, see proposal/build.ts), never from src/ directly, so this
 * file measures exactly what runs and does not depend on src/'s TypeScript API.
 *
 * Why these variants (BENCHMARKS.md, "What EXPLAIN showed"): the shipped statement sorts
 * every attempt of the 35 days it reads by (user, topic, day), because percentile_cont can only
 * be computed by a sorting GroupAggregate; the sort is most of the run. The variants separate
 * the effects of the sort's size (split), of its comparison (collate "C"), of memory
 * (work_mem), of JIT and of parallel workers.
 */
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type pg from 'pg';
import { watchBackends } from './cpu.js';
import { waitForQuiet } from './quiet.js';
import { median } from './stats.js';

/** The compute SELECT (theta disabled) of a built CLI. */
export async function loadComputeSql(cli: string): Promise<string> {
  const module = (await import(pathToFileURL(join(dirname(resolve(cli)), 'sql', 'compute.js')).href)) as Record<string, unknown>;
  const compute = module.computeSelect;
  if (typeof compute === 'string') return compute;
  if (typeof compute === 'function') return (compute as (plan: object) => string)({});
  throw new Error(`${cli}: sql/compute.js exports no computeSelect; update bench/variants.ts`);
}

/** `sql` with `from` replaced by `to`; throws when `from` is missing (the shipped SQL changed). */
function edit(sql: string, from: string, to: string): string {
  if (!sql.includes(from))
    throw new Error(`bench/variants.ts: the compute statement no longer contains ${JSON.stringify(from)}; update it`);
  return sql.replace(from, to);
}

export interface Variant {
  readonly name: string;
  readonly sql: string;
  /** How the table is filled: INSERT … SELECT into an empty one, as the job does (default), or CREATE TABLE … AS. */
  readonly stage?: 'insert' | 'create-as';
  /** Session settings for this variant only (set locally in its transaction). */
  readonly settings?: Record<string, string>;
}

/** The variants, from the shipped and the proposed compute statements. */
export function variantsOf(shipped: string, proposal: string): Variant[] {
  const shippedCollateC = edit(
    edit(shipped, 'select student_id::text as user_id,', 'select student_id::text collate "C" as user_id,'),
    'topic_id::text   as topic_id,',
    'topic_id::text collate "C" as topic_id,',
  );
  const splitDefaultCollation = proposal.replaceAll(' collate "C"', '').replaceAll(' collate "default"', '');
  return [
    { name: 'shipped', sql: shipped },
    { name: 'shipped, jit off', sql: shipped, settings: { jit: 'off' } },
    { name: 'shipped, work_mem 4MB (server default)', sql: shipped, settings: { work_mem: '4MB' } },
    { name: 'shipped, work_mem 2GB', sql: shipped, settings: { work_mem: '2GB' } },
    { name: 'shipped + collate "C" keys', sql: shippedCollateC },
    { name: 'split (window aggregates ∪ hashed earlier days), default collation', sql: splitDefaultCollation },
    { name: '**proposal**: split + collate "C" keys', sql: proposal },
    { name: 'proposal, work_mem 64MB', sql: proposal, settings: { work_mem: '64MB' } },
    { name: 'proposal, work_mem 4MB (server default)', sql: proposal, settings: { work_mem: '4MB' } },
    { name: 'proposal, filled by CREATE TABLE … AS (parallel workers allowed)', sql: proposal, stage: 'create-as' },
    { name: 'shipped, filled by CREATE TABLE … AS', sql: shipped, stage: 'create-as' },
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
        if (variant.stage !== 'create-as') await client.query('create temporary table bench_variant (like bench_reference) on commit drop');
        const watcher = watch ? watchBackends(watch.monitor, { database: watch.database, pid }) : undefined;
        const t0 = performance.now();
        const staged =
          variant.stage === 'create-as'
            ? await client.query(`create temporary table bench_variant on commit drop as ${withSource(variant.sql)}`, params)
            : await client.query(`insert into bench_variant ${withSource(variant.sql)}`, params);
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

/** A window, time zone and shard count on which the proposal must give the shipped rows. */
export interface EquivalenceCase {
  readonly since: string;
  readonly anchor: string;
  readonly timezone: string;
  readonly shards: number;
}

/**
 * Checks that the proposal computes exactly the shipped rows: the union of its N shards
 * against the shipped unsharded statement. Returns the number of differing rows per case.
 */
export async function checkEquivalence(
  client: pg.Client,
  sql: { shipped: string; proposal: string },
  cases: EquivalenceCase[],
): Promise<{ label: string; rows: number; differing: number }[]> {
  const out: { label: string; rows: number; differing: number }[] = [];
  for (const c of cases) {
    await client.query('begin');
    try {
      const reference = `create temporary table bench_reference on commit drop as ${withSource(sql.shipped)}`;
      const staged = await client.query(reference, [c.since, c.anchor, c.timezone, 1, 1]);
      await client.query('create temporary table bench_variant (like bench_reference) on commit drop');
      for (let shard = 1; shard <= c.shards; shard++) {
        await client.query(`insert into bench_variant ${withSource(sql.proposal)}`, [c.since, c.anchor, c.timezone, c.shards, shard]);
      }
      const differing = Number((await client.query<{ n: string }>(countDiffering)).rows[0]!.n);
      out.push({ label: `${c.since}…${c.anchor} ${c.timezone}, ${c.shards} shard(s)`, rows: staged.rowCount ?? 0, differing });
    } finally {
      await client.query('rollback');
    }
  }
  return out;
}
