/**
 * The daily run: check the schema and the source → take the writer lock → plan the window →
 * compute every combination in one statement → delete stale rows and upsert changed ones in
 * one transaction → record the run → report. All work happens in PostgreSQL on one session.
 */
import { randomUUID } from 'node:crypto';
import type { Config } from './config.js';
import type { Session } from './db.js';
import { ConfigError, RunStoppedError, messageOf } from './errors.js';
import { withIdentifiers, type QualifiedName } from './identifiers.js';
import { acquireWriterLock, holdSchema } from './lock.js';
import type { Emit } from './log.js';
import { checkSchema } from './migrate.js';
import { finishRunRecord, lastSuccessAnchor, startRunRecord } from './run-log.js';
import { computeIsolated, upsertIsolated } from './isolate.js';
import { checkSource } from './source.js';
import type { ComputePlan } from './sql/compute.js';
import { shrinkVerdict, type DayAttempts } from './shrink.js';
import { shrinkDays } from './sql/shrink.js';
import { countSkippedEstimates, countStored, createFailedTable, deleteStale, dryRunCounts } from './sql/write.js';
import { checkThetaTables, type ThetaTables } from './theta-tables.js';
import { planWindow, today, type Window } from './window.js';

export interface Shard {
  readonly index: number;
  readonly count: number;
}

export interface RunOptions {
  readonly date?: string | undefined;
  readonly dryRun?: boolean;
  readonly shard?: Shard;
  /**
   * Let a run whose source lost more of a day than the shrink guard allows (or is empty for the
   * window) delete the window's rows: a deliberate correction (--allow-shrink).
   */
  readonly allowShrink?: boolean;
  /** The older name of allowShrink (--allow-empty-source); either allows it. */
  readonly allowEmptySource?: boolean;
  /** Accept a --date after today in AGG_TIMEZONE (refused otherwise, exit 2). */
  readonly allowFuture?: boolean;
  /** At most this many extra days are added to heal missed runs (0 = never widen). */
  readonly maxCatchUpDays?: number;
  readonly runId?: string;
  /** Aborted by SIGTERM/SIGINT: the run stops at the next safe point and rolls back. */
  readonly signal?: AbortSignal;
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
export interface Computation {
  readonly plan: ComputePlan;
  readonly identifiers: Record<string, QualifiedName>;
  readonly theta: ThetaTables | undefined;
}

export function computation(config: Config, theta: ThetaTables | undefined, source: QualifiedName = config.source): Computation {
  if (theta === undefined) return { plan: {}, identifiers: { source }, theta };
  return {
    plan: { theta: { mirt: theta.mirt !== undefined, thetaMode: config.improvementMode === 'theta' } },
    identifiers: { source, theta: theta.estimates, ...(theta.mirt ? { mirt: theta.mirt } : {}) },
    theta,
  };
}

/**
 * Checks the source's contract (columns and types, exit 2 when broken) and the theta tables
 * when theta is enabled (exit 2 when missing), warns about what the checks found (a missing
 * lookup index, say) and returns what the run computes and reads.
 */
export async function prepareComputation(session: Session, config: Config, emit: Emit): Promise<Computation> {
  const source = await checkSource(session, config.source, { timezone: config.sourceTimezone });
  const work = computation(config, config.includeTheta ? await checkThetaTables(session) : undefined, source.relation);
  for (const message of [...source.warnings, ...(work.theta?.warnings ?? [])]) emit({ type: 'message', level: 'warn', message });
  return work;
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
  let releaseSchema: (() => Promise<void>) | undefined;
  try {
    if (!dryRun) releaseSchema = await holdSchema(session);
    await checkSchema(session);
    const work = await prepareComputation(session, config, emit);
    await applySessionSettings(session, config);
    if (options.date !== undefined && !options.allowFuture) {
      const current = await today(session, config.timezone);
      if (options.date > current) {
        throw new ConfigError(
          `--date ${options.date} is in the future (today is ${current} in ${config.timezone}): its attempts do not exist yet, and a run would delete the rows stored there; use --allow-future if you mean it`,
        );
      }
    }
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
    const { skippedEstimates, ...counts } = dryRun
      ? await dryRunWindow(session, config, work, { shard, allowShrink: allowsShrink(options) }, window, emit)
      : await writeWindow(session, config, work, { ...options, shard, runId }, window, emit);
    const durationMs = Date.now() - started;
    emit({ type: 'run_finished', processed: counts.combinations, failed: counts.failed, durationMs });
    return { runId, window, ...counts, durationMs, ...(skippedEstimates ? { skippedEstimates } : {}) };
  } finally {
    if (releaseLock) await releaseLock().catch(() => undefined);
    if (releaseSchema) await releaseSchema().catch(() => undefined);
  }
}

/** What writing (or dry-running) a window did to features_topic_daily. */
export interface Counts {
  combinations: number;
  inserted: number;
  updated: number;
  unchanged: number;
  deleted: number;
  failed: number;
  skippedEstimates?: SkippedEstimates | undefined;
}

/** True when the options let the shrink guard's refusal through (--allow-shrink or its older name). */
export function allowsShrink(options: { allowShrink?: boolean | undefined; allowEmptySource?: boolean | undefined }): boolean {
  return (options.allowShrink ?? false) || (options.allowEmptySource ?? false);
}

/** Throws RunStoppedError once the run was asked to stop (SIGTERM): the caller rolls back. */
function throwIfStopped(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new RunStoppedError(
      `stopped by ${String(signal.reason ?? 'a signal')} before the window was committed; nothing of it was written. Re-run the job`,
    );
  }
}

/** The parameters of computeSelect (and the statements built on it) for a window of a shard. */
export function computeParameters(config: Config, window: Window, shard: Shard): unknown[] {
  return [window.since, window.anchor, config.timezone, shard.count, shard.index];
}

/**
 * Session settings of a run: memory for sorts and hashes, bounds on every statement and lock
 * wait, and float output as the shortest exact text (the PostgreSQL 12+ default; set because
 * theta read from double precision columns is taken as that text, see sql/theta.ts).
 */
export async function applySessionSettings(session: Session, config: Config): Promise<void> {
  if (config.workMem !== undefined) await session.query("select set_config('work_mem', $1, false)", [config.workMem]);
  await session.query("select set_config('statement_timeout', $1, false)", [String(config.statementTimeoutMs)]);
  await session.query("select set_config('extra_float_digits', '1', false)");
  await session.query("select set_config('lock_timeout', $1, false)", [String(config.lockTimeoutMs)]);
  // A client killed mid-statement (kill -9) must not leave its statement, and with it the
  // writer lock, running on the server until it ends: check the client every 250 ms (PG 14+).
  await session.query(
    "select set_config('client_connection_check_interval', '250', false) where current_setting('server_version_num')::int >= 140000",
  );
}

function emitSkipped(emit: Emit, work: Computation, skipped: SkippedEstimates | undefined): void {
  if (skipped === undefined) return;
  emit({ type: 'theta_skipped', ...skipped, mirtFallback: work.theta?.mirt !== undefined });
}

async function dryRunWindow(
  session: Session,
  config: Config,
  work: Computation,
  options: { shard: Shard; allowShrink: boolean },
  window: Window,
  emit: Emit,
): Promise<Counts> {
  const params = computeParameters(config, window, options.shard);
  const result = await session.query<
    Omit<Counts, 'skippedEstimates'> & {
      skipped_student_topic_theta: number | null;
      skipped_mirt_ability: number | null;
      stored_rows: number;
      days: DayAttempts[];
    }
  >(withIdentifiers(dryRunCounts(work.plan), work.identifiers), [...params, work.theta !== undefined]);
  const {
    skipped_student_topic_theta: studentTopicTheta,
    skipped_mirt_ability: mirtAbility,
    stored_rows: storedRows,
    days,
    ...rest
  } = result.rows[0]!;
  const counts = { ...rest, failed: 0 };
  const skippedEstimates = work.theta ? { studentTopicTheta: studentTopicTheta ?? 0, mirtAbility: mirtAbility ?? 0 } : undefined;
  // The same verdict as a real run, from the same comparison: a dry run is a true rehearsal.
  const sourceEmpty = counts.combinations === 0;
  const refusal = options.allowShrink
    ? undefined
    : shrinkVerdict({ source: config.source, since: window.since, anchor: window.anchor, days, storedRows, sourceEmpty }, config.shrink);
  if (counts.combinations === 0 && counts.deleted === 0) {
    emit({ type: 'no_combinations', lookbackDays: window.days - 1 });
    return { ...counts, skippedEstimates };
  }
  emit({ type: 'run_started', combinations: counts.combinations, since: window.since, anchor: window.anchor, dryRun: true });
  if (counts.combinations > 0) emitSkipped(emit, work, skippedEstimates);
  emit({ type: 'dry_run_counts', ...counts });
  if (refusal) throw refusal;
  return { ...counts, skippedEstimates };
}

async function writeWindow(
  session: Session,
  config: Config,
  work: Computation,
  options: RunOptions & { shard: Shard; runId: string },
  window: Window,
  emit: Emit,
): Promise<Counts> {
  const runTimestamp = new Date().toISOString();
  await startRunRecord(session, { runId: options.runId, command: 'run', shard: options.shard, window, config, startedAt: runTimestamp });
  try {
    const target = {
      work,
      window,
      shard: options.shard,
      runTimestamp,
      allowShrink: allowsShrink(options),
      signal: options.signal,
    };
    // The first failed combinations go into the run log, so `report` can name them.
    const failedCombinations: string[] = [];
    const collect: Emit = (event) => {
      if (event.type === 'combination_failed' && failedCombinations.length < 5) {
        failedCombinations.push(`user=${event.userId} topic=${event.topicId} date=${event.date}`);
      }
      emit(event);
    };
    const counts = await writeWindowTransaction(session, config, target, collect, ({ combinations, emptyWindow, skippedEstimates }) => {
      if (emptyWindow) emit({ type: 'no_combinations', lookbackDays: window.days - 1 });
      if (combinations > 0) {
        emit({ type: 'run_started', combinations, since: window.since, anchor: window.anchor, dryRun: false });
        emitSkipped(emit, work, skippedEstimates);
      }
    });
    if (counts.combinations > 0 || counts.deleted > 0) emit({ type: 'rows_written', ...counts });
    await finishRunRecord(session, options.runId, {
      outcome: counts.failed > 0 ? 'failed' : 'success',
      ...counts,
      ...(counts.failed > 0
        ? { error: `failed: ${failedCombinations.join('; ')}${counts.failed > failedCombinations.length ? '; …' : ''}` }
        : {}),
    });
    return counts;
  } catch (err) {
    await finishRunRecord(session, options.runId, { outcome: 'failed', error: messageOf(err) }).catch(() => undefined);
    throw err;
  }
}

/** Where and how writeWindowTransaction writes. */
export interface WriteTarget {
  /** What is computed and read (see prepareComputation). */
  readonly work: Computation;
  readonly window: Window;
  readonly shard: Shard;
  /** computed_at of every row the transaction inserts or changes. */
  readonly runTimestamp: string;
  /** Let a source that shrank (or is empty) delete the window's stored rows (the shrink guard otherwise refuses). */
  readonly allowShrink: boolean;
  /** Aborted on SIGTERM: the transaction stops at its next safe point and rolls back. */
  readonly signal?: AbortSignal | undefined;
}

/**
 * Computes a window of a shard and writes it in one transaction: stage the computed rows,
 * refuse an empty source that would wipe stored rows, delete stale rows, upsert changed ones,
 * commit. Rolls back and rethrows on any error, so each window (the daily run's, or one day of
 * a backfill) is written entirely or not at all. `onStaged` runs inside the transaction once the
 * rows are computed (emptyWindow: no combinations and no stored rows).
 */
export async function writeWindowTransaction(
  session: Session,
  config: Config,
  target: WriteTarget,
  emit: Emit,
  onStaged?: (staged: { combinations: number; emptyWindow: boolean; skippedEstimates: SkippedEstimates | undefined }) => void,
): Promise<Counts> {
  const { window, shard, work } = target;
  const checkpoint = () => throwIfStopped(target.signal);
  try {
    await session.query('begin');
    const params = computeParameters(config, window, shard);
    await session.query(createFailedTable);
    const failures = await computeIsolated(session, config, work, window, params, checkpoint);
    if (failures.length > 0) {
      await session.query('insert into agg_failed select * from unnest($1::text[], $2::text[], $3::date[])', [
        failures.map((f) => f.userId),
        failures.map((f) => f.topicId),
        failures.map((f) => (f.date.includes('..') ? null : f.date)),
      ]);
      for (const f of failures) emit({ type: 'combination_failed', userId: f.userId, topicId: f.topicId, date: f.date, error: f.error });
    }
    checkpoint();
    await session.query('analyze agg_computed');
    const computed = (await session.query<{ n: number }>('select count(*)::int as n from agg_computed')).rows[0]!.n;
    const combinations = computed + failures.length;
    const shardParams = [window.since, window.anchor, shard.count, shard.index];
    const days = (await session.query<DayAttempts>(shrinkDays('agg_computed', 'agg_failed'), shardParams)).rows;
    const sourceEmpty = computed === 0 && failures.length === 0;
    const storedRows = sourceEmpty ? (await session.query<{ stored: number }>(countStored, shardParams)).rows[0]!.stored : 0;
    if (!target.allowShrink) {
      const refusal = shrinkVerdict(
        { source: config.source, since: window.since, anchor: window.anchor, days, storedRows, sourceEmpty },
        config.shrink,
      );
      if (refusal) throw refusal;
    }
    const emptyWindow = sourceEmpty && days.length === 0;
    let skippedEstimates: SkippedEstimates | undefined;
    if (work.theta) {
      const skipped = withIdentifiers(countSkippedEstimates({ mirt: work.theta.mirt !== undefined }), work.identifiers);
      const row = (await session.query<{ student_topic_theta: number; mirt_ability: number }>(skipped, [window.anchor, config.timezone]))
        .rows[0]!;
      skippedEstimates = { studentTopicTheta: row.student_topic_theta, mirtAbility: row.mirt_ability };
    }
    onStaged?.({ combinations, emptyWindow, skippedEstimates });
    checkpoint();
    const deleted = (await session.query<{ deleted: number }>(deleteStale, shardParams)).rows[0]!.deleted;
    checkpoint();
    const written = await upsertIsolated(session, target.runTimestamp, work.theta !== undefined, checkpoint);
    for (const f of written.failures)
      emit({ type: 'combination_failed', userId: f.userId, topicId: f.topicId, date: f.date, error: f.error });
    const counts = {
      combinations,
      inserted: written.inserted,
      updated: written.updated,
      unchanged: computed - written.inserted - written.updated - written.failures.length,
      deleted,
      failed: failures.length + written.failures.length,
      skippedEstimates,
    };
    if (config.debug) await emitDebugRows(session, emit);
    checkpoint();
    await session.query('commit');
    return counts;
  } catch (err) {
    await session.query('rollback').catch(() => undefined);
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
