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
  /**
   * Every writer holds this key: an unsharded run exclusively, a shard run shared, so an
   * unsharded run and any shard exclude each other while the shards of one run coexist.
   */
  writers: 1,
  /** Shard i of N also holds `shardBase + N·1024 + i` exclusively (two runs of one shard exclude). */
  shardBase: 2,
} as const;

/** The exclusive lock key of shard `index` of `count`. */
export function shardKey(index: number, count: number): number {
  return lockKeys.shardBase + count * 1024 + index;
}

/**
 * Takes the writer lock of a shard (1/1 = unsharded) on this session or throws LockHeldError
 * (exit 3). The locks go with the session, also when the process is killed. Running shards of
 * different counts at once (1/2 next to 1/3) is not excluded: their students overlap; run one
 * sharding at a time.
 */
export async function acquireWriterLock(session: Session, shardIndex = 1, shardCount = 1): Promise<() => Promise<void>> {
  const { namespace, writers } = lockKeys;
  const sharded = shardCount > 1;
  const held = () => {
    const shard = sharded ? ` for shard ${shardIndex}/${shardCount}` : '';
    return new LockHeldError(
      `another aggregate-features-daily run holds the write lock${shard}; nothing was written. Wait for it to finish (see pg_locks where locktype = 'advisory')`,
    );
  };
  const first = await session.query<{ locked: boolean }>(
    sharded ? 'select pg_try_advisory_lock_shared($1, $2) as locked' : 'select pg_try_advisory_lock($1, $2) as locked',
    [namespace, writers],
  );
  if (!first.rows[0]?.locked) throw held();
  const releaseWriters = async () => {
    await session.query(sharded ? 'select pg_advisory_unlock_shared($1, $2)' : 'select pg_advisory_unlock($1, $2)', [namespace, writers]);
  };
  if (!sharded) return releaseWriters;
  const key = shardKey(shardIndex, shardCount);
  const second = await session.query<{ locked: boolean }>('select pg_try_advisory_lock($1, $2) as locked', [namespace, key]);
  if (!second.rows[0]?.locked) {
    await releaseWriters();
    throw held();
  }
  return async () => {
    await session.query('select pg_advisory_unlock($1, $2)', [namespace, key]);
    await releaseWriters();
  };
}

/**
 * Holds the migrations key shared for a writing run, so runs and `migrate` exclude each other:
 * a migration (which takes the key exclusively) waits for running writers, and a writer that
 * starts during a migration exits 3 instead of checking the schema halfway and writing rows
 * the new version did not expect. Take it before checking the schema; release it at the end.
 */
export async function holdSchema(session: Session): Promise<() => Promise<void>> {
  const { namespace, migrations } = lockKeys;
  const taken = await session.query<{ locked: boolean }>('select pg_try_advisory_lock_shared($1, $2) as locked', [namespace, migrations]);
  if (!taken.rows[0]?.locked) {
    throw new LockHeldError(
      'a migration is being applied to this database (`aggregate-features-daily migrate`); nothing was written. Re-run when it has finished',
    );
  }
  return async () => {
    await session.query('select pg_advisory_unlock_shared($1, $2)', [namespace, migrations]);
  };
}
