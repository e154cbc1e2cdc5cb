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
import { abandonRunning, finishRun, insertRun, insertVerify, lastSuccessAnchor as lastSuccessAnchorOf } from '../sql/run-log.js';
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
  await session.query(abandonRunning(shard, run.runId));
  const { window } = run;
  const widenedFrom = window.since === window.requestedSince ? null : window.requestedSince;
  await session.query(
    insertRun({
      runId: run.runId,
      jobVersion,
      command: run.command,
      shard,
      since: window.since,
      anchor: window.anchor,
      widenedFrom,
      flags: JSON.stringify(run.flags),
      startedAt: run.startedAt,
    }),
  );
}

/** Records how a run ended. */
async function finishRunRecord(session: Session, end: RunClosed): Promise<void> {
  const c = end.counts;
  await session.query(
    finishRun({
      runId: end.runId,
      outcome: end.outcome,
      combinations: c?.combinations ?? null,
      inserted: c?.inserted ?? null,
      updated: c?.updated ?? null,
      unchanged: c?.unchanged ?? null,
      deleted: c?.deleted ?? null,
      failed: c?.failed ?? null,
      error: end.error ?? null,
    }),
  );
}

/** The anchor of the last successful daily run of a shard, if any. */
export async function lastSuccessAnchor(session: Session, shard: Shard): Promise<string | undefined> {
  const result = await session.query<{ anchor: string }>(lastSuccessAnchorOf(shardName(shard)));
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
    await session.query(
      insertVerify({
        runId: entry.runId,
        jobVersion,
        shard: shardName(entry.shard),
        since: entry.window.since,
        anchor: entry.window.anchor,
        flags: JSON.stringify(entry.flags),
        startedAt: entry.startedAt,
        outcome: entry.drift === undefined ? 'success' : 'failed',
        combinations: entry.expectedRows,
        failed: entry.drifted,
        error: entry.drift ?? null,
      }),
    );
    return true;
  } catch (err) {
    const state = sqlState(err);
    // 42501: no INSERT privilege; 25006: a read-only transaction (a replica, default_transaction_read_only).
    if (state === '42501' || state === '25006') return false;
    throw err;
  }
}
