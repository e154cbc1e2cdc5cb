/**
 * The backfill: computes and writes the days from `from` to `to` a chunk of days at a time,
 * each chunk by the daily run's own transaction (compute → guard → delete stale → upsert →
 * commit; range.ts: each attempt read once, not once per day that reads it),
 * under the same writer lock, recorded in the run log as command 'backfill'. Then the ripple:
 * the improvement index of the stored rows on the 27 days after the range, which read it.
 *
 * Resumable by construction: a chunk of days is committed whole or not at all, and writing a day again
 * rewrites nothing that is already right, so after an interruption the same command is run
 * again; it skips nothing and duplicates nothing.
 */
import { randomUUID } from 'node:crypto';
import type { Config } from '../config/index.js';
import type { Session } from '../database/db.js';
import { ConfigError, messageOf } from '../errors.js';
import type { Emit, EventStream } from '../observe/events.js';
import { runFlags, runLogConsumer } from '../observe/run-log.js';
import { dayAfter, rippleEnd, rippleImprovement } from '../sql/backfill.js';
import { dayWindows, nightlyWindowStart, planRange, type Window } from '../window.js';
import { addCounts, noCounts, shardName, unsharded, workOf, type Computation, type Counts, type Shard } from '../work.js';
import { allowsShrink } from './daily.js';
import { beginRedefine, finishRedefine } from './definition.js';
import { setUp } from './setup.js';
import { chunksOf, planChunkDays, spanOf, targetGrowth } from './range.js';
import { writeWindowTransaction } from './write-window.js';

/** The longest range a backfill accepts unless --max-days says otherwise. */
export const defaultMaxDays = 366;

export interface BackfillOptions {
  readonly from: string;
  readonly to: string;
  readonly shard?: Shard;
  /** Accept a range that ends after today (in AGG_TIMEZONE). */
  readonly allowFuture?: boolean;
  /** Refuse ranges longer than this many days (default 366). */
  readonly maxDays?: number;
  /** Let a day whose source shrank past the shrink guard (or is empty) delete that day's stored rows. */
  readonly allowShrink?: boolean;
  /** The older name of allowShrink (--allow-empty-source). */
  readonly allowEmptySource?: boolean;
  /** Publish a new day far below the same weekday of the weeks before (--allow-incomplete). */
  readonly allowIncomplete?: boolean;
  /**
   * Rebuild the history in the configured definition (AGG_TIMEZONE, AGG_IMPROVEMENT_MODE) when
   * it differs from the recorded one (--redefine): the range must cover every stored day.
   */
  readonly redefine?: boolean;
  readonly runId?: string;
  /** Aborted on SIGTERM: the chunk in flight rolls back; committed chunks stay (re-run to resume). */
  readonly signal?: AbortSignal | undefined;
  /** Days computed per statement (default: planned from the range's size and work_mem, range.ts). */
  readonly chunkDays?: number;
}

export interface RippleResult {
  readonly since: string;
  readonly anchor: string;
  readonly updated: number;
}

export interface BackfillResult extends Counts {
  readonly runId: string;
  /** since = from, anchor = to. */
  readonly window: Window;
  readonly failed: number;
  /** Undefined when no row is stored after the range. */
  readonly ripple: RippleResult | undefined;
  readonly durationMs: number;
}

/**
 * Checks a range before anything is opened: from ≤ to, at most `maxDays` days. Both are usage
 * errors (exit 2). Returns the number of days.
 */
export function checkBackfillRange(from: string, to: string, maxDays = defaultMaxDays): number {
  // Both are validated YYYY-MM-DD strings, so text order is calendar order.
  if (from > to) throw new ConfigError(`--from ${from} is after --to ${to}: the range must run forwards`);
  // A count of days between two UTC midnights: exact (UTC has no daylight saving), and the
  // dates themselves are never carried as JS Dates.
  const days = (Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000 + 1;
  if (days > maxDays) {
    throw new ConfigError(
      `the range ${from}..${to} has ${days} days, more than --max-days ${maxDays}: split it, or raise --max-days if you mean it`,
    );
  }
  return days;
}

/**
 * Runs a backfill on `session`, emitting into `events` (a `day_written` after each committed
 * chunk of days, for the progress). Throws a JobError (or a database error) when it cannot finish.
 */
export async function runBackfill(
  session: Session,
  config: Config,
  options: BackfillOptions,
  events: EventStream,
): Promise<BackfillResult> {
  const { emit } = events;
  const started = Date.now();
  const runId = options.runId ?? randomUUID();
  const shard = options.shard ?? unsharded;
  const { from, to } = options;
  checkBackfillRange(from, to, options.maxDays ?? defaultMaxDays);
  const setup = await setUp(session, config, emit, {
    writes: { shard },
    refuseFuture: options.allowFuture
      ? undefined
      : {
          day: to,
          refusal: (current) =>
            `--to ${to} is in the future (today is ${current} in ${config.timezone}): days after today have no attempts yet; use --allow-future if you mean it`,
        },
  });
  // The run log consumes the run's events while the run holds this session.
  const stopRunLog = events.subscribe(runLogConsumer(session));
  try {
    const window = await planRange(session, { from, to, timezone: config.timezone });
    const days = await dayWindows(session, { from, to, timezone: config.timezone });
    const runTimestamp = new Date().toISOString();
    // Only the days the nightly window still covers can be a delivery in progress: older days are judged by the shrink guard alone.
    const judgeNewDaysFrom = await nightlyWindowStart(session, config.timezone, config.lookbackDays);
    const rebuilding = options.redefine ? await beginRedefine(session, config, { from, to, shard, at: runTimestamp }) : false;
    if (rebuilding) {
      emit({
        type: 'message',
        level: 'warn',
        message: `Rebuilding ${from}..${to} in AGG_TIMEZONE=${config.timezone}, AGG_IMPROVEMENT_MODE=${config.improvementMode}: the daily run refuses until this backfill has finished`,
      });
    }
    const flags = runFlags(config, {
      allow_future: options.allowFuture ?? false,
      allow_shrink: allowsShrink(options),
      allow_incomplete: options.allowIncomplete ?? false,
      ...(rebuilding ? { redefine: true } : {}),
    });
    await events.publish({ type: 'run_opened', run: { runId, command: 'backfill', shard, window, flags, startedAt: runTimestamp } });
    emit({ type: 'backfill_started', from, to, days: days.length, shard: shardName(shard) });
    try {
      const job = { computation: setup.computation, range: window, days, shard, runTimestamp, judgeNewDaysFrom, options };
      const totals = await writeDays(session, config, job, emit);
      const ripple = await runRipple(session, config, { computation: setup.computation, to, shard, runTimestamp });
      if (rebuilding && totals.failed === 0) await finishRedefine(session);
      if (ripple) emit({ type: 'ripple_finished', ...ripple });
      else emit({ type: 'message', level: 'info', message: `Ripple: no stored rows after ${to}; nothing to recompute` });
      emit({ type: 'rows_written', ...totals });
      await events.publish({ type: 'run_closed', run: { runId, outcome: totals.failed > 0 ? 'failed' : 'success', counts: totals } });
      const durationMs = Date.now() - started;
      emit({ type: 'run_finished', processed: totals.combinations, failed: totals.failed, durationMs });
      return { runId, window, ...totals, ripple, durationMs };
    } catch (err) {
      await events.publish({ type: 'run_closed', run: { runId, outcome: 'failed', error: messageOf(err) } }).catch(() => undefined);
      throw err;
    }
  } finally {
    stopRunLog();
    await setup.release();
  }
}

/**
 * Writes the days a chunk at a time, each chunk as one window in one transaction with the
 * run's timestamp, exactly as the nightly run writes its window (computed with the 27 days
 * before it, guarded, stale rows deleted, changed rows upserted): a day is all old or all new.
 * The chunk's size bounds the median's sort (range.ts). Writing day by day instead read each
 * attempt up to 28 times, and each day's guard, deletion and upsert read the stored rows again
 * (a second 36-day backfill of 498k rows spent 0.7 s a day on them).
 */
async function writeDays(
  session: Session,
  config: Config,
  job: {
    computation: Computation;
    range: Window;
    days: Window[];
    shard: Shard;
    runTimestamp: string;
    judgeNewDaysFrom: string;
    options: BackfillOptions;
  },
  emit: Emit,
): Promise<Counts> {
  const { days, options } = job;
  let totals = noCounts;
  let done = 0;
  const loopStarted = Date.now();
  const size = options.chunkDays ?? (await planChunkDays(session, job.computation, job.range));
  const growth = await targetGrowth(session);
  for (const chunk of chunksOf(days, size)) {
    const window = { ...spanOf(chunk), days: chunk.length };
    const counts = await writeWindowTransaction(
      session,
      config,
      {
        ...job,
        window,
        allowShrink: allowsShrink(options),
        allowIncomplete: options.allowIncomplete ?? false,
        rebuilding: options.redefine ?? false,
        emptyDaysRefused: true,
        signal: options.signal,
      },
      emit,
    );
    totals = addCounts(totals, counts);
    await growth.written(counts.inserted);
    done += chunk.length;
    const elapsedMs = Date.now() - loopStarted;
    emit({
      type: 'day_written',
      done,
      total: days.length,
      day: window.anchor,
      elapsedMs,
      etaMs: Math.round((elapsedMs / done) * (days.length - done)),
      totals,
    });
  }
  return totals;
}

/** Recomputes the improvement of the stored rows on to+1 … to+27 (at most the latest stored day). */
async function runRipple(
  session: Session,
  config: Config,
  target: { computation: Computation; to: string; shard: Shard; runTimestamp: string },
): Promise<RippleResult | undefined> {
  const { shard } = target;
  const end = (await session.query<{ ripple_end: string | null }>(rippleEnd(target.to, shard))).rows[0]?.ripple_end;
  if (end === null || end === undefined) return undefined;
  const window = await planRange(session, { from: await nextDay(session, target.to), to: end, timezone: config.timezone });
  const work = workOf(target.computation, window, shard);
  const result = await session.query<{ updated: number }>(rippleImprovement(work, target.runTimestamp));
  return { since: window.since, anchor: window.anchor, updated: result.rows[0]!.updated };
}

async function nextDay(session: Session, day: string): Promise<string> {
  return (await session.query<{ day: string }>(dayAfter(day))).rows[0]!.day;
}
