/**
 * The statements of the run log (aggregate_features_runs, migration 002): a writing run's row as
 * it opens and as it closes, the anchor of the last successful daily run, and a verify's row.
 */
import { sql, type Sql } from './tag.js';

/** A writing run's row as it opens: `flags` as JSON text, `widenedFrom` null unless the window was widened. */
export interface RunRow {
  readonly runId: string;
  readonly jobVersion: string;
  readonly command: string;
  readonly shard: string;
  readonly since: string;
  readonly anchor: string;
  readonly widenedFrom: string | null;
  readonly flags: string;
  readonly startedAt: string;
}

/** How a writing run ended: the counts null when unknown (a run that failed before writing). */
export interface RunEnd {
  readonly runId: string;
  readonly outcome: string;
  readonly combinations: number | null;
  readonly inserted: number | null;
  readonly updated: number | null;
  readonly unchanged: number | null;
  readonly deleted: number | null;
  readonly failed: number | null;
  readonly error: string | null;
}

/** A finished verify's row: outcome failed when it found drift. */
export interface VerifyRow {
  readonly runId: string;
  readonly jobVersion: string;
  readonly shard: string;
  readonly since: string;
  readonly anchor: string;
  readonly flags: string;
  readonly startedAt: string;
  readonly outcome: string;
  readonly combinations: number;
  readonly failed: number;
  readonly error: string | null;
}

/**
 * Marks the shard's other `running` rows failed. The run that opens holds its shard's writer
 * lock, so such a row is a run that died without recording its outcome (kill -9, lost node).
 */
export function abandonRunning(shard: string, runId: string): Sql {
  return sql`
    update aggregate_features_runs
    set outcome = 'failed', error = 'abandoned: the process ended without recording an outcome'
    where outcome = 'running' and shard = ${shard} and run_id <> ${runId}`;
}

/** Inserts a run's row as `running`. */
export function insertRun(run: RunRow): Sql {
  return sql`
    insert into aggregate_features_runs
      (run_id, job_version, command, shard, since, anchor, widened_from, flags, started_at)
    values (${run.runId}, ${run.jobVersion}, ${run.command}, ${run.shard}, ${run.since}::date, ${run.anchor}::date,
            ${run.widenedFrom}::date, ${run.flags}::jsonb, ${run.startedAt}::timestamptz)
    -- A run retried after a transient failure keeps its id and starts its row over.
    on conflict (run_id) do update
      set since = excluded.since, anchor = excluded.anchor, widened_from = excluded.widened_from,
          started_at = excluded.started_at, finished_at = null, outcome = 'running', error = null`;
}

/**
 * Records how a run ended. finished_at is statement_timestamp(), not clock_timestamp(): the
 * same instant for a one-row statement, and Citus refuses volatile functions in an UPDATE of a
 * distributed or reference table, should the run log ever be made one (docs/scale-out.md).
 */
export function finishRun(end: RunEnd): Sql {
  return sql`
    update aggregate_features_runs
    set finished_at = statement_timestamp(), outcome = ${end.outcome}, combinations = ${end.combinations},
        inserted = ${end.inserted}, updated = ${end.updated}, unchanged = ${end.unchanged},
        deleted = ${end.deleted}, failed = ${end.failed}, error = ${end.error}
    where run_id = ${end.runId}`;
}

/** The anchor of the shard's last successful daily run (no row when none). */
export function lastSuccessAnchor(shard: string): Sql {
  return sql`
    select anchor from aggregate_features_runs
    where outcome = 'success' and shard = ${shard} and command = 'run'
    order by anchor desc limit 1`;
}

/** Inserts a finished verify's row (command 'verify'). */
export function insertVerify(row: VerifyRow): Sql {
  return sql`
      insert into aggregate_features_runs
        (run_id, job_version, command, shard, since, anchor, flags, started_at, finished_at, outcome, combinations, failed, error)
      values (${row.runId}, ${row.jobVersion}, 'verify', ${row.shard}, ${row.since}::date,
              ${row.anchor}::date, ${row.flags}::jsonb, ${row.startedAt}::timestamptz,
              statement_timestamp(), ${row.outcome}, ${row.combinations}, ${row.failed},
              ${row.error})`;
}
