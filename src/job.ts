/**
 * The daily run: check the schema, the source and (with theta) the estimate tables → take the
 * writer lock → plan the window → compute every combination in one statement → delete stale
 * rows and upsert changed ones in one transaction → record the run → report. All work happens
 * in PostgreSQL on one session.
 */
import { randomUUID } from 'node:crypto';
import type { Config } from './config.js';
import type { Session } from './db.js';
import { RunFailedError, messageOf } from './errors.js';
import { withIdentifiers, type QualifiedName } from './identifiers.js';
import { acquireWriterLock } from './lock.js';
import type { Emit } from './log.js';
import { checkSchema } from './migrate.js';
import { finishRunRecord, lastSuccessAnchor, startRunRecord } from './run-log.js';
import { checkSource } from './source.js';
import type { ComputePlan } from './sql/compute.js';
import { countSkippedEstimates, countStored, deleteStale, dryRunCounts, stageComputed, upsertComputed } from './sql/write.js';
import { checkThetaTables, type ThetaTables } from './theta-tables.js';
import { planWindow, type Window } from './window.js';

export interface Shard {
  readonly index: number;
  readonly count: number;
}

export interface RunOptions {
  readonly date?: string | undefined;
  readonly dryRun?: boolean;
  readonly shard?: Shard;
  /** Let a run whose source is empty for the window delete the window's rows. */
  readonly allowEmptySource?: boolean;
  /** At most this many extra days are added to heal missed runs (0 = never widen). */
  readonly maxCatchUpDays?: number;
  readonly runId?: string;
}

export interface RunResult {
  readonly runId: string;
  readonly window: Window;
  readonly combinations: number;
  readonly inserted: number;
  readonly updated: number;
  readonly unchanged: number;
  readonly deleted: number;
  readonly failed: number;
  readonly durationMs: number;
  /**
   * With theta enabled: the invalid estimates (SPEC §5) in the history of the window's
   * (user, topic) pairs up to the end of the anchor day, by table (mirt_ability: of the
   * window's users; 0 when it does not exist). Undefined with theta disabled.
   */
  readonly skippedEstimates?: SkippedEstimates;
}

export interface SkippedEstimates {
  readonly studentTopicTheta: number;
  readonly mirtAbility: number;
}

/** What a run computes and reads: the variant of the computation and its tables. */
interface Computation {
  readonly plan: ComputePlan;
  readonly identifiers: Record<string, QualifiedName>;
  readonly theta: ThetaTables | undefined;
}

function computation(config: Config, theta: ThetaTables | undefined): Computation {
  if (theta === undefined) return { plan: {}, identifiers: { source: config.source }, theta };
  return {
    plan: { theta: { mirt: theta.mirt !== undefined, thetaMode: config.improvementMode === 'theta' } },
    identifiers: { source: config.source, theta: theta.estimates, ...(theta.mirt ? { mirt: theta.mirt } : {}) },
    theta,
  };
}

/**
 * Runs the daily job once on `session` (a dedicated connection: the writer lock is a session
 * lock). Throws a JobError (or a database error) when it cannot finish.
 */
export async function runDaily(session: Session, config: Config, options: RunOptions, emit: Emit): Promise<RunResult> {
  const started = Date.now();
  const runId = options.runId ?? randomUUID();
  const shard = options.shard ?? { index: 1, count: 1 };
  const dryRun = options.dryRun ?? false;
  let releaseLock: (() => Promise<void>) | undefined;
  try {
    await checkSchema(session);
    await checkSource(session, config.source);
    const work = computation(config, config.includeTheta ? await checkThetaTables(session) : undefined);
    for (const message of work.theta?.warnings ?? []) emit({ type: 'message', level: 'warn', message });
    await applySessionSettings(session, config);
    if (!dryRun) releaseLock = await acquireWriterLock(session, shard.index, shard.count);

    const window = await planWindow(session, {
      date: options.date,
      lookbackDays: config.lookbackDays,
      timezone: config.timezone,
      lastSuccessAnchor: options.date === undefined ? await lastSuccessAnchor(session, shard) : undefined,
      maxCatchUpDays: options.maxCatchUpDays ?? 0,
    });
    if (window.since !== window.requestedSince) {
      emit({
        type: 'message',
        level: 'warn',
        message: `Missed runs: the last successful run of this shard anchored before ${window.requestedSince}; widening the window to since=${window.since}`,
        fields: { requested_since: window.requestedSince, since: window.since },
      });
    }
    const computeParams = [window.since, window.anchor, config.timezone, shard.count, shard.index];
    const { skippedEstimates, ...counts } = dryRun
      ? await dryRunWindow(session, work, computeParams, window, emit)
      : await writeWindow(session, config, work, { ...options, shard, runId }, computeParams, window, emit);
    const durationMs = Date.now() - started;
    emit({ type: 'run_finished', processed: counts.combinations, failed: 0, durationMs });
    return { runId, window, ...counts, failed: 0, durationMs, ...(skippedEstimates ? { skippedEstimates } : {}) };
  } finally {
    if (releaseLock) await releaseLock().catch(() => undefined);
  }
}

interface Counts {
  combinations: number;
  inserted: number;
  updated: number;
  unchanged: number;
  deleted: number;
  skippedEstimates?: SkippedEstimates | undefined;
}

/**
 * Session settings of a run: memory for sorts and hashes, a bound on every statement, and
 * float output as the shortest exact text (the PostgreSQL 12+ default; set because theta
 * read from double precision columns is taken as that text, see sql/theta.ts).
 */
async function applySessionSettings(session: Session, config: Config): Promise<void> {
  if (config.workMem !== undefined) await session.query("select set_config('work_mem', $1, false)", [config.workMem]);
  await session.query("select set_config('statement_timeout', $1, false)", [String(config.statementTimeoutMs)]);
  await session.query("select set_config('extra_float_digits', '1', false)");
}

function emitSkipped(emit: Emit, work: Computation, skipped: SkippedEstimates | undefined): void {
  if (skipped === undefined) return;
  emit({ type: 'theta_skipped', ...skipped, mirtFallback: work.theta?.mirt !== undefined });
}

async function dryRunWindow(session: Session, work: Computation, params: unknown[], window: Window, emit: Emit): Promise<Counts> {
  const result = await session.query<
    Omit<Counts, 'skippedEstimates'> & { skipped_student_topic_theta: number | null; skipped_mirt_ability: number | null }
  >(withIdentifiers(dryRunCounts(work.plan), work.identifiers), [...params, work.theta !== undefined]);
  const { skipped_student_topic_theta: studentTopicTheta, skipped_mirt_ability: mirtAbility, ...counts } = result.rows[0]!;
  const skippedEstimates = work.theta ? { studentTopicTheta: studentTopicTheta ?? 0, mirtAbility: mirtAbility ?? 0 } : undefined;
  if (counts.combinations === 0 && counts.deleted === 0) {
    emit({ type: 'no_combinations', lookbackDays: window.days - 1 });
    return { ...counts, skippedEstimates };
  }
  emit({ type: 'run_started', combinations: counts.combinations, since: window.since, anchor: window.anchor, dryRun: true });
  if (counts.combinations > 0) emitSkipped(emit, work, skippedEstimates);
  emit({ type: 'dry_run_counts', ...counts });
  return { ...counts, skippedEstimates };
}

async function writeWindow(
  session: Session,
  config: Config,
  work: Computation,
  options: RunOptions & { shard: Shard; runId: string },
  params: unknown[],
  window: Window,
  emit: Emit,
): Promise<Counts> {
  const runTimestamp = new Date().toISOString();
  await startRunRecord(session, { runId: options.runId, command: 'run', shard: options.shard, window, config, startedAt: runTimestamp });
  try {
    await session.query('begin');
    await session.query(withIdentifiers(stageComputed(work.plan), work.identifiers), params);
    await session.query('analyze agg_computed');
    const combinations = (await session.query<{ n: number }>('select count(*)::int as n from agg_computed')).rows[0]!.n;
    const shardParams = [window.since, window.anchor, options.shard.count, options.shard.index];
    if (combinations === 0) {
      const stored = (await session.query<{ stored: number }>(countStored, shardParams)).rows[0]!.stored;
      if (stored > 0 && !options.allowEmptySource) {
        throw new RunFailedError(
          `the source ${config.source.sql} returned no attempts for ${window.since}..${window.anchor}, but features_topic_daily holds ${stored} rows there; nothing was deleted. If the source is really empty (not an upstream outage), re-run with --allow-empty-source`,
        );
      }
      if (stored === 0) emit({ type: 'no_combinations', lookbackDays: window.days - 1 });
    }
    let skippedEstimates: SkippedEstimates | undefined;
    if (work.theta) {
      const skipped = withIdentifiers(countSkippedEstimates({ mirt: work.theta.mirt !== undefined }), work.identifiers);
      const row = (await session.query<{ student_topic_theta: number; mirt_ability: number }>(skipped, [window.anchor, config.timezone]))
        .rows[0]!;
      skippedEstimates = { studentTopicTheta: row.student_topic_theta, mirtAbility: row.mirt_ability };
    }
    if (combinations > 0) {
      emit({ type: 'run_started', combinations, since: window.since, anchor: window.anchor, dryRun: false });
      emitSkipped(emit, work, skippedEstimates);
    }
    const deleted = (await session.query<{ deleted: number }>(deleteStale, shardParams)).rows[0]!.deleted;
    const written = (await session.query<{ inserted: number; updated: number }>(upsertComputed, [runTimestamp, work.theta !== undefined]))
      .rows[0]!;
    const counts = { combinations, ...written, unchanged: combinations - written.inserted - written.updated, deleted };
    if (config.debug) await emitDebugRows(session, emit);
    await session.query('commit');
    if (combinations > 0 || deleted > 0) emit({ type: 'rows_written', ...counts });
    await finishRunRecord(session, options.runId, { outcome: 'success', ...counts, failed: 0 });
    return { ...counts, skippedEstimates };
  } catch (err) {
    await session.query('rollback').catch(() => undefined);
    await finishRunRecord(session, options.runId, { outcome: 'failed', error: messageOf(err) }).catch(() => undefined);
    throw err;
  }
}

/** One [DEBUG] line per combination, read through a cursor so memory stays flat. */
async function emitDebugRows(session: Session, emit: Emit): Promise<void> {
  await session.query(
    `declare debug_rows no scroll cursor for
     select user_id, topic_id, date::text as date, attempts, correct, avg_time_ms, rt_median, hints,
            theta_estimate, theta_sd, improvement, last_seen_at
     from agg_computed order by user_id, topic_id, date`,
  );
  for (;;) {
    const batch = await session.query<Record<string, unknown>>('fetch 1000 from debug_rows');
    for (const row of batch.rows) {
      const { user_id: user, topic_id: topic, ...rest } = row;
      emit({ type: 'combination_debug', row: { user, topic, ...rest } });
    }
    if (batch.rows.length < 1000) break;
  }
  await session.query('close debug_rows');
}
