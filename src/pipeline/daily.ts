/**
 * The daily run: the shared setup (check the schema and the source, take the writer lock) →
 * plan the window → compute every combination in one statement → delete stale rows and upsert
 * changed ones in one transaction → record the run → report. All work happens in PostgreSQL
 * on one session.
 */
import { randomUUID } from 'node:crypto';
import type { Config } from '../config/index.js';
import type { Session } from '../database/db.js';
import { messageOf } from '../errors.js';
import type { EventStream } from '../observe/events.js';
import { lastSuccessAnchor, runFlags, runLogConsumer } from '../observe/run-log.js';
import { planWindow, type Window } from '../window.js';
import { unsharded, type Computation, type Counts, type Shard, type SkippedEstimates } from '../work.js';
import { dryRunWindow } from './dry-run.js';
import { setUp } from './setup.js';
import { writeWindowTransaction, type WindowCounts } from './write-window.js';

export interface RunOptions {
  readonly date?: string | undefined;
  readonly dryRun?: boolean;
  readonly shard?: Shard | undefined;
  /**
   * Let a run whose source lost more of a day than the shrink guard allows (or is empty for the
   * window) delete the window's rows: a deliberate correction (--allow-shrink).
   */
  readonly allowShrink?: boolean;
  /** The older name of allowShrink (--allow-empty-source); either allows it. */
  readonly allowEmptySource?: boolean;
  /** Publish a new day far below the same weekday of the weeks before (--allow-incomplete). */
  readonly allowIncomplete?: boolean;
  /** Accept a --date after today in AGG_TIMEZONE (refused otherwise, exit 2). */
  readonly allowFuture?: boolean;
  /** At most this many extra days are added to heal missed runs (0 = never widen). */
  readonly maxCatchUpDays?: number;
  readonly runId?: string;
  /** Aborted by SIGTERM/SIGINT: the run stops at the next safe point and rolls back. */
  readonly signal?: AbortSignal | undefined;
}

export interface RunResult extends Counts {
  readonly runId: string;
  readonly window: Window;
  readonly durationMs: number;
  /** With theta enabled: the invalid estimates skipped (see SkippedEstimates). Undefined with theta disabled. */
  readonly skippedEstimates?: SkippedEstimates;
}

/** True when the options let the shrink guard's refusal through (--allow-shrink or its older name). */
export function allowsShrink(options: { allowShrink?: boolean | undefined; allowEmptySource?: boolean | undefined }): boolean {
  return (options.allowShrink ?? false) || (options.allowEmptySource ?? false);
}

/**
 * Runs the daily job once on `session` (a dedicated connection: the writer lock is a session
 * lock). Throws a JobError (or a database error) when it cannot finish.
 */
export async function runDaily(session: Session, config: Config, options: RunOptions, events: EventStream): Promise<RunResult> {
  const { emit } = events;
  const started = Date.now();
  const runId = options.runId ?? randomUUID();
  const shard = options.shard ?? unsharded;
  const dryRun = options.dryRun ?? false;
  const date = options.date;
  const setup = await setUp(session, config, emit, {
    writes: dryRun ? undefined : { shard },
    refuseFuture:
      date === undefined || options.allowFuture
        ? undefined
        : {
            day: date,
            refusal: (current) =>
              `--date ${date} is in the future (today is ${current} in ${config.timezone}): its attempts do not exist yet, and a run would delete the rows stored there; use --allow-future if you mean it`,
          },
  });
  try {
    const window = await planWindow(session, {
      date,
      lookbackDays: config.lookbackDays,
      timezone: config.timezone,
      lastSuccessAnchor: date === undefined ? await lastSuccessAnchor(session, shard) : undefined,
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
    const job = {
      computation: setup.computation,
      window,
      shard,
      allowShrink: allowsShrink(options),
      allowIncomplete: options.allowIncomplete ?? false,
    };
    const { skippedEstimates, ...counts } = dryRun
      ? await dryRunWindow(session, config, job, emit)
      : await writeWindow(session, config, { ...job, runId, signal: options.signal }, events);
    const durationMs = Date.now() - started;
    emit({ type: 'run_finished', processed: counts.combinations, failed: counts.failed, durationMs });
    return { runId, window, ...counts, durationMs, ...(skippedEstimates ? { skippedEstimates } : {}) };
  } finally {
    await setup.release();
  }
}

/** A daily run's window to write, recorded in the run log under `runId`. */
interface DailyWrite {
  readonly computation: Computation;
  readonly window: Window;
  readonly shard: Shard;
  readonly allowShrink: boolean;
  readonly allowIncomplete: boolean;
  readonly runId: string;
  readonly signal: AbortSignal | undefined;
}

/** Writes the window, recorded in the run log: its consumer writes on this run's session while the run holds it. */
async function writeWindow(session: Session, config: Config, job: DailyWrite, events: EventStream): Promise<WindowCounts> {
  const { window, runId } = job;
  const { emit } = events;
  const stopRunLog = events.subscribe(runLogConsumer(session));
  try {
    const runTimestamp = new Date().toISOString();
    await events.publish({
      type: 'run_opened',
      run: { runId, command: 'run', shard: job.shard, window, flags: runFlags(config), startedAt: runTimestamp },
    });
    try {
      const counts = await writeWindowTransaction(session, config, { ...job, runTimestamp, announce: true }, emit);
      if (counts.combinations > 0 || counts.deleted > 0) emit({ type: 'rows_written', ...counts });
      await events.publish({ type: 'run_closed', run: { runId, outcome: counts.failed > 0 ? 'failed' : 'success', counts } });
      return counts;
    } catch (err) {
      await events.publish({ type: 'run_closed', run: { runId, outcome: 'failed', error: messageOf(err) } }).catch(() => undefined);
      throw err;
    }
  } finally {
    stopRunLog();
  }
}
