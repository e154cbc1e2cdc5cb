/**
 * Citus, the distributed PostgreSQL extension (docs/scale-out.md). A run looks once at what it
 * is connected to: a plain server (or PGlite), or a Citus coordinator whose
 * features_topic_daily is distributed. Only on the latter does it use the Citus backend
 * (backend.ts, citusCoordinator): the computation keeps the distribution column as it is (so
 * Citus pushes it down whole, one task per shard), rows are staged in tables distributed like
 * the output table instead of temporary tables, and the dry run and verify compare per shard.
 * On a coordinator whose tables are still local the job runs as on a plain server.
 *
 * `migrate --distribute` sets it up: it distributes the job's tables colocated with the source
 * and creates the staging tables; what it must not do itself (distribute the platform's source
 * or another job's theta tables) it refuses, naming the statement to run.
 */
import type { Session } from './db.js';
import { ConfigError } from '../errors.js';
import type { QualifiedName } from '../sql/identifiers.js';
import { distributedStagingTables as citusStaging } from '../sql/staging.js';
import { raw, sql } from '../sql/tag.js';

/** A staging table of computed rows: the output table's columns. */
const createComputedLike = (table: string) =>
  sql`
create table if not exists ${raw(table)} (
  user_id text not null, topic_id text not null, date date not null,
  attempts int, correct int, avg_time_ms int, rt_median int, hints int, last_seen_at timestamptz,
  theta_estimate numeric(6,3), theta_sd numeric(6,3), improvement numeric(6,3)
)`;

const createFailed = sql`
create table if not exists ${raw(citusStaging.failed)} (user_id text not null, topic_id text, date date)`;

/**
 * The session setting of a run on Citus: by default Citus lets only one multi-shard
 * modification per shard run at a time (`citus.enable_deadlock_prevention`), so a second
 * `--shard` process waited for the first one's whole write transaction (measured; it could
 * also reach the lock timeout). The job's shards write disjoint users, so there is no
 * deadlock to prevent: the run turns the setting off for its own session.
 */
const allowConcurrentShards = sql`select set_config('citus.enable_deadlock_prevention', 'off', false)`;

async function hasCitus(session: Session): Promise<boolean> {
  const found = await session.query<{ present: boolean }>(
    sql`select exists (select 1 from pg_extension where extname = 'citus') as present`,
  );
  return found.rows[0]?.present ?? false;
}

interface Distribution {
  /** The distribution column, or null for a reference table. */
  readonly column: string | null;
  readonly colocation: number;
}

/** How a table is distributed, or undefined for a local table (or one that does not exist). Only on Citus. */
async function distributionOf(session: Session, table: string): Promise<Distribution | undefined> {
  const result = await session.query<{ column: string | null; colocation: number }>(sql`
    select case when p.partmethod = 'h' then column_to_column_name(p.logicalrelid, p.partkey) end as column,
           p.colocationid as colocation
    from pg_dist_partition p where p.logicalrelid = to_regclass(${table})`);
  return result.rows[0];
}

/**
 * True on a Citus coordinator whose features_topic_daily is distributed; then the staging
 * tables must be there, colocated (ConfigError otherwise), and the run's session lets
 * concurrent shards overlap. False elsewhere.
 */
export async function detectDistributed(session: Session): Promise<boolean> {
  if (!(await hasCitus(session))) return false;
  const target = await distributionOf(session, 'features_topic_daily');
  if (target === undefined) return false;
  for (const table of Object.values(citusStaging)) {
    const staging = await distributionOf(session, table);
    if (staging?.colocation !== target.colocation) {
      throw new ConfigError(
        `features_topic_daily is distributed, but ${table} is missing or not colocated with it: run \`aggregate-features-daily migrate --distribute\``,
      );
    }
  }
  await session.query(allowConcurrentShards);
  return true;
}

/**
 * On Citus, a table the computation joins (a theta table) must be colocated with the output
 * table, or a reference table: a local table cannot be joined with distributed ones.
 * ConfigError naming the statement to run otherwise.
 */
export async function checkJoinable(session: Session, table: QualifiedName, column: string): Promise<void> {
  const target = await distributionOf(session, 'features_topic_daily');
  const own = await distributionOf(session, table.sql);
  if (own !== undefined && (own.column === null || own.colocation === target?.colocation)) return;
  throw new ConfigError(
    `${table.name} is ${own === undefined ? 'a local table' : 'distributed but not colocated with features_topic_daily'} on this Citus coordinator, where features_topic_daily is distributed: run ` +
      `\`select create_distributed_table('${table.sql}', '${column}', colocate_with => 'features_topic_daily')\` (or make it a reference table)`,
  );
}

/**
 * `migrate --distribute` on a Citus coordinator, after the migrations: distributes
 * features_topic_daily by user_id colocated with the source (which must be distributed by
 * student_id), creates and distributes the staging tables, and leaves the run log and the
 * migrations table local to the coordinator. Returns what it did, one line each (nothing when
 * all was done already); throws ConfigError naming the statement to run when the source is not
 * distributed by student.
 */
export async function distribute(session: Session, source: QualifiedName): Promise<string[]> {
  if (!(await hasCitus(session))) {
    throw new ConfigError('--distribute needs a Citus coordinator: this database has no citus extension (docs/scale-out.md)');
  }
  const from = await distributionOf(session, source.sql);
  if (from?.column !== 'student_id') {
    const what = from === undefined ? 'not distributed' : from.column === null ? 'a reference table' : `distributed by ${from.column}`;
    throw new ConfigError(
      `the source ${source.sql} is ${what}: distribute it by student first, \`select create_distributed_table('${source.sql}', 'student_id')\`, then run migrate --distribute again`,
    );
  }
  const done: string[] = [];
  const colocate = async (table: string) => {
    const current = await distributionOf(session, table);
    if (current?.colocation === from.colocation && current.column === 'user_id') return;
    if (current !== undefined) {
      throw new ConfigError(
        `${table} is already distributed, but not by user_id colocated with ${source.sql}: run \`select undistribute_table('${table}')\`, then migrate --distribute again`,
      );
    }
    await session.query(sql`select create_distributed_table(${table}, 'user_id', colocate_with => ${source.sql})`);
    done.push(`distributed ${table} by user_id, colocated with ${source.sql}`);
  };
  await colocate('features_topic_daily');
  await session.query(createComputedLike(citusStaging.computed));
  await colocate(citusStaging.computed);
  await session.query(createFailed);
  await colocate(citusStaging.failed);
  return done;
}

/** After a plain `migrate` on a Citus coordinator whose output table is still local: the next step. Undefined elsewhere. */
export async function distributeHint(session: Session): Promise<string | undefined> {
  if (!(await hasCitus(session))) return undefined;
  if ((await distributionOf(session, 'features_topic_daily')) !== undefined) return undefined;
  return 'This is a Citus coordinator and features_topic_daily is a local table: run `aggregate-features-daily migrate --distribute` to distribute it colocated with the source (docs/scale-out.md)';
}

/** True on a Citus coordinator where `table` is distributed or a reference table. */
export async function isDistributed(session: Session, table: QualifiedName): Promise<boolean> {
  return (await hasCitus(session)) && (await distributionOf(session, table.sql)) !== undefined;
}
