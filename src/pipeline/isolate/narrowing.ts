/**
 * What the isolation's steps share (a failure confined to some rows fails only those
 * combinations): the failures they report, the errors that a smaller set of rows might not
 * raise, the savepointed runners of their statements, and the bound on how long and how far
 * they narrow before the source counts as broken wholesale.
 */
import type { Config } from '../../config/index.js';
import type { Session } from '../../database/db.js';
import { RunFailedError, messageOf, sqlState } from '../../errors.js';
import type { Sql } from '../../sql/tag.js';
import { inSavepoint } from '../../database/transaction.js';
import type { Work } from '../../work.js';

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

/**
 * Runs `statement` in the savepoint `savepoint`: its result, or an expected error (a row error
 * by default) as `{ error }` after the savepoint is rolled back; any other error is thrown.
 */
export async function attemptRows<T>(
  session: Session,
  savepoint: string,
  statement: () => Promise<T>,
  isExpected: (err: unknown) => boolean = isRowError,
): Promise<{ ok: T } | { error: unknown }> {
  try {
    return { ok: await inSavepoint(session, savepoint, statement) };
  } catch (err) {
    if (!isExpected(err)) throw err;
    return { error: err };
  }
}

/** How many students, or attempts, spread evenly over the window's, are probed before narrowing. */
export const probes = 16;

/** The narrowing of one window's failures, shared by its steps. */
export interface Narrowing {
  readonly session: Session;
  readonly config: Config;
  /** The window's work. */
  readonly work: Work;
  /** Runs a statement that fills agg_computed: undefined, or the row error it raised (rolled back). */
  attempt(statement: Sql): Promise<unknown>;
  /** Runs a listing: its rows, or the row error it raised. */
  list<T>(statement: Sql): Promise<T[] | { error: unknown }>;
  /**
   * Throws RunFailedError (broken wholesale) when at least `failingAtLeast` combinations fail
   * (Infinity: every probe failed) past AGG_MAX_FAILED, or when the budget's time is up.
   */
  checkBudget(failingAtLeast: number, error: unknown): void;
  /** The students of the window, for the message of a source that fails for every probe. */
  studentCount: number;
}

/** A narrowing of `work` on `session`, its budget starting now; `checkpoint` throws once the run is asked to stop. */
export function startNarrowing(session: Session, config: Config, work: Work, checkpoint: () => void): Narrowing {
  const deadline = Date.now() + config.isolation.budgetMs;
  const narrowing: Narrowing = {
    session,
    config,
    work,
    studentCount: 0,
    async attempt(statement) {
      checkpoint();
      const result = await attemptRows(session, 'agg_scope', () => session.query(statement));
      return 'error' in result ? result.error : undefined;
    },
    async list<T>(statement: Sql) {
      checkpoint();
      const result = await attemptRows(session, 'agg_list', async () => (await session.query<T & object>(statement)).rows);
      return 'error' in result ? { error: result.error } : result.ok;
    },
    checkBudget(failingAtLeast, error) {
      const overCount = failingAtLeast > config.isolation.maxFailed;
      if (!overCount && Date.now() <= deadline) return;
      const why = overCount
        ? failingAtLeast === Number.POSITIVE_INFINITY
          ? `every one of the ${probes} students it probed (spread over the window's ${narrowing.studentCount}) fails, so most of them do`
          : `more than ${config.isolation.maxFailed} combinations fail (AGG_MAX_FAILED)`
        : `narrowing the failures down took longer than ${config.isolation.budgetMs} ms (AGG_ISOLATION_BUDGET_MS)`;
      throw new RunFailedError(
        `the source ${config.source.sql} is broken wholesale: ${why}, e.g. ${messageOf(error)}; nothing of ${work.since}..${work.anchor} was written. Fix the source (or raise the bound) and re-run`,
        { cause: error },
      );
    },
  };
  return narrowing;
}
