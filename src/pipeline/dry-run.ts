/**
 * The dry run: what a run would insert, update, leave and delete, from one read-only SELECT
 * (sql/write.ts, dryRunCounts), judged by the same shrink guard and newest-day check as a real
 * run, against the same memory of the source, so a dry run is a true rehearsal. Writes nothing, not even the run log.
 */
import type { Config } from '../config/index.js';
import type { Session } from '../database/db.js';
import type { Emit } from '../observe/events.js';
import { dryRunCounts, dryRunCountsDistributed, dryRunSkipped } from '../sql/write.js';
import type { Window } from '../window.js';
import { workOf, type Computation, type Counts, type Shard } from '../work.js';
import { checkDefinition } from './definition.js';
import type { DayAttempts } from './shrink.js';
import { judgeSource } from './source-memory.js';
import { emitSkipped, type WindowCounts } from './write-window.js';

/** What a dry run reads: the window of a shard, and whether the shrink guard is let through. */
export interface DryRun {
  readonly computation: Computation;
  readonly window: Window;
  readonly shard: Shard;
  readonly allowShrink: boolean;
  readonly allowIncomplete?: boolean;
}

interface DryRunRow extends Omit<Counts, 'failed'> {
  skipped_student_topic_theta: number | null;
  skipped_mirt_ability: number | null;
  stored_rows: number;
  days: DayAttempts[];
}

/** Dry-runs the window: emits what a run would do, throws the shrink guard's refusal like a run. */
export async function dryRunWindow(session: Session, config: Config, job: DryRun, emit: Emit): Promise<WindowCounts> {
  const { window, computation } = job;
  const work = workOf(computation, window, job.shard);
  const { tableEmpty } = await checkDefinition(session, config);
  const result = await session.query<DryRunRow>(work.distributed ? dryRunCountsDistributed(work) : dryRunCounts(work));
  if (work.distributed && work.theta) {
    // On Citus the skipped estimates are a statement of their own (the counts stay per shard).
    const skipped = (
      await session.query<{ student_topic_theta: number; mirt_ability: number }>(dryRunSkipped({ ...work, theta: work.theta }))
    ).rows[0]!;
    result.rows[0]!.skipped_student_topic_theta = skipped.student_topic_theta;
    result.rows[0]!.skipped_mirt_ability = skipped.mirt_ability;
  }
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
  const { refusal } = await judgeSource(
    session,
    config,
    work,
    { days, storedRows, sourceEmpty, tableEmpty },
    { allowShrink: job.allowShrink, allowIncomplete: job.allowIncomplete ?? false },
    emit,
  );
  if (counts.combinations === 0 && counts.deleted === 0) {
    emit({ type: 'no_combinations', lookbackDays: window.days - 1 });
    return { ...counts, skippedEstimates };
  }
  emit({ type: 'run_started', combinations: counts.combinations, since: window.since, anchor: window.anchor, dryRun: true });
  if (counts.combinations > 0) emitSkipped(emit, computation, skippedEstimates);
  emit({ type: 'dry_run_counts', ...counts });
  if (refusal) throw refusal;
  return { ...counts, skippedEstimates };
}
