/**
 * Where a run stages its computed and failed combinations inside its write transaction, and
 * the statements that create, fill and empty those tables: temporary tables (`agg_computed`,
 * `agg_failed`, `agg_compared`, dropped at commit) on a plain server and PGlite; on Citus, tables distributed
 * like features_topic_daily and colocated with it (created by `migrate --distribute`,
 * database/citus.ts), because Citus cannot join a temporary table with distributed ones, and
 * a colocated table keeps the stale-row deletion and the upsert on the workers, shard by
 * shard. A run's rows there are visible only to its own transaction, which deletes them again
 * before it commits (`clear`): between runs they are empty.
 *
 * The tables' names are written here and nowhere else. Which of the two a run uses is chosen
 * once, with the rest of its backend (database/backend.ts).
 */
import type { Staging, Work } from '../work.js';

export type { Staging } from '../work.js';
import { createCompared } from './compare.js';
import { computeSelect } from './compute.js';
import { raw, sql, type Sql } from './tag.js';

/** The names of the staging tables on Citus, which `migrate --distribute` creates and distributes. */
export const distributedStagingTables = {
  computed: 'aggregate_features_computed',
  failed: 'aggregate_features_failed',
} as const;

/** Computes combinations into the staging table `computed`. */
function insertInto(computed: Sql, work: Work): Sql {
  return sql`
insert into ${computed}
${computeSelect(work)}`;
}

/** The temporary tables' names. */
const agg = { computed: raw('agg_computed'), failed: raw('agg_failed'), compared: raw('agg_compared') };

/**
 * Temporary tables, dropped when the transaction ends. agg_computed is created by
 * CREATE TABLE … AS rather than INSERT … SELECT: PostgreSQL plans INSERT … SELECT without
 * parallel workers, CREATE TABLE … AS may use them (about 1.5× faster on 2 cores;
 * BENCHMARKS.md).
 */
export const temporaryStaging: Staging = Object.freeze({
  ...agg,
  createInTransaction: [
    sql`
create temporary table ${agg.failed} (user_id text, topic_id text, date date) on commit drop`,
    createCompared(agg.compared),
  ],
  stageComputed: (work: Work) => sql`
create temporary table ${agg.computed} on commit drop as
${computeSelect(work)}`,
  createComputedEmpty: (work: Work) => sql`${temporaryStaging.stageComputed(work)}
with no data`,
  analyzeComputed: [sql`analyze ${agg.computed}`],
  clear: [],
});

/** The distributed tables' names, as SQL. */
const aggregateFeatures = {
  computed: raw(distributedStagingTables.computed),
  failed: raw(distributedStagingTables.failed),
};

/** On Citus: the distributed tables, which exist; INSERT … SELECT runs on each shard. */
export const distributedStaging: Staging = Object.freeze({
  ...aggregateFeatures,
  createInTransaction: [],
  stageComputed: (work: Work) => insertInto(aggregateFeatures.computed, work),
  createComputedEmpty: () => undefined,
  analyzeComputed: [],
  clear: [sql`delete from ${aggregateFeatures.computed}`, sql`delete from ${aggregateFeatures.failed}`],
});

/** Computes combinations into the staging table (the narrowing path, on either kind). */
export function insertComputed(work: Work): Sql {
  return insertInto(work.backend.staging.computed, work);
}
