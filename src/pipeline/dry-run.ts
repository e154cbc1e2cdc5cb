/**
 * The dry run: what a run would insert, update, leave and delete, from one read-only SELECT
 * (sql/write.ts, dryRunCounts; on Citus per shard, database/backend.ts), judged by the same
 * shrink guard and newest-day check as a real run, against the same memory of the source, so a dry run is a true rehearsal. Writes nothing, not even the run log.
 */
import type { Config } from '../config/index.js';
import type { Session } from '../database/db.js';
import type { Emit } from '../observe/events.js';
import type { Window } from '../window.js';
import { workOf, type Computation, type Shard } from '../work.js';
import { checkDefinition } from './definition.js';
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

/** Dry-runs the window: emits what a run would do, throws the shrink guard's refusal like a run. */
export async function dryRunWindow(session: Session, config: Config, job: DryRun, emit: Emit): Promise<WindowCounts> {
  const { window, computation } = job;
  const work = workOf(computation, window, job.shard);
  const { tableEmpty } = await checkDefinition(session, config);
  const {
    skipped_student_topic_theta: studentTopicTheta,
    skipped_mirt_ability: mirtAbility,
    stored_rows: storedRows,
    days,
    ...rest
  } = await computation.backend.dryRunCounts(session, work);
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
