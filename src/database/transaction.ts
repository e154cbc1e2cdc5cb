/**
 * The one way the job opens a transaction or a savepoint: begin (or `savepoint`), run, commit
 * (or release); on any error roll back (to the savepoint) and rethrow. Written once, so no
 * path can leave a transaction open or a savepoint half-released.
 */
import type { Session } from './db.js';
import {
  beginTransaction,
  endTransaction,
  releaseSavepoint,
  rollback,
  rollbackToSavepoint,
  savepoint,
  type BeginStatement,
  type EndStatement,
} from '../sql/transaction.js';

/**
 * Runs `work` in a transaction on `session`: commits when it resolves, rolls back and rethrows
 * when it throws. `rollback: 'always'` rolls back also on success (a read-only look).
 */
export async function inTransaction<T>(
  session: Session,
  work: () => Promise<T>,
  options: { begin?: BeginStatement; end?: EndStatement } = {},
): Promise<T> {
  await session.query(beginTransaction(options.begin ?? 'begin'));
  try {
    const result = await work();
    await session.query(endTransaction(options.end ?? 'commit'));
    return result;
  } catch (err) {
    await session.query(rollback).catch(() => undefined);
    throw err;
  }
}

/**
 * Runs `work` in the savepoint `name` of the transaction in progress: releases it when `work`
 * resolves, rolls back to it and rethrows when it throws, so the transaction goes on without
 * what `work` did. `keep: false` rolls back to it also on success (a probe).
 */
export async function inSavepoint<T>(session: Session, name: string, work: () => Promise<T>, options: { keep?: boolean } = {}): Promise<T> {
  await session.query(savepoint(name));
  let result: T;
  try {
    result = await work();
  } catch (err) {
    await session.query(rollbackToSavepoint(name));
    throw err;
  }
  await session.query(options.keep === false ? rollbackToSavepoint(name) : releaseSavepoint(name));
  return result;
}
