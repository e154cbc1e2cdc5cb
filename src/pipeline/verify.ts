/**
 * `verify`: recomputes a window without writing and compares it with features_topic_daily.
 * Operators run it after incidents and weekly (deploy/k8s/base/cronjob-verify.yaml); drift is
 * reported row by row (capped) and makes the command exit 1. It only reads: no lock, no
 * temporary table, no run-log row, so a SELECT-only role can run it.
 *
 * A long range is compared in chunks of days, as the backfill computes it (range.ts): each
 * chunk is one statement that reads its days and the 27 before them once, and the chunk's
 * size bounds the server's memory for the median's sort. The counts add up; the differences
 * shown are the first `limit` by date.
 */
import { randomUUID } from 'node:crypto';
import type { Config } from '../config/index.js';
import type { Session } from '../database/db.js';
import type { Difference, Emit, EventStream, VerifySummary } from '../observe/events.js';
import { runLogConsumer, verifyFlags } from '../observe/run-log.js';
import { valueColumns, type ValueColumn, type VerifyCompared, type VerifySampleRow } from '../sql/verify.js';
import { dayWindows, planRange, planWindow, type Window } from '../window.js';
import { unsharded, workOf, type Computation, type Shard } from '../work.js';
import { chunksOf, planChunkDays, spanOf } from './range.js';
import { setUp } from './setup.js';

export type { Difference, VerifySummary };

export interface VerifyOptions {
  /** The window's anchor (its since is anchor − AGG_LOOKBACK_DAYS); default yesterday. */
  readonly date?: string | undefined;
  /** An explicit range instead of --date (both or neither). */
  readonly from?: string | undefined;
  readonly to?: string | undefined;
  readonly shard?: Shard;
  /** At most this many differing rows are reported (default 20). */
  readonly limit?: number;
  /** Days compared per statement (default: planned from the window's size and work_mem, range.ts). */
  readonly chunkDays?: number | undefined;
}

export interface VerifyResult {
  readonly window: Window;
  readonly summary: VerifySummary;
  readonly differences: Difference[];
  /** True when any row differs: the CLI exits 1. */
  readonly drift: boolean;
  /** True when neither the source nor the table has a row in the window: nothing was compared. */
  readonly empty: boolean;
  readonly durationMs: number;
}

/** Compares the window with a fresh computation; emits one event per differing row shown and a summary. */
export async function runVerify(session: Session, config: Config, options: VerifyOptions, events: EventStream): Promise<VerifyResult> {
  const { emit } = events;
  const started = Date.now();
  const startedAt = new Date(started).toISOString();
  const shard = options.shard ?? unsharded;
  const { computation } = await setUp(session, config, emit);
  const window =
    options.from !== undefined && options.to !== undefined
      ? await planRange(session, { from: options.from, to: options.to, timezone: config.timezone })
      : await planWindow(session, { date: options.date, lookbackDays: config.lookbackDays, timezone: config.timezone });

  const limit = options.limit ?? 20;
  const scope = { computation, window, shard, timezone: config.timezone, chunkDays: options.chunkDays };
  const row = await compareRange(session, scope, limit, emit);
  // Theta columns belong to the job only with theta enabled; otherwise they are not compared or shown.
  const owned = valueColumns.filter((c) => config.includeTheta || (c !== 'theta_estimate' && c !== 'theta_sd'));
  const differences = row.sample.map((s) => toDifference(s, owned));
  const summary: VerifySummary = {
    since: window.since,
    anchor: window.anchor,
    expectedRows: row.expected_rows,
    storedRows: row.stored_rows,
    differs: row.differs,
    missing: row.missing,
    unexpected: row.unexpected,
    shown: differences.length,
  };
  // The run log consumes the verify's events while it holds this session.
  const stopRunLog = events.subscribe(runLogConsumer(session));
  const drifted = row.differs + row.missing + row.unexpected;
  const drift = drifted > 0;
  try {
    for (const difference of differences) emit({ type: 'verify_difference', difference });
    emit({ type: 'verify_summary', summary });
    await events.publish({
      type: 'verify_recorded',
      verify: {
        runId: randomUUID(),
        shard,
        window,
        flags: verifyFlags(config),
        startedAt,
        expectedRows: row.expected_rows,
        drifted,
        drift: drift ? `${drifted} rows differ (differs=${row.differs}, missing=${row.missing}, unexpected=${row.unexpected})` : undefined,
      },
    });
  } finally {
    stopRunLog();
  }
  const empty = row.expected_rows === 0 && row.stored_rows === 0;
  return { window, summary, differences, drift, empty, durationMs: Date.now() - started };
}

const nothingCompared: VerifyCompared = { expected_rows: 0, stored_rows: 0, differs: 0, missing: 0, unexpected: 0, sample: [] };

/**
 * Compares `window` a chunk of days at a time (one chunk when it is small enough), summing the
 * counts and keeping the first `limit` differences in date order.
 */
async function compareRange(
  session: Session,
  scope: { computation: Computation; window: Window; shard: Shard; timezone: string; chunkDays: number | undefined },
  limit: number,
  emit: Emit,
): Promise<VerifyCompared> {
  const { computation, window, shard } = scope;
  const size = scope.chunkDays ?? (await planChunkDays(session, computation, window));
  const spans =
    window.days > size
      ? chunksOf(await dayWindows(session, { from: window.since, to: window.anchor, timezone: scope.timezone }), size).map(spanOf)
      : [window];
  if (spans.length > 1) {
    emit({
      type: 'message',
      level: 'info',
      message: `Verify: comparing ${window.since}..${window.anchor} in ${spans.length} chunks of at most ${size} days`,
      fields: { chunks: spans.length, chunk_days: size },
    });
  }
  let total = nothingCompared;
  for (const span of spans) {
    const work = workOf(computation, span, shard);
    const left = limit - total.sample.length;
    const part = await computation.backend.compare(session, work, left);
    total = {
      expected_rows: total.expected_rows + part.expected_rows,
      stored_rows: total.stored_rows + part.stored_rows,
      differs: total.differs + part.differs,
      missing: total.missing + part.missing,
      unexpected: total.unexpected + part.unexpected,
      sample: [...total.sample, ...part.sample.slice(0, left)],
    };
  }
  return total;
}

function toDifference(s: VerifySampleRow, owned: readonly ValueColumn[]): Difference {
  const pick = (values: Record<ValueColumn, string | null> | null) =>
    values === null ? {} : Object.fromEntries(owned.map((c) => [c, values[c]]));
  const columns = s.kind === 'differs' ? owned.filter((c) => s.stored?.[c] !== s.expected?.[c]) : [...owned];
  return {
    userId: s.user_id,
    topicId: s.topic_id,
    date: s.date,
    kind: s.kind,
    columns,
    stored: pick(s.stored),
    expected: pick(s.expected),
  };
}
