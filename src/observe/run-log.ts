/**
 * The run log (migration 002): one row per writing run, and one per verify. A consumer of the
 * run's events (events.ts): a run inserts its row when it opens (`run_opened`), before it
 * starts writing, in its own transaction, so a run that dies leaves `running` behind; the
 * outcome and counts are filled in when it closes (`run_closed`), with the first failed
 * combinations (`combination_failed`) named, so `report` can show them.
 */
import type { Config } from '../config/index.js';
import type { Session } from '../database/db.js';
import { sqlState } from '../errors.js';
import type { Consumer, RunClosed, RunOpened, VerifyRecorded } from './events.js';
import { sql } from '../sql/tag.js';
import { jobVersion } from '../version.js';
import { shardName, type Shard } from '../work.js';

/** The settings a writing run records in its row's flags. */
export function runFlags(config: Config, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    lookback_days: config.lookbackDays,
    include_theta: config.includeTheta,
    improvement_mode: config.improvementMode,
    timezone: config.timezone,
    source: config.source.sql,
    ...extra,
  };
}

/** The settings a verify records in its row's flags. */
export function verifyFlags(config: Config): Record<string, unknown> {
  return { include_theta: config.includeTheta, improvement_mode: config.improvementMode, timezone: config.timezone };
}

/** How many failed combinations a daily run's row names. */
const namedFailures = 5;

/**
 * The run log as a consumer of a run's events on `session` (the run's own: its writes take
 * part in nothing else). Its writes are awaited where the run publishes the event.
 */
export function runLogConsumer(session: Session): Consumer {
  let command: RunOpened['command'] | undefined;
  let failures: string[] = [];
  return (event) => {
    switch (event.type) {
      case 'run_opened':
        command = event.run.command;
        failures = [];
        return startRunRecord(session, event.run);
      case 'combination_failed':
        if (failures.length < namedFailures) failures.push(`user=${event.userId} topic=${event.topicId} date=${event.date}`);
        return;
      case 'run_closed': {
        const { counts } = event.run;
        // A daily run whose combinations failed names the first of them.
        const named =
          command === 'run' && event.run.error === undefined && counts !== undefined && counts.failed > 0
            ? `failed: ${failures.join('; ')}${counts.failed > failures.length ? '; …' : ''}`
            : event.run.error;
        return finishRunRecord(session, { ...event.run, error: named });
      }
      case 'verify_recorded':
        return recordVerify(session, event.verify).then(() => undefined);
      default:
        return;
    }
  };
}

/** Records that a run started. */
async function startRunRecord(session: Session, run: RunOpened): Promise<void> {
  const shard = shardName(run.shard);
  // This run holds its shard's writer lock, so a `running` record of the shard is a run that
  // died without recording its outcome (kill -9, lost node).
  await session.query(sql`
    update aggregate_features_runs
    set outcome = 'failed', error = 'abandoned: the process ended without recording an outcome'
    where outcome = 'running' and shard = ${shard} and run_id <> ${run.runId}`);
  const { window } = run;
  const widenedFrom = window.since === window.requestedSince ? null : window.requestedSince;
  await session.query(sql`
    insert into aggregate_features_runs
      (run_id, job_version, command, shard, since, anchor, widened_from, flags, started_at)
    values (${run.runId}, ${jobVersion}, ${run.command}, ${shard}, ${window.since}::date, ${window.anchor}::date,
            ${widenedFrom}::date, ${JSON.stringify(run.flags)}::jsonb, ${run.startedAt}::timestamptz)
    -- A run retried after a transient failure keeps its id and starts its row over.
    on conflict (run_id) do update
      set since = excluded.since, anchor = excluded.anchor, widened_from = excluded.widened_from,
          started_at = excluded.started_at, finished_at = null, outcome = 'running', error = null`);
}

/**
 * Records how a run ended. finished_at is statement_timestamp(), not clock_timestamp(): the
 * same instant for a one-row statement, and Citus refuses volatile functions in an UPDATE of a
 * distributed or reference table, should the run log ever be made one (docs/scale-out.md).
 */
async function finishRunRecord(session: Session, end: RunClosed): Promise<void> {
  const c = end.counts;
  await session.query(sql`
    update aggregate_features_runs
    set finished_at = statement_timestamp(), outcome = ${end.outcome}, combinations = ${c?.combinations ?? null},
        inserted = ${c?.inserted ?? null}, updated = ${c?.updated ?? null}, unchanged = ${c?.unchanged ?? null},
        deleted = ${c?.deleted ?? null}, failed = ${c?.failed ?? null}, error = ${end.error ?? null}
    where run_id = ${end.runId}`);
}

/** The anchor of the last successful daily run of a shard, if any. */
export async function lastSuccessAnchor(session: Session, shard: Shard): Promise<string | undefined> {
  const result = await session.query<{ anchor: string }>(sql`
    select anchor from aggregate_features_runs
    where outcome = 'success' and shard = ${shardName(shard)} and command = 'run'
    order by anchor desc limit 1`);
  return result.rows[0]?.anchor;
}

/**
 * Records a finished verify (command 'verify': outcome failed on drift), so that `report` can
 * say whether the last verify found drift. Best effort: a role that may only SELECT, or a
 * replica, cannot write the run log; then nothing is recorded and verify works as before.
 * Returns whether the row was written.
 */
async function recordVerify(session: Session, entry: VerifyRecorded): Promise<boolean> {
  try {
    await session.query(sql`
      insert into aggregate_features_runs
        (run_id, job_version, command, shard, since, anchor, flags, started_at, finished_at, outcome, combinations, failed, error)
      values (${entry.runId}, ${jobVersion}, 'verify', ${shardName(entry.shard)}, ${entry.window.since}::date,
              ${entry.window.anchor}::date, ${JSON.stringify(entry.flags)}::jsonb, ${entry.startedAt}::timestamptz,
              statement_timestamp(), ${entry.drift === undefined ? 'success' : 'failed'}, ${entry.expectedRows}, ${entry.drifted},
              ${entry.drift ?? null})`);
    return true;
  } catch (err) {
    const state = sqlState(err);
    // 42501: no INSERT privilege; 25006: a read-only transaction (a replica, default_transaction_read_only).
    if (state === '42501' || state === '25006') return false;
    throw err;
  }
}
