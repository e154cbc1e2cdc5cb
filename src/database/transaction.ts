/**
 * The one way the job opens a transaction or a savepoint: begin (or `savepoint`), run, commit
 * (or release); on any error roll back (to the savepoint) and rethrow. Written once, so no
 * path can leave a transaction open or a savepoint half-released.
 */
import type { Session } from './db.js';
import { ident } from '../sql/tag.js';

/** How a transaction begins, e.g. `begin transaction isolation level repeatable read read only`. */
export type BeginStatement = 'begin' | 'begin transaction isolation level repeatable read read only';

/**
 * Runs `work` in a transaction on `session`: commits when it resolves, rolls back and rethrows
 * when it throws. `rollback: 'always'` rolls back also on success (a read-only look).
 */
export async function inTransaction<T>(
  session: Session,
  work: () => Promise<T>,
  options: { begin?: BeginStatement; end?: 'commit' | 'rollback' } = {},
): Promise<T> {
  await session.query(options.begin ?? 'begin');
  try {
    const result = await work();
    await session.query(options.end ?? 'commit');
    return result;
  } catch (err) {
    await session.query('rollback').catch(() => undefined);
    throw err;
  }
}

/**
 * Runs `work` in the savepoint `name` of the transaction in progress: releases it when `work`
 * resolves, rolls back to it and rethrows when it throws, so the transaction goes on without
 * what `work` did. `keep: false` rolls back to it also on success (a probe).
 */
export async function inSavepoint<T>(session: Session, name: string, work: () => Promise<T>, options: { keep?: boolean } = {}): Promise<T> {
  const savepoint = ident(name).text;
  await session.query(`savepoint ${savepoint}`);
  let result: T;
  try {
    result = await work();
  } catch (err) {
    await session.query(`rollback to savepoint ${savepoint}`);
    throw err;
  }
  await session.query(options.keep === false ? `rollback to savepoint ${savepoint}` : `release savepoint ${savepoint}`);
  return result;
}
