/**
 * The honest floor (issue 23): the floor of floor.ts made as low as PostgreSQL can make it, and
 * completed by the writes a run cannot avoid.
 *
 * Read: each floor statement is timed under PostgreSQL's own plan (floor.ts, with and without
 * JIT) and under two forced ones — hash aggregation off (a sort then GroupAggregate) and sorts
 * off (a HashAggregate wherever one is possible) — and the fastest of them counts, statement by
 * statement. The old floor took whatever plan PostgreSQL chose, which on some shapes is the
 * slower one, and so flattered the job.
 *
 * Write: a first run and a backfill must store their rows, so their honest floor adds one INSERT
 * of the job's rows (read back from `features_topic_daily` after the job wrote them) into an
 * empty copy of the table with the same indexes. A re-run must at least look at the window's
 * stored rows once, so its honest floor adds one scan of them.
 */
import type pg from 'pg';
import { measureFloor, measureRangeFloor, type Floor } from './floor.js';
import { waitForQuiet } from './quiet.js';
import { psqlTimed } from './server.js';
import { median } from './stats.js';

/** The forced plans tried besides PostgreSQL's own choice (JIT off, as the job's statements mostly run). */
export const forcedPlans: readonly { readonly label: string; readonly settings: Record<string, string> }[] = [
  { label: 'hashagg off', settings: { jit: 'off', enable_hashagg: 'off' } },
  { label: 'sort off', settings: { jit: 'off', enable_sort: 'off' } },
];

/** The read part of a daily run's honest floor: the fastest plan of (b) and of (c), each on its own. */
export interface BestRead {
  readonly aggregateMs: number;
  readonly countsMs: number;
  /** (b) + (c), each under its fastest plan. */
  readonly readMs: number;
  /** Which plan won for (b) and for (c), e.g. "(b) hashagg off, (c) default". */
  readonly plans: string;
}

type Watch = { monitor: pg.Client; database: string } | undefined;

const fastest = (candidates: { label: string; ms: number }[]) =>
  candidates.reduce((best, c) => (c.ms < best.ms ? c : best), candidates[0]!);

/**
 * Times the daily floor's (b) and (c) under the forced plans and returns, per statement, the
 * fastest of those and of the floors already measured under PostgreSQL's own plan (`measured`,
 * labelled: with JIT, without).
 */
export async function bestDailyRead(
  measured: { label: string; floor: Floor }[],
  url: string,
  since: string,
  anchor: string,
  workMem: string,
  reps: number,
  watch: Watch,
  table = 'attempt',
): Promise<BestRead> {
  const all = [...measured];
  for (const plan of forcedPlans)
    all.push({ label: plan.label, floor: await measureFloor(url, since, anchor, workMem, reps, watch, table, plan.settings) });
  const b = fastest(all.map((m) => ({ label: m.label, ms: m.floor.aggregateMs })));
  const c = fastest(all.map((m) => ({ label: m.label, ms: m.floor.countsMs })));
  return { aggregateMs: b.ms, countsMs: c.ms, readMs: b.ms + c.ms, plans: `(b) ${b.label}, (c) ${c.label}` };
}

/** The range floor (one GROUP BY) under the forced plans; the fastest of those and of `measured`. */
export async function bestRangeRead(
  measured: { label: string; ms: number }[],
  url: string,
  from: string,
  to: string,
  workMem: string,
  reps: number,
  table: string,
  watch: Watch,
): Promise<{ label: string; ms: number }> {
  const all = [...measured];
  for (const plan of forcedPlans)
    all.push({ label: plan.label, ms: (await measureRangeFloor(url, from, to, workMem, reps, table, watch, plan.settings)).ms });
  return fastest(all);
}

const day = (d: string) => `'${d.replace(/[^0-9-]/g, '')}'::date`;

/**
 * Times an INSERT of the stored rows of days [from, to] of `features_topic_daily` into an empty
 * copy of the table with the same indexes and constraints (a fresh one each repetition, created
 * untimed); the median, ms. The copy is dropped at the end.
 */
export async function measureWriteFloor(url: string, from: string, to: string, reps: number): Promise<number> {
  const preamble = ['drop table if exists bench_write_floor', 'create table bench_write_floor (like features_topic_daily including all)'];
  const insert = `insert into bench_write_floor select * from features_topic_daily where date between ${day(from)} and ${day(to)}`;
  const ms: number[] = [];
  try {
    for (let rep = 0; rep < reps; rep++) {
      await waitForQuiet();
      ms.push(...(await psqlTimed(url, preamble, [insert], 'afd-bench-floor')));
    }
  } finally {
    await psqlTimed(url, ['drop table if exists bench_write_floor'], []);
  }
  return median(ms);
}

/**
 * Times one scan of the stored rows of days [from, to] of `features_topic_daily` that reads
 * their values (an aggregate over the columns a re-run compares); the median, ms.
 */
export async function measureScanFloor(url: string, from: string, to: string, reps: number): Promise<number> {
  const scan = `select count(*), sum(attempts), sum(correct), sum(hints), sum(avg_time_ms), sum(rt_median), sum(improvement), max(last_seen_at), max(user_id), max(topic_id)
from features_topic_daily where date between ${day(from)} and ${day(to)}`;
  const ms: number[] = [];
  for (let rep = 0; rep < reps; rep++) {
    await waitForQuiet();
    ms.push(...(await psqlTimed(url, [], [scan], 'afd-bench-floor')));
  }
  return median(ms);
}

const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** "honest floor 1.23 s = read 0.90 s ((b) sort off, (c) default) + write 0.33 s", for a line's note. */
export function describeHonest(readMs: number, plans: string, extra: { label: string; ms: number }): string {
  return `honest floor ${secs(readMs + extra.ms)} = read ${secs(readMs)} (${plans}) + ${extra.label} ${secs(extra.ms)}`;
}
