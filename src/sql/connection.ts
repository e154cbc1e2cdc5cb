/**
 * The statement that stops the job's own statements on a signal. It runs on a connection of
 * its own (the sessions are busy with the statements it stops), given every backend at once as
 * one `int[]` so that one round trip cancels them all.
 */
import { sql, type Sql } from './tag.js';

/** Cancels the statement running on each backend of `pids` (pg_cancel_backend; the sessions stay open). */
export function cancelBackends(pids: readonly number[]): Sql {
  return sql`select pg_cancel_backend(pid) from unnest(${pids}::int[]) as pid`;
}
