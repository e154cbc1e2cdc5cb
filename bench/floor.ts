/**
 * The floor (issue 5, scenario 2): what PostgreSQL itself needs to read and aggregate the
 * window, with the job's session settings and no writes, timed by psql.
 *
 * (a) count(*) of the window's attempts;
 * (b) the per-(student, topic, day) GROUP BY with every aggregate of a row (README, What it computes), median included,
 *     over the window's days;
 * (c) per-(student, topic, day) answered and correct counts over the 27 days before the
 *     window plus the window (all the improvement index reads).
 * floor = (b) + (c).
 *
 * (b) and (c) are wrapped in an outer aggregate that reads every output column: PostgreSQL
 * drops the unused columns of a subquery, and without that reference it would skip the
 * aggregates (and the median's sort) it is meant to measure. The wrapper costs one cheap
 * pass over the groups.
 */
import type pg from 'pg';
import { watchBackends } from './cpu.js';
import { psqlTimed } from './server.js';
import { waitForQuiet } from './quiet.js';
import { median } from './stats.js';

export interface Floor {
  readonly countMs: number;
  readonly aggregateMs: number;
  readonly countsMs: number;
  /** (b) + (c). */
  readonly floorMs: number;
  /** CPU of the backend (and any parallel workers) for (b) + (c), ms; NaN when not watched. */
  readonly floorCpuMs: number;
}

const workMemPreamble = (workMem: string) =>
  workMem.toLowerCase() === 'default' ? [] : [`set work_mem = '${workMem.replace(/[^0-9a-zA-Z]/g, '')}'`];
/** `set name = 'value'` for settings the floor runs with besides work_mem (jit off, say). */
const settingsPreamble = (settings: Record<string, string>) =>
  Object.entries(settings).map(([k, v]) => `set ${k.replace(/[^a-z_]/g, '')} = '${v.replace(/[^0-9a-zA-Z_.-]/g, '')}'`);

const day = (d: string) => `'${d.replace(/[^0-9-]/g, '')}'`;

const quotedZone = (timezone: string) => `'${timezone.replaceAll("'", "''")}'`;
const validKeys = `student_id is not null and student_id::text <> '' and topic_id is not null and topic_id::text <> ''`;

/**
 * One row per (student, topic, day) of `table` between two instants, with every aggregate of
 * a row (median included) and, with `answered`, the answered count the improvement index reads.
 */
function rowAggregates(table: string, tz: string, from: string, to: string, answered: boolean): string {
  return `
  select student_id::text as user_id, topic_id::text as topic_id, (completed_at at time zone ${tz})::date as day,
         count(*) as attempts,
         count(*) filter (where correct) as correct,${answered ? '\n         count(correct) as answered,' : ''}
         round(avg(response_time_ms) filter (where response_time_ms >= 0)) as avg_time_ms,
         round((percentile_cont(0.5) within group (order by response_time_ms) filter (where response_time_ms >= 0))::numeric) as rt_median,
         count(*) filter (where hint_used) as hints,
         max(completed_at) as last_seen_at
  from "${table}"
  where completed_at >= ${from} and completed_at < ${to} and ${validKeys}
  group by 1, 2, 3`;
}

/** The statements, with the window's dates as literals (psql has no bound parameters). */
export function floorStatements(since: string, anchor: string, timezone = 'UTC', table = 'attempt'): { a: string; b: string; c: string } {
  const tz = quotedZone(timezone);
  const start = `(${day(since)}::date::timestamp at time zone ${tz})`;
  const end = `((${day(anchor)}::date + 1)::timestamp at time zone ${tz})`;
  const readStart = `((${day(since)}::date - 27)::timestamp at time zone ${tz})`;
  const a = `select count(*) from "${table}" where completed_at >= ${start} and completed_at < ${end}`;
  const b = `
select count(*), sum(attempts), sum(correct), sum(avg_time_ms), sum(rt_median), sum(hints), max(last_seen_at)
from (${rowAggregates(table, tz, start, end, false)}
) g`;
  const c = `
select count(*), sum(answered), sum(correct)
from (
  select student_id::text as user_id, topic_id::text as topic_id, (completed_at at time zone ${tz})::date as day,
         count(correct) as answered,
         count(*) filter (where correct) as correct
  from "${table}"
  where completed_at >= ${readStart} and completed_at < ${end} and ${validKeys}
  group by 1, 2, 3
) g`;
  return { a, b, c };
}

/**
 * Measures the floor `reps` times and returns the medians. Each statement runs in its own psql
 * session (application_name afd-bench-floor), so with `watch` its backend's CPU is measured
 * alone.
 */
export async function measureFloor(
  url: string,
  since: string,
  anchor: string,
  workMem: string,
  reps: number,
  watch?: { monitor: pg.Client; database: string },
  table = 'attempt',
  settings: Record<string, string> = {},
): Promise<Floor> {
  const { a, b, c } = floorStatements(since, anchor, 'UTC', table);
  const preamble = [...workMemPreamble(workMem), ...settingsPreamble(settings)];
  const applicationName = 'afd-bench-floor';
  const runs: { ms: number[]; cpu: number }[] = [];
  for (let rep = 0; rep < reps; rep++) {
    await waitForQuiet();
    const ms: number[] = [];
    let cpu = 0;
    for (const [i, statement] of [a, b, c].entries()) {
      const watcher = watch && i > 0 ? watchBackends(watch.monitor, { database: watch.database, applicationName }) : undefined;
      ms.push(...(await psqlTimed(url, preamble, [statement], applicationName)));
      if (watcher) cpu += await watcher.stop();
    }
    runs.push({ ms, cpu: watch ? cpu : NaN });
  }
  return {
    countMs: median(runs.map((r) => r.ms[0]!)),
    aggregateMs: median(runs.map((r) => r.ms[1]!)),
    countsMs: median(runs.map((r) => r.ms[2]!)),
    floorMs: median(runs.map((r) => r.ms[1]! + r.ms[2]!)),
    floorCpuMs: median(runs.map((r) => r.cpu)),
  };
}

/**
 * The floor of a range (backfill, verify over a range; issue 14): ONE GROUP BY per (student,
 * topic, day) over the range and the 27 days before it, with every aggregate of a row, median
 * included, and the answered count the improvement index reads — every attempt the range
 * needs, read and sorted once. Wrapped like (b) and (c).
 */
export function rangeFloorStatement(from: string, to: string, table = 'attempt', timezone = 'UTC'): string {
  const tz = quotedZone(timezone);
  const readStart = `((${day(from)}::date - 27)::timestamp at time zone ${tz})`;
  const end = `((${day(to)}::date + 1)::timestamp at time zone ${tz})`;
  return `
select count(*), sum(attempts), sum(correct), sum(answered), sum(avg_time_ms), sum(rt_median), sum(hints), max(last_seen_at)
from (${rowAggregates(table, tz, readStart, end, true)}
) g`;
}

/** Times the range floor `reps` times (psql, the job's work_mem); the median, and its CPU. */
export async function measureRangeFloor(
  url: string,
  from: string,
  to: string,
  workMem: string,
  reps: number,
  table: string,
  watch?: { monitor: pg.Client; database: string },
  settings: Record<string, string> = {},
): Promise<{ ms: number; cpuMs: number }> {
  const preamble = [...workMemPreamble(workMem), ...settingsPreamble(settings)];
  const applicationName = 'afd-bench-floor';
  const ms: number[] = [];
  const cpu: number[] = [];
  for (let rep = 0; rep < reps; rep++) {
    await waitForQuiet();
    const watcher = watch ? watchBackends(watch.monitor, { database: watch.database, applicationName }) : undefined;
    ms.push(...(await psqlTimed(url, preamble, [rangeFloorStatement(from, to, table)], applicationName)));
    cpu.push(watcher ? await watcher.stop() : NaN);
  }
  return { ms: median(ms), cpuMs: median(cpu) };
}
