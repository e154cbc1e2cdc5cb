/**
 * The run log (migration 002): one row per writing run. A run inserts its row before it
 * starts writing, in its own transaction, so a run that dies leaves `running` behind, and
 * fills in the outcome and counts when it ends.
 */
import type { Config } from './config.js';
import type { Session } from './db.js';
import { sqlState } from './errors.js';
import { jobVersion } from './version.js';
import type { Window } from './window.js';

export interface RunRecordStart {
  readonly runId: string;
  readonly command: string;
  readonly shard: { readonly index: number; readonly count: number };
  readonly window: Window;
  readonly config: Config;
  readonly startedAt: string;
  readonly extraFlags?: Record<string, unknown>;
}

/** Records that a run started. */
export async function startRunRecord(session: Session, run: RunRecordStart): Promise<void> {
  // This run holds its shard's writer lock, so a `running` record of the shard is a run that
  // died without recording its outcome (kill -9, lost node).
  await session.query(
    `update aggregate_features_runs
     set outcome = 'failed', error = 'abandoned: the process ended without recording an outcome'
     where outcome = 'running' and shard = $1 and run_id <> $2`,
    [`${run.shard.index}/${run.shard.count}`, run.runId],
  );
  const { config, window } = run;
  const flags = {
    lookback_days: config.lookbackDays,
    include_theta: config.includeTheta,
    improvement_mode: config.improvementMode,
    timezone: config.timezone,
    source: config.source.sql,
    ...run.extraFlags,
  };
  await session.query(
    `insert into aggregate_features_runs
       (run_id, job_version, command, shard, since, anchor, widened_from, flags, started_at)
     values ($1, $2, $3, $4, $5::date, $6::date, $7::date, $8::jsonb, $9::timestamptz)
     -- A run retried after a transient failure keeps its id and starts its row over.
     on conflict (run_id) do update
       set since = excluded.since, anchor = excluded.anchor, widened_from = excluded.widened_from,
           started_at = excluded.started_at, finished_at = null, outcome = 'running', error = null`,
    [
      run.runId,
      jobVersion,
      run.command,
      `${run.shard.index}/${run.shard.count}`,
      window.since,
      window.anchor,
      window.since === window.requestedSince ? null : window.requestedSince,
      JSON.stringify(flags),
      run.startedAt,
    ],
  );
}

export interface RunRecordEnd {
  readonly outcome: 'success' | 'failed';
  readonly combinations?: number;
  readonly inserted?: number;
  readonly updated?: number;
  readonly unchanged?: number;
  readonly deleted?: number;
  readonly failed?: number;
  readonly error?: string;
}

/** Records how a run ended. */
export async function finishRunRecord(session: Session, runId: string, end: RunRecordEnd): Promise<void> {
  await session.query(
    `update aggregate_features_runs
     set finished_at = clock_timestamp(), outcome = $2, combinations = $3, inserted = $4, updated = $5,
         unchanged = $6, deleted = $7, failed = $8, error = $9
     where run_id = $1`,
    [
      runId,
      end.outcome,
      end.combinations ?? null,
      end.inserted ?? null,
      end.updated ?? null,
      end.unchanged ?? null,
      end.deleted ?? null,
      end.failed ?? null,
      end.error ?? null,
    ],
  );
}

/** The anchor of the last successful daily run of a shard, if any. */
export async function lastSuccessAnchor(session: Session, shard: { index: number; count: number }): Promise<string | undefined> {
  const result = await session.query<{ anchor: string }>(
    `select anchor from aggregate_features_runs
     where outcome = 'success' and shard = $1 and command = 'run'
     order by anchor desc limit 1`,
    [`${shard.index}/${shard.count}`],
  );
  return result.rows[0]?.anchor;
}

/** What a verify found, for its run-log row. */
export interface VerifyRecordEntry {
  readonly runId: string;
  readonly shard: { readonly index: number; readonly count: number };
  readonly window: Window;
  readonly config: Config;
  readonly startedAt: string;
  readonly expectedRows: number;
  /** Rows that differ, are missing or are unexpected. */
  readonly drifted: number;
  /** The summary of the drift, e.g. "3 rows differ (differs=1, missing=1, unexpected=1)"; undefined when none. */
  readonly drift: string | undefined;
}

/**
 * Records a finished verify (command 'verify': outcome failed on drift), so that `report` can
 * say whether the last verify found drift. Best effort: a role that may only SELECT, or a
 * replica, cannot write the run log; then nothing is recorded and verify works as before.
 * Returns whether the row was written.
 */
export async function recordVerify(session: Session, entry: VerifyRecordEntry): Promise<boolean> {
  try {
    await session.query(
      `insert into aggregate_features_runs
         (run_id, job_version, command, shard, since, anchor, flags, started_at, finished_at, outcome, combinations, failed, error)
       values ($1, $2, 'verify', $3, $4::date, $5::date, $6::jsonb, $7::timestamptz, clock_timestamp(), $8, $9, $10, $11)`,
      [
        entry.runId,
        jobVersion,
        `${entry.shard.index}/${entry.shard.count}`,
        entry.window.since,
        entry.window.anchor,
        JSON.stringify({
          include_theta: entry.config.includeTheta,
          improvement_mode: entry.config.improvementMode,
          timezone: entry.config.timezone,
        }),
        entry.startedAt,
        entry.drift === undefined ? 'success' : 'failed',
        entry.expectedRows,
        entry.drifted,
        entry.drift ?? null,
      ],
    );
    return true;
  } catch (err) {
    const state = sqlState(err);
    // 42501: no INSERT privilege; 25006: a read-only transaction (a replica, default_transaction_read_only).
    if (state === '42501' || state === '25006') return false;
    throw err;
  }
}
