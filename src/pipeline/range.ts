/**
 * Ranges in one pass (the backfill): the days of a range are computed and written a chunk of
 * days at a time, each chunk as one window of the daily run's own transaction. Its compute
 * statement reads the chunk's attempts and the 27 days before it once, where computing each
 * day on its own read every attempt up to 28 times.
 *
 * The chunk's size is bounded by its attempts, not by the median's sort memory: a sort larger
 * than work_mem spills to temporary files, and that costs less than reading the 27 days before
 * each chunk once more. Measured at 10M attempts over 36 days (BENCHMARKS.md): the backfill in
 * one chunk took 77.5 s against 104.1 s in the two chunks that fitted 256MB, and 23.0 s
 * against 51.3 s in the six that fitted 64MB. So a chunk holds as many days as keep it under
 * 12M attempts by the planner's estimate (about 1.4 GB of sort spilled at most, a statement of
 * about a minute on two cores), at least 7 days (the 27 days re-read stay at most four times
 * the chunk's own) and at most 366, a year (a year of 3.6M attempts: 9.7 s in one chunk,
 * 15.2 s in six of 63 days). The attempts bound what an interruption loses and what one
 * transaction writes. Node holds no rows.
 */
import type { Session } from '../database/db.js';
import { estimateSourceRows } from '../sql/chunk.js';
import { analyzeTarget, knownTargetRows } from '../sql/statistics.js';
import type { Window } from '../window.js';
import type { Computation } from '../work.js';

/** The attempts (the planner's estimate) a chunk of days holds at most, unless that is under minChunkDays. */
export const maxChunkAttempts = 12_000_000;
export const minChunkDays = 7;
export const maxChunkDays = 366;

/** Days per chunk for `attemptsPerDay` attempts a day. */
export function chunkDays(attemptsPerDay: number): number {
  if (!(attemptsPerDay > 0)) return maxChunkDays;
  return Math.min(maxChunkDays, Math.max(minChunkDays, Math.floor(maxChunkAttempts / attemptsPerDay)));
}

/** Consecutive one-day windows grouped into chunks of at most `size` days. */
export function chunksOf(days: readonly Window[], size: number): Window[][] {
  const chunks: Window[][] = [];
  for (let i = 0; i < days.length; i += size) chunks.push(days.slice(i, i + size));
  return chunks;
}

/** The days a chunk spans. */
export function spanOf(chunk: readonly Window[]): { since: string; anchor: string } {
  return { since: chunk[0]!.since, anchor: chunk.at(-1)!.anchor };
}

/** The chunk size for a range: the planner's estimate of its attempts (EXPLAIN, nothing is read) per day. */
export async function planChunkDays(session: Session, computation: Computation, range: Window): Promise<number> {
  const estimate = await session.query<{ 'QUERY PLAN': unknown }>(estimateSourceRows(computation.source, range));
  const plan = estimate.rows[0]?.['QUERY PLAN'];
  const parsed = (typeof plan === 'string' ? JSON.parse(plan) : plan) as [{ Plan: { 'Plan Rows': number } }] | undefined;
  const rows = parsed?.[0]?.Plan['Plan Rows'] ?? 0;
  return chunkDays(rows / Math.max(1, range.days));
}

/**
 * Keeps the planner's statistics of features_topic_daily current while a backfill fills it:
 * each chunk's statements look up the stored rows of its combinations, and against statistics
 * that still describe a small (or empty) table PostgreSQL hashes the whole table for every
 * day instead of probing its primary key — 0.3 s a day once 300k rows were stored, growing
 * with every day written. ANALYZE (a sample of at most 30,000 rows) runs whenever the rows
 * inserted since the last one exceed the rows the statistics know of, so a few times per
 * backfill. Without the right to analyze the table PostgreSQL only warns, and nothing changes.
 */
export async function targetGrowth(session: Session): Promise<{ written(inserted: number): Promise<void> }> {
  const known = await session.query<{ rows: number }>(knownTargetRows);
  let rows = known.rows[0]?.rows ?? 0;
  let pending = 0;
  return {
    async written(inserted: number) {
      pending += inserted;
      if (pending <= Math.max(rows, 10_000)) return;
      await session.query(analyzeTarget);
      rows += pending;
      pending = 0;
    },
  };
}
