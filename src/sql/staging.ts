/**
 * Where a run stages its computed and failed combinations inside its write transaction:
 * temporary tables (`agg_computed`, `agg_failed`, dropped at commit) on a plain server and
 * PGlite; on Citus, tables distributed like features_topic_daily and colocated with it
 * (created by `migrate --distribute`, citus.ts), because Citus cannot join a temporary table
 * with distributed ones, and a colocated table keeps the stale-row deletion and the upsert on
 * the workers, shard by shard. A run's rows there are visible only to its own transaction,
 * which deletes them again before it commits (clearStaging): between runs they are empty.
 */
import { raw, sql, type Sql } from './tag.js';

export interface Staging {
  /** One row per computed combination, the output table's columns. */
  readonly computed: Sql;
  /** Combinations that could not be computed (user_id, topic_id, date), whose stored rows stay. */
  readonly failed: Sql;
  /**
   * A backfill's chunk of days, computed at once and written day by day (pipeline/range.ts):
   * the session's temporary table, or on Citus a distributed one where each backfill keeps the
   * rows of its own shard's students between its days' transactions.
   */
  readonly range: Sql;
  /** Temporary tables the transaction creates, or permanent distributed ones. */
  readonly temporary: boolean;
}

const temporaryStaging: Staging = Object.freeze({
  computed: raw('agg_computed'),
  failed: raw('agg_failed'),
  range: raw('agg_range'),
  temporary: true,
});
const distributedStaging: Staging = Object.freeze({
  computed: raw('aggregate_features_computed'),
  failed: raw('aggregate_features_failed'),
  range: raw('aggregate_features_range'),
  temporary: false,
});

/** The staging tables of a computation: distributed ones on Citus (see work.ts, `distributed`). */
export function stagingOf(work: { readonly distributed?: boolean | undefined }): Staging {
  return work.distributed ? distributedStaging : temporaryStaging;
}

/** The statements that empty the distributed staging tables of the run's own rows, before it commits; none for temporary ones. */
export function clearStaging(staging: Staging): Sql[] {
  return staging.temporary ? [] : [sql`delete from ${staging.computed}`, sql`delete from ${staging.failed}`];
}
