/**
 * The events of a run: one typed map (as graphile-worker's WorkerEventMap), the one stream
 * that every output consumes. Commands and steps only emit; the text or JSON log (log.ts), the
 * metrics (metrics.ts) and the run log (run-log.ts) subscribe. Neutral: it imports no step.
 */
import type { ValueColumn } from './sql/verify.js';
import type { RowCounts } from './work.js';

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
}

/** One event: its type and its fields. */
export type RunEvent = { [K in keyof RunEventMap]: { type: K } & RunEventMap[K] }[keyof RunEventMap];

/** The event of type `K`. */
export type EventOf<K extends keyof RunEventMap> = Extract<RunEvent, { type: K }>;

/** Receives every event of a run. */
export type Emit = (event: RunEvent) => void;

/** One stream of events: steps emit into it, consumers (the log, the metrics, the run log) subscribe. */
export interface EventStream {
  readonly emit: Emit;
  /** Adds a consumer, called for every event from now on, in the order added; returns its removal. */
  subscribe(consumer: Emit): () => void;
}

/** A new stream with no consumers. */
export function createEventStream(): EventStream {
  const consumers = new Set<Emit>();
  return {
    emit: (event) => {
      for (const consumer of [...consumers]) consumer(event);
    },
    subscribe(consumer) {
      const own: Emit = (event) => consumer(event);
      consumers.add(own);
      return () => consumers.delete(own);
    },
  };
}
