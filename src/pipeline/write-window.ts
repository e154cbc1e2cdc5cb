/**
 * Writes one window of one shard in one transaction: stage the computed rows, refuse a source
 * that shrank (the shrink guard), delete stale rows, upsert changed ones, commit. Rolls back
 * on any error, so each window (the daily run's, or a chunk of days of a backfill) is written entirely
 * or not at all.
 */
import type { Config } from '../config/index.js';
import type { Session } from '../database/db.js';
import { RunStoppedError } from '../errors.js';
import type { Emit } from '../observe/events.js';
import { hashOrdered } from '../sql/compute.js';
import { shrinkDays } from '../sql/shrink.js';
import type { Staging } from '../sql/staging.js';
import { closeDebugRows, countStaged, declareDebugRows, fetchDebugRows, insertFailedCombinations } from '../sql/staged.js';
import { countSkippedEstimates, deleteStale } from '../sql/write.js';
import { analyzeCompared, compareWithStored, comparedCounts, deleteComparedStale } from '../sql/compare.js';
import type { Sql } from '../sql/tag.js';
import { inTransaction } from '../database/transaction.js';
import type { Window } from '../window.js';
import { workOf, type Computation, type Counts, type Shard, type SkippedEstimates, type Work } from '../work.js';
import { computeIsolated } from './isolate/compute.js';
import type { FailedCombination } from './isolate/narrowing.js';
import { checkDefinition } from './definition.js';
import type { DayAttempts } from './shrink.js';
import { judgeSource, rememberWindow, type Overrides, type SourceVerdict } from './source-memory.js';
import { refreshStatisticsFor } from './statistics.js';
import { upsertIsolated, type UpsertCounts } from './upsert.js';

/** Where and how writeWindowTransaction writes. */
export interface WriteTarget {
  /** What is computed and read (see prepareComputation). */
  readonly computation: Computation;
  readonly window: Pick<Window, 'since' | 'anchor' | 'days'>;
  readonly shard: Shard;
  /** computed_at of every row the transaction inserts or changes. */
  readonly runTimestamp: string;
  /** Let a source that shrank (or is empty) delete the window's stored rows (the shrink guard otherwise refuses). */
  readonly allowShrink: boolean;
  /** Publish a new day far below the same weekday of the weeks before (the newest-day check otherwise refuses). */
  readonly allowIncomplete?: boolean;
  /** New days before this one are not judged for completeness (a backfill's settled history); undefined: all are. */
  readonly judgeNewDaysFrom?: string | undefined;
  /** Refuse a day whose source is empty while it holds rows, whatever the thresholds (a backfill's days). */
  readonly emptyDaysRefused?: boolean;
  /** This write is part of `backfill --redefine`: an unfinished rebuild is not refused. */
  readonly rebuilding?: boolean;
  /** Aborted on SIGTERM: the transaction stops at its next safe point and rolls back. */
  readonly signal?: AbortSignal | undefined;
  /** The daily run's window: once staged, emit its first lines (run_started or no_combinations, the theta skips). */
  readonly announce?: boolean;
}

/** What a window's write did, with theta the invalid estimates it skipped. */
export interface WindowCounts extends Counts {
  readonly skippedEstimates?: SkippedEstimates | undefined;
}

/** What staging found, inside the transaction (emptyWindow: no combinations and no stored rows). */
export interface Staged {
  readonly combinations: number;
  readonly emptyWindow: boolean;
  readonly skippedEstimates: SkippedEstimates | undefined;
}

/** Throws RunStoppedError once the run was asked to stop (SIGTERM): the caller rolls back. */
function throwIfStopped(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new RunStoppedError(
      `stopped by ${String(signal.reason ?? 'a signal')} before the window was committed; nothing of it was written. Re-run the job`,
    );
  }
}

/** Computes a window of a shard and writes it in one transaction (see the module comment). */
export async function writeWindowTransaction(session: Session, config: Config, target: WriteTarget, emit: Emit): Promise<WindowCounts> {
  const work = workOf(target.computation, target.window, target.shard);
  const checkpoint = () => throwIfStopped(target.signal);
  // Before the transaction, in statements of their own: recording the definition locks its one
  // row, and held for the whole write it would make concurrent shards wait for each other.
  const { tableEmpty } = await checkDefinition(session, config, {
    record: target.runTimestamp,
    rebuilding: target.rebuilding ?? false,
  });
  await refreshStatisticsFor(session, target.window);
  return inTransaction(session, async () => {
    const { computed, failures } = await stage(session, config, work, emit, checkpoint);
    const combinations = computed + failures.length;
    const { nothingStored, verdict, pending } = await guardSource(
      session,
      config,
      work,
      { computed, failures: failures.length, tableEmpty },
      {
        allowShrink: target.allowShrink,
        allowIncomplete: target.allowIncomplete ?? false,
        judgeNewDaysFrom: target.judgeNewDaysFrom,
        emptyDaysRefused: target.emptyDaysRefused ?? false,
      },
      emit,
    );
    const emptyWindow = combinations === 0 && nothingStored;
    const skippedEstimates = await countSkipped(session, work);
    if (target.announce) announceStaged(emit, target, { combinations, emptyWindow, skippedEstimates });
    checkpoint();
    const { deleted, written } = await writeChanges(session, work, target, { nothingStored, pending }, checkpoint);
    emitFailures(emit, written.failures);
    await rememberWindow(session, target.shard, verdict, { allowShrink: target.allowShrink, runTimestamp: target.runTimestamp });
    const counts = {
      combinations,
      inserted: written.inserted,
      updated: written.updated,
      unchanged: computed - written.inserted - written.updated - written.failures.length,
      deleted,
      failed: failures.length + written.failures.length,
      skippedEstimates,
    };
    const staging = work.backend.staging;
    if (config.debug) await emitDebugRows(session, emit, staging);
    checkpoint();
    for (const statement of staging.clear) await session.query(statement);
    return counts;
  });
}

/**
 * Deletes the window's stale rows and upserts its new and changed ones. Where the comparison
 * (compare.ts) found nothing of a kind, its statement is left out: a re-run whose source did
 * not change writes nothing. Into a window that held nothing, every row is inserted at once.
 */
async function writeChanges(
  session: Session,
  work: Work,
  target: WriteTarget,
  found: { nothingStored: boolean; pending: Pending | undefined },
  checkpoint: () => void,
): Promise<{ deleted: number; written: UpsertCounts }> {
  const { nothingStored, pending } = found;
  const compared = pending?.compared;
  if (compared && !nothingStored && pending.stale + pending.changes > 0) {
    // Statistics for the statements that write; the comparison itself is planned alike without them.
    for (const statement of work.backend.staging.analyzeComputed) await session.query(statement);
    await session.query(analyzeCompared(compared));
  }
  const deleted = pending?.stale === 0 ? 0 : (await session.query<{ deleted: number }>(deleteStaleOf(work, compared))).rows[0]!.deleted;
  checkpoint();
  if (!nothingStored && pending?.changes === 0) return { deleted, written: { inserted: 0, updated: 0, failures: [] } };
  const written = await upsertIsolated(
    session,
    {
      runTimestamp: target.runTimestamp,
      includeTheta: work.theta !== undefined,
      staging: work.backend.staging,
      window: target.window,
      nothingStored,
      compared,
      hashOrdered: hashOrdered(work),
    },
    checkpoint,
  );
  return { deleted, written };
}

/** The daily run's first lines, inside the transaction once the rows are computed. */
function announceStaged(emit: Emit, target: WriteTarget, staged: Staged): void {
  const { window } = target;
  if (staged.emptyWindow) emit({ type: 'no_combinations', lookbackDays: window.days - 1 });
  if (staged.combinations > 0) {
    emit({ type: 'run_started', combinations: staged.combinations, since: window.since, anchor: window.anchor, dryRun: false });
    emitSkipped(emit, target.computation, staged.skippedEstimates);
  }
}

/** The theta_skipped event, when theta is enabled. */
export function emitSkipped(emit: Emit, computation: Computation, skipped: SkippedEstimates | undefined): void {
  if (skipped === undefined) return;
  emit({ type: 'theta_skipped', ...skipped, mirtFallback: computation.theta?.mirt !== undefined });
}

function emitFailures(emit: Emit, failures: readonly FailedCombination[]): void {
  for (const f of failures) emit({ type: 'combination_failed', userId: f.userId, topicId: f.topicId, date: f.date, error: f.error });
}

/** Stages the window into the staging tables (staging.ts): the computed combinations, and those that failed. */
async function stage(
  session: Session,
  config: Config,
  work: Work,
  emit: Emit,
  checkpoint: () => void,
): Promise<{ computed: number; failures: FailedCombination[] }> {
  const staging = work.backend.staging;
  for (const statement of staging.createInTransaction) await session.query(statement);
  const failures = await computeIsolated(session, config, work, checkpoint);
  if (failures.length > 0) {
    const users = failures.map((f) => f.userId);
    const topics = failures.map((f) => f.topicId);
    // A failure over several days ("since..anchor") covers every date: NULL.
    const dates = failures.map((f) => (f.date.includes('..') ? null : f.date));
    await session.query(insertFailedCombinations(staging.failed, { users, topics, dates }));
    emitFailures(emit, failures);
  }
  checkpoint();
  const computed = (await session.query<{ n: number }>(countStaged(staging.computed))).rows[0]!.n;
  return { computed, failures };
}

/**
 * What there is to write: stale rows to delete, rows to insert or update, and the table that
 * labels them (`compared`) where the window was compared with its stored rows.
 */
interface Pending {
  readonly stale: number;
  readonly changes: number;
  readonly compared: Sql | undefined;
}

/**
 * The shrink guard and the newest-day check (source-memory.ts): throws the refusal unless
 * allowed. Returns whether the window held no stored rows of this shard, the verdict whose
 * days are remembered after the write, and, where the window was compared with its stored rows
 * in one pass (compare.ts; not on Citus), what there is to write.
 */
async function guardSource(
  session: Session,
  config: Config,
  work: Work,
  staged: { computed: number; failures: number; tableEmpty: boolean },
  overrides: Overrides,
  emit: Emit,
): Promise<{ nothingStored: boolean; verdict: SourceVerdict; pending: Pending | undefined }> {
  const { days, pending } = await storedDays(session, work, {
    someFailed: staged.failures > 0,
    computed: staged.computed,
    tableEmpty: staged.tableEmpty,
  });
  const sourceEmpty = staged.computed === 0 && staged.failures === 0;
  const storedRows = days.reduce((sum, d) => sum + (d.rows ?? 0), 0);
  const verdict = await judgeSource(
    session,
    config,
    work,
    { days, storedRows, sourceEmpty, tableEmpty: staged.tableEmpty },
    overrides,
    emit,
  );
  if (verdict.refusal) throw verdict.refusal;
  return { nothingStored: storedRows === 0, verdict, pending };
}

/**
 * Each day's stored rows and attempts and the attempts the run leaves (the shrink guard's
 * reading), and, where the window is compared with its stored rows (compare.ts; not on Citus),
 * what there is to write. Without failed combinations no stored row is kept as it was, and
 * the per-row lookup in agg_failed is left out (for 498k stored rows it was half of the
 * guard's 5.5 s). Where the table was empty when the run began (a first run, a first
 * backfill's first chunk) and the window still holds nothing, every row is new and nothing is
 * compared: labelling each one new in a comparison with nothing took 3.9 s for 3.2M rows.
 * Should rows have been stored meanwhile after all, the window is compared as always.
 */
async function storedDays(
  session: Session,
  work: Work,
  staged: { someFailed: boolean; computed: number; tableEmpty: boolean },
): Promise<{ days: DayAttempts[]; pending: Pending | undefined }> {
  const staging = work.backend.staging;
  const failed = staged.someFailed ? staging.failed : undefined;
  const { compared } = staging;
  const days = (await session.query<DayAttempts>(shrinkDays(staging.computed, failed, work))).rows;
  if (!compared) return { days, pending: undefined };
  if (staged.tableEmpty && days.every((day) => day.rows === 0)) {
    return { days, pending: { stale: 0, changes: staged.computed, compared: undefined } };
  }
  await session.query(compareWithStored(compared, staging.computed, failed, { ...work, includeTheta: work.theta !== undefined }));
  const { stale, changes } = (await session.query<Omit<Pending, 'compared'>>(comparedCounts(compared))).rows[0]!;
  return { days, pending: { stale, changes, compared } };
}

/** The statement that deletes the window's stale rows: from the comparison where there is one. */
function deleteStaleOf(work: Work, compared: Sql | undefined): Sql {
  return compared ? deleteComparedStale(compared, work) : deleteStale(work);
}

/** With theta enabled, the invalid estimates skipped for the staged combinations. */
async function countSkipped(session: Session, work: Work): Promise<SkippedEstimates | undefined> {
  if (!work.theta) return undefined;
  const row = (await session.query<{ student_topic_theta: number; mirt_ability: number }>(countSkippedEstimates(work.theta, work)))
    .rows[0]!;
  return { studentTopicTheta: row.student_topic_theta, mirtAbility: row.mirt_ability };
}

/** One [DEBUG] line per combination, read through a cursor so memory stays flat. */
async function emitDebugRows(session: Session, emit: Emit, staging: Staging): Promise<void> {
  await session.query(declareDebugRows(staging.computed));
  for (;;) {
    const batch = await session.query<Record<string, unknown>>(fetchDebugRows);
    for (const row of batch.rows) {
      const { user_id: user, topic_id: topic, ...rest } = row;
      emit({ type: 'combination_debug', row: { user, topic, ...rest } });
    }
    if (batch.rows.length < 1000) break;
  }
  await session.query(closeDebugRows);
}
