/**
 * The one-writer lock: a session-level PostgreSQL advisory lock held on the run's
 * own connection for the whole run. Session locks need a real session: behind a
 * transaction-pooling proxy (PgBouncer in transaction mode) the lock and the work may land on
 * different server connections, so point the job at the server or a session-mode pool.
 */
import type { Session } from './db.js';
import { LockHeldError } from '../errors.js';
import { sql } from '../sql/tag.js';

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
  const held = async (key: number) => {
    const shard = sharded ? ` for shard ${shardIndex}/${shardCount}` : '';
    return new LockHeldError(
      `another session holds the write lock${shard}; nothing was written.${await describeHolders(session, key)} Wait for that run to finish; if it is no run of this job, end it with select pg_terminate_backend(pid) (docs/security.md, "The lock key")`,
    );
  };
  const first = await session.query<{ locked: boolean }>(
    sharded
      ? sql`select pg_try_advisory_lock_shared(${namespace}, ${writers}) as locked`
      : sql`select pg_try_advisory_lock(${namespace}, ${writers}) as locked`,
  );
  if (!first.rows[0]?.locked) throw await held(writers);
  const releaseWriters = async () => {
    await session.query(
      sharded ? sql`select pg_advisory_unlock_shared(${namespace}, ${writers})` : sql`select pg_advisory_unlock(${namespace}, ${writers})`,
    );
  };
  if (!sharded) return releaseWriters;
  const key = shardKey(shardIndex, shardCount);
  const second = await session.query<{ locked: boolean }>(sql`select pg_try_advisory_lock(${namespace}, ${key}) as locked`);
  if (!second.rows[0]?.locked) {
    await releaseWriters();
    throw await held(key);
  }
  return async () => {
    await session.query(sql`select pg_advisory_unlock(${namespace}, ${key})`);
    await releaseWriters();
  };
}

/**
 * Who holds the job's advisory lock `key`: pid, role, application, client and since when, from
 * pg_locks and pg_stat_activity (both readable by any role). Any role that can connect can take
 * an advisory lock, so the exit-3 message says who it is; empty if that cannot be read.
 */
async function describeHolders(session: Session, key: number): Promise<string> {
  try {
    const holders = await session.query<{
      pid: number;
      role: string | null;
      application: string | null;
      client: string | null;
      since: string | null;
    }>(
      sql`select l.pid, a.usename as role, a.application_name as application, host(a.client_addr) as client,
              to_char(a.backend_start at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') as since
         from pg_locks l left join pg_stat_activity a on a.pid = l.pid
        where l.locktype = 'advisory' and l.granted and l.pid <> pg_backend_pid()
          and l.database = (select oid from pg_database where datname = current_database())
          and l.classid = ${lockKeys.namespace}::int::oid and l.objid = ${key}::int::oid and l.objsubid = 2
        order by a.backend_start limit 3`,
    );
    if (holders.rows.length === 0) return '';
    const described = holders.rows.map(
      (h) =>
        `pid ${h.pid} (role ${h.role ?? '?'}, application ${JSON.stringify(h.application ?? '')}${h.client ? `, from ${h.client}` : ''}${h.since ? `, connected since ${h.since}` : ''})`,
    );
    return ` Held by ${described.join(', ')}.`;
  } catch {
    return '';
  }
}

/**
 * Holds the migrations key shared for a writing run, so runs and `migrate` exclude each other:
 * a migration (which takes the key exclusively) waits for running writers, and a writer that
 * starts during a migration exits 3 instead of checking the schema halfway and writing rows
 * the new version did not expect. Take it before checking the schema; release it at the end.
 */
export async function holdSchema(session: Session): Promise<() => Promise<void>> {
  const { namespace, migrations } = lockKeys;
  const taken = await session.query<{ locked: boolean }>(sql`select pg_try_advisory_lock_shared(${namespace}, ${migrations}) as locked`);
  if (!taken.rows[0]?.locked) {
    throw new LockHeldError(
      `a migration is being applied to this database (\`aggregate-features-daily migrate\`); nothing was written.${await describeHolders(session, migrations)} Re-run when it has finished; if it is no migration of this job, end it with select pg_terminate_backend(pid) (docs/security.md, "The lock key")`,
    );
  }
  return async () => {
    await session.query(sql`select pg_advisory_unlock_shared(${namespace}, ${migrations})`);
  };
}
