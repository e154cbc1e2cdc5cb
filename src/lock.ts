/**
 * The one-writer lock (SPEC §7): a session-level PostgreSQL advisory lock held on the run's
 * own connection for the whole run. Session locks need a real session: behind a
 * transaction-pooling proxy (PgBouncer in transaction mode) the lock and the work may land on
 * different server connections, so point the job at the server or a session-mode pool.
 */
import type { Session } from './db.js';
import { LockHeldError } from './errors.js';

/** The advisory lock keys of this job: a namespace, then one key per purpose or shard. */
export const lockKeys = {
  /** 'afd1' as an int4: keeps the job's locks apart from other applications' locks. */
  namespace: 0x61666431,
  migrations: 0,
  /** Shard i of N locks key `runBase + hash(i, N)`, see writerKey. */
  runBase: 1,
} as const;

/** The lock key of a writer for shard `index` of `count` (1/1 for an unsharded run). */
export function writerKey(index: number, count: number): number {
  return lockKeys.runBase + (count === 1 ? 0 : count * 1000 + index);
}

/**
 * Takes the writer lock of a shard on this session or throws LockHeldError (exit 3). The lock
 * is released when the session ends, also when the process is killed.
 */
export async function acquireWriterLock(session: Session, shardIndex = 1, shardCount = 1): Promise<() => Promise<void>> {
  const key = writerKey(shardIndex, shardCount);
  const result = await session.query<{ locked: boolean }>('select pg_try_advisory_lock($1, $2) as locked', [lockKeys.namespace, key]);
  if (!result.rows[0]?.locked) {
    const shard = shardCount === 1 ? '' : ` for shard ${shardIndex}/${shardCount}`;
    throw new LockHeldError(
      `another aggregate-features-daily run holds the write lock${shard}; nothing was written. Wait for it to finish (see pg_locks where locktype = 'advisory')`,
    );
  }
  return async () => {
    await session.query('select pg_advisory_unlock($1, $2)', [lockKeys.namespace, key]);
  };
}
