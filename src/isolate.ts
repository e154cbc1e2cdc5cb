/**
 * Fills agg_computed for the window, isolating failures that come from some rows only (a
 * source view that raises on one malformed row, a value out of range): the computation is
 * retried on halves of the window's students until the failing students are found, then per
 * topic and per day, so only the combinations the bad rows touch fail. The normal path is one
 * statement (CREATE TABLE … AS); the narrowing creates the table empty and fills it in
 * O(k · log n) statements for k bad students.
 */
import type { Config } from './config.js';
import type { Computation } from './job.js';
import type { Session } from './db.js';
import { messageOf, sqlState } from './errors.js';
import { withIdentifiers } from './identifiers.js';
import { createComputedTable, insertComputed, stageComputed, upsertComputed } from './sql/write.js';
import { listStudentCombinations, listStudents, scopedSource } from './sql/scope.js';
import type { Window } from './window.js';

export interface FailedCombination {
  readonly userId: string;
  readonly topicId: string;
  readonly date: string;
  readonly error: string;
}

/** Errors that come from the data of some rows, as opposed to the query, the server or time. */
const rowErrorClasses = ['21', '22', '23', '2F', '38', '39', '44', 'P0'];

/** True for an error that a smaller set of rows might not raise. */
export function isRowError(err: unknown): boolean {
  const state = sqlState(err);
  return state !== undefined && rowErrorClasses.includes(state.slice(0, 2));
}

interface Scope {
  readonly since: string;
  readonly anchor: string;
  readonly users: string[] | null;
  readonly topics: string[] | null;
}

/**
 * Creates agg_computed with the window's combinations and returns the combinations that could
 * not be computed. Runs inside the caller's transaction, using savepoints.
 * `params` are the computation's: since, anchor, time zone, shard count, shard index, ….
 */
export async function computeIsolated(
  session: Session,
  config: Config,
  work: Computation,
  window: Window,
  params: readonly unknown[],
  checkpoint: () => void,
): Promise<FailedCombination[]> {
  const wholeWindow = withIdentifiers(stageComputed(work.plan), work.identifiers);
  const scoped = withIdentifiers(insertComputed(work.plan), {
    ...work.identifiers,
    source: scopedSource(work.identifiers.source!, params.length + 1),
  });

  const attempt = async (statement: string, values: readonly unknown[]): Promise<unknown> => {
    checkpoint();
    await session.query('savepoint agg_scope');
    try {
      await session.query(statement, values as unknown[]);
      await session.query('release savepoint agg_scope');
      return undefined;
    } catch (err) {
      await session.query('rollback to savepoint agg_scope');
      if (!isRowError(err)) throw err;
      return err;
    }
  };
  const tryScope = (scope: Scope) => {
    const values = [...params];
    values[0] = scope.since;
    values[1] = scope.anchor;
    return attempt(scoped, [...values, scope.users, scope.topics]);
  };

  const whole = await attempt(wholeWindow, params);
  if (whole === undefined) return [];
  await session.query(withIdentifiers(createComputedTable(work.plan), work.identifiers), params as unknown[]);

  const students = await session.query<{ user_id: string }>(
    withIdentifiers(listStudents, { source: work.identifiers.source! }),
    params.slice(0, 5),
  );
  const failing: { user: string; error: unknown }[] = [];
  const pending: string[][] = [students.rows.map((r) => r.user_id)];
  while (pending.length > 0) {
    const group = pending.pop()!;
    if (group.length === 0) continue;
    const error = await tryScope({ since: window.since, anchor: window.anchor, users: group, topics: null });
    if (error === undefined) continue;
    if (group.length === 1) failing.push({ user: group[0]!, error });
    else pending.push(group.slice(0, group.length >> 1), group.slice(group.length >> 1));
  }

  const failed: FailedCombination[] = [];
  for (const { user, error: userError } of failing) {
    let combinations: { topic_id: string; date: string }[];
    try {
      await session.query('savepoint agg_list');
      combinations = (
        await session.query<{ topic_id: string; date: string }>(
          withIdentifiers(listStudentCombinations, { source: work.identifiers.source! }),
          [window.since, window.anchor, config.timezone, user],
        )
      ).rows;
      await session.query('release savepoint agg_list');
    } catch (err) {
      await session.query('rollback to savepoint agg_list');
      if (!isRowError(err)) throw err;
      // Even the keys cannot be read: the whole student fails, reported for the window.
      failed.push({ userId: user, topicId: '*', date: `${window.since}..${window.anchor}`, error: messageOf(userError) });
      continue;
    }
    const topics = [...new Set(combinations.map((c) => c.topic_id))];
    for (const topic of topics) {
      const topicError = await tryScope({ since: window.since, anchor: window.anchor, users: [user], topics: [topic] });
      if (topicError === undefined) continue;
      for (const { date } of combinations.filter((c) => c.topic_id === topic)) {
        const dayError = await tryScope({ since: date, anchor: date, users: [user], topics: [topic] });
        if (dayError !== undefined) failed.push({ userId: user, topicId: topic, date, error: messageOf(dayError) });
      }
    }
  }
  return failed;
}

export interface UpsertCounts {
  readonly inserted: number;
  readonly updated: number;
  readonly failures: FailedCombination[];
}

/**
 * Writes agg_computed into features_topic_daily (see upsertComputed). A row the table refuses
 * (a key too large for its index, say) fails only its combination, found by the same halving
 * as computeIsolated; its stored row is left as it was.
 */
export async function upsertIsolated(
  session: Session,
  runTimestamp: string,
  includeTheta: boolean,
  checkpoint: () => void,
): Promise<UpsertCounts> {
  let inserted = 0;
  let updated = 0;
  const attempt = async (users: string[] | null, topic: string | null, date: string | null): Promise<unknown> => {
    checkpoint();
    await session.query('savepoint agg_upsert');
    try {
      const result = await session.query<{ inserted: number; updated: number }>(upsertComputed, [
        runTimestamp,
        includeTheta,
        users,
        topic,
        date,
      ]);
      await session.query('release savepoint agg_upsert');
      inserted += result.rows[0]!.inserted;
      updated += result.rows[0]!.updated;
      return undefined;
    } catch (err) {
      await session.query('rollback to savepoint agg_upsert');
      if (!isRowError(err) && sqlState(err) !== '54000') throw err;
      return err;
    }
  };

  if ((await attempt(null, null, null)) === undefined) return { inserted, updated, failures: [] };
  const failures: FailedCombination[] = [];
  const users = await session.query<{ user_id: string }>('select distinct user_id from agg_computed order by 1');
  const pending: string[][] = [users.rows.map((r) => r.user_id)];
  while (pending.length > 0) {
    const group = pending.pop()!;
    if (group.length === 0 || (await attempt(group, null, null)) === undefined) continue;
    if (group.length > 1) {
      pending.push(group.slice(0, group.length >> 1), group.slice(group.length >> 1));
      continue;
    }
    const rows = await session.query<{ topic_id: string; date: string }>(
      'select topic_id, date::text as date from agg_computed where user_id = $1 order by 1, 2',
      [group[0]],
    );
    for (const { topic_id: topic, date } of rows.rows) {
      const error = await attempt(group, topic, date);
      if (error !== undefined) failures.push({ userId: group[0]!, topicId: topic, date, error: messageOf(error) });
    }
  }
  return { inserted, updated, failures };
}
