/**
 * Ranges in one pass (the backfill): the days of a range are computed a chunk of days at a
 * time by the daily run's own compute statement, with the chunk as its window, into the range
 * staging table (a temporary table; on Citus the distributed aggregate_features_range, where
 * the run keeps only its own shard's rows); the days are then written and committed one by one
 * from it. The statement reads the chunk's attempts and the 27 days before it once, where
 * computing each day on its own read every attempt up to 28 times.
 *
 * The chunk's size bounds the server's memory for the median's sort: the planner's estimate
 * of the range's attempts per day against work_mem (times the processes a parallel sort may
 * use), at about 120 bytes a sorted attempt (measured: 117 MB for 1.0M). A chunk that does not
 * fit anyway spills to disk, slower but bounded. At least 7 days (the 27 days re-read before
 * each chunk stay a fraction of it), at most 63 (a chunk's staging table, and the work an
 * interruption loses, stay bounded). Node holds no rows.
 */
import type { Session } from '../database/db.js';
import { sql } from '../sql/tag.js';
import type { Window } from '../window.js';
import { workOf, type Computation, type Shard, type Work } from '../work.js';
import { isRowError } from './isolate/narrowing.js';

/** Bytes a window attempt takes in the median's sort (117 MB for 1.0M attempts, BENCHMARKS.md). */
export const sortBytesPerAttempt = 120;
export const minChunkDays = 7;
export const maxChunkDays = 63;

/** Days per chunk for `attemptsPerDay` attempts a day and `sortBytes` of sort memory. */
export function chunkDays(attemptsPerDay: number, sortBytes: number): number {
  if (!(attemptsPerDay > 0)) return maxChunkDays;
  const fit = Math.floor(sortBytes / sortBytesPerAttempt / attemptsPerDay);
  return Math.min(maxChunkDays, Math.max(minChunkDays, fit));
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

/**
 * The chunk size for a range: the planner's estimate of its attempts (EXPLAIN, nothing is
 * read) per day, against the session's work_mem and parallel workers.
 */
export async function planChunkDays(session: Session, computation: Computation, range: Window): Promise<number> {
  const estimate = await session.query<{ 'QUERY PLAN': unknown }>(
    sql`explain (format json) select 1 from ${computation.source}
        where completed_at >= to_timestamp(${range.startsAt}::float8) and completed_at < to_timestamp(${range.endsAt}::float8)`,
  );
  const plan = estimate.rows[0]?.['QUERY PLAN'];
  const parsed = (typeof plan === 'string' ? JSON.parse(plan) : plan) as [{ Plan: { 'Plan Rows': number } }] | undefined;
  const rows = parsed?.[0]?.Plan['Plan Rows'] ?? 0;
  const memory = await session.query<{ bytes: string }>(
    `select (pg_size_bytes(current_setting('work_mem'))
             * (1 + least(current_setting('max_parallel_workers_per_gather')::int, 2)))::text as bytes`,
  );
  return chunkDays(rows / Math.max(1, range.days), Number(memory.rows[0]!.bytes));
}

/**
 * Computes the chunk `span` into the staging table (replacing an earlier one). Returns false,
 * with nothing staged, when a row of the source raises: the caller then computes those days
 * one by one, where failures are narrowed down to the combinations they touch.
 */
export async function stageChunk(
  session: Session,
  computation: Computation,
  span: { since: string; anchor: string },
  shard: Shard,
): Promise<boolean> {
  const work = workOf(computation, span, shard);
  await dropStaged(session, work);
  try {
    await session.query(work.backend.staging.stageRange(work));
  } catch (err) {
    if (isRowError(err)) return false;
    throw err;
  }
  for (const statement of work.backend.staging.indexRange) await session.query(statement);
  return true;
}

/** Empties the range staging table of this run's shard (see Staging.clearRange). */
export async function dropStaged(session: Session, work: Pick<Work, 'shard' | 'backend'>): Promise<void> {
  await session.query(work.backend.staging.clearRange(work.shard));
}

/**
 * Keeps the planner's statistics of features_topic_daily current while a backfill fills it:
 * each day's statements look up the stored rows of its combinations, and against statistics
 * that still describe a small (or empty) table PostgreSQL hashes the whole table for every
 * day instead of probing its primary key — 0.3 s a day once 300k rows were stored, growing
 * with every day written. ANALYZE (a sample of at most 30,000 rows) runs whenever the rows
 * inserted since the last one exceed the rows the statistics know of, so a few times per
 * backfill. Without the right to analyze the table PostgreSQL only warns, and nothing changes.
 */
export async function targetGrowth(session: Session): Promise<{ written(inserted: number): Promise<void> }> {
  const known = await session.query<{ rows: number }>(
    "select greatest(reltuples, 0)::float8 as rows from pg_class where oid = to_regclass('features_topic_daily')",
  );
  let rows = known.rows[0]?.rows ?? 0;
  let pending = 0;
  return {
    async written(inserted: number) {
      pending += inserted;
      if (pending <= Math.max(rows, 10_000)) return;
      await session.query('analyze features_topic_daily');
      rows += pending;
      pending = 0;
    },
  };
}
