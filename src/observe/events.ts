/**
 * The events of a run: one typed map (as graphile-worker's WorkerEventMap), and the one stream
 * per invocation that every output consumes. Commands and steps only emit; the text or JSON log
 * (log.ts), the metrics (metrics.ts), a backfill's progress (progress.ts) and, while a run holds
 * its session, the run log (run-log.ts) subscribe. Neutral: it imports no step.
 */
import type { ValueColumn } from '../sql/verify.js';
import type { Window } from '../window.js';
import type { Counts, RowCounts, Shard } from '../work.js';

/** A writing run's row in the run log, as it starts. */
export interface RunOpened {
  readonly runId: string;
  readonly command: 'run' | 'backfill';
  readonly shard: Shard;
  readonly window: Window;
  /** The settings and flags the run records (lookback, theta, time zone, source …). */
  readonly flags: Record<string, unknown>;
  readonly startedAt: string;
}

/** How a writing run ended, for the run log. */
export interface RunClosed {
  readonly runId: string;
  readonly outcome: 'success' | 'failed';
  readonly counts?: Counts;
  readonly error?: string;
}

/** A finished verify, for the run log. */
export interface VerifyRecorded {
  readonly runId: string;
  readonly shard: Shard;
  readonly window: Window;
  readonly flags: Record<string, unknown>;
  readonly startedAt: string;
  readonly expectedRows: number;
  /** Rows that differ, are missing or are unexpected. */
  readonly drifted: number;
  /** The summary of the drift, e.g. "3 rows differ (differs=1, missing=1, unexpected=1)"; undefined when none. */
  readonly drift: string | undefined;
}

/** What a writing command reports to the metrics: the result of a successful run, or what is known of a failed one. */
export interface RunOutcome {
  readonly command: 'run' | 'backfill';
  readonly shard: Shard;
  readonly success: boolean;
  readonly durationMs: number;
  /** When the run ended, ms since the epoch. */
  readonly finishedAt: number;
  readonly counts?: Counts;
  /** The window's bounds, unix seconds: start of since, end of anchor (exclusive), in AGG_TIMEZONE. */
  readonly window?: { readonly startsAt: number; readonly endsAt: number };
  /** Rows whose improvement a backfill's ripple changed. */
  readonly rippleUpdated?: number;
  /** Days the run refused to publish (an incomplete new day, a shrunk day); 0 or undefined: none. */
  readonly heldBackDays?: number;
}

/** A backfill's progress, after each committed day. */
export interface BackfillProgress {
  /** Days committed so far, and of how many. */
  readonly done: number;
  readonly total: number;
  /** The last day just committed (backfills commit a chunk of days at a time). */
  readonly day: string;
  readonly elapsedMs: number;
  /** Estimated time left, from the mean time per day so far. */
  readonly etaMs: number;
  readonly totals: Counts;
}

/** One row that differs between the table and a fresh computation. */
export interface Difference {
  readonly userId: string;
  readonly topicId: string;
  readonly date: string;
  /** differs: both exist, values differ; missing: not stored; unexpected: stored without attempts. */
  readonly kind: 'differs' | 'missing' | 'unexpected';
  /** The value columns that differ (all of them for missing and unexpected rows). */
  readonly columns: ValueColumn[];
  /** Values as text, NULL as null; empty for a missing (stored) or an unexpected (expected) row. */
  readonly stored: Partial<Record<ValueColumn, string | null>>;
  readonly expected: Partial<Record<ValueColumn, string | null>>;
}

/** What a verify found, in numbers. */
export interface VerifySummary {
  readonly since: string;
  readonly anchor: string;
  readonly expectedRows: number;
  readonly storedRows: number;
  readonly differs: number;
  readonly missing: number;
  readonly unexpected: number;
  /** How many differing rows are listed. */
  readonly shown: number;
}

/** Every event by its type, with its fields. */
export interface RunEventMap {
  run_started: { combinations: number; since: string; anchor: string; dryRun: boolean };
  no_combinations: { lookbackDays: number };
  rows_written: RowCounts;
  dry_run_counts: RowCounts;
  theta_skipped: { studentTopicTheta: number; mirtAbility: number; mirtFallback: boolean };
  combination_failed: { userId: string; topicId: string; date: string; error: string };
  combination_debug: { row: Record<string, unknown> };
  run_finished: { processed: number; failed: number; durationMs: number };
  backfill_started: { from: string; to: string; days: number; shard: string };
  backfill_progress: { done: number; total: number; day: string; elapsedMs: number; etaMs: number };
  ripple_finished: { since: string; anchor: string; updated: number };
  verify_difference: { difference: Difference };
  verify_summary: { summary: VerifySummary };
  message: { level: 'info' | 'warn' | 'error'; message: string; fields?: Record<string, unknown> };
  /** For the progress (no log line): a backfill committed a day. */
  day_written: BackfillProgress;
  /** For the run log (no log line). */
  run_opened: { run: RunOpened };
  run_closed: { run: RunClosed };
  verify_recorded: { verify: VerifyRecorded };
  /** For the metrics (no log line). */
  run_outcome: { outcome: RunOutcome };
}

/** The events that are records for the progress, the run log and the metrics, not lines of the log. */
export const recordEvents: ReadonlySet<RunEvent['type']> = new Set([
  'day_written',
  'run_opened',
  'run_closed',
  'verify_recorded',
  'run_outcome',
]);

/** One event: its type and its fields. */
export type RunEvent = { [K in keyof RunEventMap]: { type: K } & RunEventMap[K] }[keyof RunEventMap];

/** The event of type `K`. */
export type EventOf<K extends keyof RunEventMap> = Extract<RunEvent, { type: K }>;

/** Receives every event of a run. */
export type Emit = (event: RunEvent) => void;

/** A consumer of events; one that returns a promise (a write) is waited for by `publish` and `settled`. */
export type Consumer = (event: RunEvent) => void | Promise<void>;

/** One stream of events: steps emit into it, consumers (the log, the metrics, the progress, the run log) subscribe. */
export interface EventStream {
  /** Hands the event to every consumer, in the order they subscribed. */
  readonly emit: Emit;
  /** Emits and waits until every consumer has handled the event; rejects with the first consumer's error. */
  publish(event: RunEvent): Promise<void>;
  /** Waits for the work the consumers began on emitted events (their errors are theirs to report). */
  settled(): Promise<void>;
  /**
   * Adds a consumer, called for every event from now on; returns its removal. `first` puts it
   * ahead of those already subscribed (a progress bar that ends its line before the log writes).
   */
  subscribe(consumer: Consumer, options?: { readonly first?: boolean }): () => void;
}

/** A new stream; `initial` (synchronous consumers, such as a test's list) are subscribed in order. */
export function createEventStream(...initial: Emit[]): EventStream {
  let consumers: Consumer[] = [];
  const pending = new Set<Promise<unknown>>();
  const deliver = (event: RunEvent): Promise<void>[] => {
    const writes: Promise<void>[] = [];
    for (const consumer of consumers) {
      const result = consumer(event);
      if (result instanceof Promise) writes.push(result);
    }
    return writes;
  };
  const stream: EventStream = {
    emit: (event) => {
      for (const write of deliver(event)) {
        const tracked = write.catch(() => undefined);
        pending.add(tracked);
        void tracked.finally(() => pending.delete(tracked));
      }
    },
    async publish(event) {
      await Promise.all(deliver(event));
    },
    async settled() {
      while (pending.size > 0) await Promise.all([...pending]);
    },
    subscribe(consumer, options = {}) {
      const own: Consumer = (event) => consumer(event);
      consumers = options.first ? [own, ...consumers] : [...consumers, own];
      return () => {
        consumers = consumers.filter((c) => c !== own);
      };
    },
  };
  for (const consumer of initial) stream.subscribe(consumer);
  return stream;
}
