/**
 * The statements that open and close a transaction or a savepoint. They take no values: the
 * way a transaction begins or ends is one of a few constant texts, and a savepoint's name is an
 * identifier, quoted by `ident()` like every other name.
 */
import { ident, raw, sql, type Sql } from './tag.js';

/** How a transaction begins, e.g. `begin transaction isolation level repeatable read read only`. */
export type BeginStatement = 'begin' | 'begin transaction isolation level repeatable read read only';

/** How a transaction that went through ends: `rollback` for a read-only look. */
export type EndStatement = 'commit' | 'rollback';

/** The statement that begins a transaction as `begin` says. */
export function beginTransaction(begin: BeginStatement): Sql {
  return raw(begin);
}

/** The statement that ends a transaction as `end` says. */
export function endTransaction(end: EndStatement): Sql {
  return raw(end);
}

/** Undoes the transaction in progress (after an error). */
export const rollback = sql`rollback`;

/** Sets the savepoint `name`. */
export function savepoint(name: string): Sql {
  return sql`savepoint ${ident(name)}`;
}

/** Undoes what was done since the savepoint `name`; the transaction goes on. */
export function rollbackToSavepoint(name: string): Sql {
  return sql`rollback to savepoint ${ident(name)}`;
}

/** Keeps what was done since the savepoint `name` and forgets the savepoint. */
export function releaseSavepoint(name: string): Sql {
  return sql`release savepoint ${ident(name)}`;
}
