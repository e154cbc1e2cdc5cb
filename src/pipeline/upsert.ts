/**
 * Writes the staged combinations (agg_computed) into features_topic_daily, isolating the rows
 * the table refuses the same way isolate.ts isolates the rows the source cannot compute.
 */
import type { Session } from '../database/db.js';
import { messageOf, sqlState } from '../errors.js';
import type { Staging } from '../sql/staging.js';
import type { Sql } from '../sql/tag.js';
import { stagedCombinationsOf, stagedStudents } from '../sql/narrowing.js';
import { insertAllComputed, upsertComputed, type UpsertScope } from '../sql/write.js';
import { attemptRows, isRowError, type FailedCombination } from './isolate/narrowing.js';

export interface UpsertCounts {
  readonly inserted: number;
  readonly updated: number;
  readonly failures: FailedCombination[];
}

/** What upsertIsolated writes, and what the run knows of the window before it does. */
export interface UpsertTarget {
  /** computed_at of every row written. */
  readonly runTimestamp: string;
  /** Whether the theta columns are the job's (theta enabled). */
  readonly includeTheta: boolean;
  /** The staging tables the rows are read from (the backend's). */
  readonly staging: Staging;
  /** The window's first and last day. */
  readonly window: { readonly since: string; readonly anchor: string };
  /** The window held no stored rows of this shard (the shrink guard's reading): try a plain INSERT first. */
  readonly nothingStored?: boolean;
  /** The window's comparison with its stored rows (compare.ts), when it was made: write only what it labels new or changed. */
  readonly compared?: Sql | undefined;
  /** The rows were staged in the order of the pair hash (hashOrdered, compute.ts). */
  readonly hashOrdered?: boolean;
}

/** A row error, or a key too large for its index (54000): what fails rows rather than the run. */
const refusesRows = (err: unknown) => isRowError(err) || sqlState(err) === '54000';

/**
 * Writes agg_computed into features_topic_daily (see upsertComputed). A row the table refuses
 * (a key too large for its index, say) fails only its combination, found by the same halving
 * as computeIsolated; its stored row is left as it was. Into a window that held nothing, every
 * row is first inserted at once (insertAllComputed); if that raises (a unique violation: a row
 * appeared in between; a refused row), it is rolled back and the upsert below runs instead.
 */
export async function upsertIsolated(session: Session, target: UpsertTarget, checkpoint: () => void): Promise<UpsertCounts> {
  const { runTimestamp, includeTheta, staging, window } = target;
  if (target.nothingStored) {
    checkpoint();
    const result = await attemptRows(
      session,
      'agg_insert',
      () => session.query(insertAllComputed({ runTimestamp, staging, hashOrdered: target.hashOrdered ?? false })),
      refusesRows,
    );
    if ('ok' in result) {
      // An INSERT's command tag always carries its row count (pg and PGlite alike).
      if (result.ok.rowCount === null) throw new Error('the INSERT into features_topic_daily returned no row count');
      return { inserted: result.ok.rowCount, updated: 0, failures: [] };
    }
  }
  const computed = staging.computed;
  let inserted = 0;
  let updated = 0;
  const attempt = async (users: string[] | null, topic: string | null, date: string | null): Promise<unknown> => {
    checkpoint();
    const scope: UpsertScope = {
      runTimestamp,
      includeTheta,
      users,
      topic,
      date,
      staging,
      since: window.since,
      anchor: window.anchor,
      compared: target.compared,
    };
    const result = await attemptRows(
      session,
      'agg_upsert',
      () => session.query<{ inserted: number; updated: number }>(upsertComputed(scope)),
      refusesRows,
    );
    if ('error' in result) return result.error;
    inserted += result.ok.rows[0]!.inserted;
    updated += result.ok.rows[0]!.updated;
    return undefined;
  };

  if ((await attempt(null, null, null)) === undefined) return { inserted, updated, failures: [] };
  const failures: FailedCombination[] = [];
  const users = await session.query<{ user_id: string }>(stagedStudents(computed));
  const pending: string[][] = [users.rows.map((r) => r.user_id)];
  while (pending.length > 0) {
    const group = pending.pop()!;
    if (group.length === 0 || (await attempt(group, null, null)) === undefined) continue;
    if (group.length > 1) {
      pending.push(group.slice(0, group.length >> 1), group.slice(group.length >> 1));
      continue;
    }
    const rows = await session.query<{ topic_id: string; date: string }>(stagedCombinationsOf(computed, group[0]));
    for (const { topic_id: topic, date } of rows.rows) {
      const error = await attempt(group, topic, date);
      if (error !== undefined) failures.push({ userId: group[0]!, topicId: topic, date, error: messageOf(error) });
    }
  }
  return { inserted, updated, failures };
}
