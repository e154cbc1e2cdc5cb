/**
 * Retries of a whole run after a transient failure (an allow-list by SQLSTATE, never by
 * message text: connection loss, serialization failure, deadlock), with jittered exponential
 * backoff. A run is one transaction, so a retry starts from a clean slate on a fresh session; its lock went
 * with the old session.
 */
import { backoffMs, type Database, type Session } from './db.js';
import { isTransient, messageOf, sqlState } from '../errors.js';
import type { Emit } from '../observe/events.js';

/** Runs `work` on a session of `db`, again on a new session after a transient failure. */
export async function withRunRetries<T>(
  db: Database,
  attempts: number,
  emit: Emit,
  signal: AbortSignal | undefined,
  work: (session: Session) => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const session = await db.connect();
    try {
      const result = await work(session);
      session.release();
      return result;
    } catch (err) {
      // A session that failed mid-run may be broken: never hand it back to the pool.
      session.release(err instanceof Error ? err : new Error(messageOf(err)));
      if (!isTransient(err) || attempt >= attempts || signal?.aborted) throw err;
      const wait = 500 + backoffMs(attempt + 2);
      emit({
        type: 'message',
        level: 'warn',
        message: `Transient failure (${sqlState(err) ?? 'connection'}: ${db.errorText(err)}); retrying in ${Math.round(wait)} ms (attempt ${attempt + 1} of ${attempts})`,
        fields: { attempt: attempt + 1, attempts, sqlstate: sqlState(err) ?? null },
      });
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}
