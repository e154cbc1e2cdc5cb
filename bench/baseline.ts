/**
 * The original design, as a baseline (issue 5, scenario 3): what the Python prototype did,
 * from Node with `pg`. One query lists the window's combinations; then, per combination, one
 * query for its aggregates, one for its improvement counts (the formula in the client), and
 * one upsert that always rewrites the row — all in one transaction, committed at the end.
 *
 * It is far too slow for the whole window at the larger sizes, so it runs on a prefix of the
 * combinations (ordered by user, topic, day) until a time budget is spent, and is
 * extrapolated linearly: total = listing time + combinations × mean time per combination. The
 * per-combination work does not depend on how many combinations there are, so linear is fair.
 * It writes into its own copy of the output table, so the job's measurements are unaffected.
 */
import type pg from 'pg';
import { waitForQuiet } from './quiet.js';

export interface Baseline {
  readonly combinations: number;
  readonly sampled: number;
  readonly listMs: number;
  readonly perCombinationMs: number;
  /** Extrapolated wall time for every combination of the window. */
  readonly totalMs: number;
  readonly rowsPerSecond: number;
}

const listCombinations = `
select distinct student_id::text as user_id, topic_id::text as topic_id, (completed_at at time zone 'UTC')::date as day
from attempt
where completed_at >= ($1::date::timestamp at time zone 'UTC')
  and completed_at <  (($2::date + 1)::timestamp at time zone 'UTC')
  and student_id is not null and student_id::text <> '' and topic_id is not null and topic_id::text <> ''
order by 1, 2, 3`;

const aggregatesOfOne = `
select count(*)::int as attempts,
       count(*) filter (where correct)::int as correct,
       round(avg(response_time_ms) filter (where response_time_ms >= 0))::int as avg_time_ms,
       round((percentile_cont(0.5) within group (order by response_time_ms) filter (where response_time_ms >= 0))::numeric)::int as rt_median,
       count(*) filter (where hint_used)::int as hints,
       max(completed_at) as last_seen_at
from attempt
where student_id = $1 and topic_id = $2
  and completed_at >= ($3::date::timestamp at time zone 'UTC')
  and completed_at <  (($3::date + 1)::timestamp at time zone 'UTC')`;

const improvementOfOne = `
select count(correct) filter (where completed_at >= (($3::date - 13)::timestamp at time zone 'UTC'))::int as n_r,
       count(*) filter (where correct and completed_at >= (($3::date - 13)::timestamp at time zone 'UTC'))::int as c_r,
       count(correct) filter (where completed_at < (($3::date - 13)::timestamp at time zone 'UTC'))::int as n_p,
       count(*) filter (where correct and completed_at < (($3::date - 13)::timestamp at time zone 'UTC'))::int as c_p
from attempt
where student_id = $1 and topic_id = $2
  and completed_at >= (($3::date - 27)::timestamp at time zone 'UTC')
  and completed_at <  (($3::date + 1)::timestamp at time zone 'UTC')`;

const upsertOne = `
insert into features_topic_daily_baseline
  (user_id, topic_id, date, attempts, correct, avg_time_ms, rt_median, hints, improvement, last_seen_at, computed_at)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now())
on conflict (user_id, topic_id, date) do update set
  attempts = excluded.attempts, correct = excluded.correct, avg_time_ms = excluded.avg_time_ms,
  rt_median = excluded.rt_median, hints = excluded.hints, improvement = excluded.improvement,
  last_seen_at = excluded.last_seen_at, computed_at = excluded.computed_at`;

/** SPEC §6 in floating point, as the prototype computed it. */
function improvement(nR: number, cR: number, nP: number, cP: number): number | null {
  if (nR === 0 || nP === 0) return null;
  const pR = cR / nR;
  const pP = cP / nP;
  const exposure = Math.min(1, nR / 30);
  const penalty = 1 - Math.min(0.5, 1.96 * Math.sqrt((pR * (1 - pR)) / nR));
  return Math.round(Math.max(-1, Math.min(1, (pR - pP) * exposure * penalty)) * 1000) / 1000;
}

interface Aggregates {
  attempts: number;
  correct: number;
  avg_time_ms: number | null;
  rt_median: number | null;
  hints: number;
  last_seen_at: string;
}

/** Runs the per-combination design on a prefix of the window for at most budgetMs. */
export async function measureBaseline(
  client: pg.Client,
  since: string,
  anchor: string,
  budgetMs: number,
  workMem: string,
): Promise<Baseline> {
  if (workMem.toLowerCase() !== 'default') await client.query("select set_config('work_mem', $1, false)", [workMem]);
  await client.query('drop table if exists features_topic_daily_baseline');
  await client.query('create table features_topic_daily_baseline (like features_topic_daily including all)');
  await waitForQuiet();
  const t0 = performance.now();
  const list = await client.query<{ user_id: string; topic_id: string; day: string }>(listCombinations, [since, anchor]);
  const listMs = performance.now() - t0;
  const combinations = list.rows.length;
  let sampled = 0;
  const t1 = performance.now();
  await client.query('begin');
  for (const { user_id: user, topic_id: topic, day } of list.rows) {
    const agg = (await client.query<Aggregates>(aggregatesOfOne, [user, topic, day])).rows[0]!;
    const counts = (await client.query<{ n_r: number; c_r: number; n_p: number; c_p: number }>(improvementOfOne, [user, topic, day]))
      .rows[0]!;
    const value = improvement(counts.n_r, counts.c_r, counts.n_p, counts.c_p);
    await client.query(upsertOne, [
      user,
      topic,
      day,
      agg.attempts,
      agg.correct,
      agg.avg_time_ms,
      agg.rt_median,
      agg.hints,
      value,
      agg.last_seen_at,
    ]);
    sampled++;
    if (performance.now() - t1 > budgetMs) break;
  }
  await client.query('commit');
  const perCombinationMs = (performance.now() - t1) / Math.max(1, sampled);
  await client.query('drop table features_topic_daily_baseline');
  const totalMs = listMs + perCombinationMs * combinations;
  return { combinations, sampled, listMs, perCombinationMs, totalMs, rowsPerSecond: combinations / (totalMs / 1000) };
}

/** The index the per-combination design needs to be at its best; the job does not use it. */
export const baselineIndex = {
  create: 'create index if not exists bench_attempt_student_topic_idx on attempt (student_id, topic_id, completed_at)',
  drop: 'drop index if exists bench_attempt_student_topic_idx',
};
