/**
 * Events, not scattered prints: the run emits typed events, and this module turns them into
 * the text log (its format kept exactly, for existing alerts) or one JSON object per line.
 */
import type { LogFormat } from '../config/index.js';
import { displayValue, formatDuration, inertJson, visible } from '../format.js';
import type { Difference, Emit, EventOf, RunEvent, RunEventMap, VerifySummary } from './events.js';

export type Level = 'debug' | 'info' | 'warn' | 'error';

/** Where formatted lines go. */
export type LineSink = (line: string, level: Level) => void;

function pythonBool(value: boolean): string {
  return value ? 'True' : 'False';
}

/** A log line before formatting: its level, text-format message (without `[LEVEL] `) and JSON fields. */
export interface Described {
  readonly level: Level;
  readonly message: string;
  readonly fields: Record<string, unknown>;
}

/** The log line of each event type; none for the records of the run log and the metrics. */
const lines: { [K in keyof RunEventMap]: (event: EventOf<K>) => Described | undefined } = {
  run_started: (event) => {
    return {
      level: 'info',
      message: `Aggregating features for ${event.combinations} (user, topic, date) combinations; since=${event.since}, anchor=${event.anchor}, dry_run=${pythonBool(event.dryRun)}`,
      fields: { combinations: event.combinations, since: event.since, anchor: event.anchor, dry_run: event.dryRun },
    };
  },
  no_combinations: (event) => {
    return {
      level: 'info',
      message: `No (user_id, topic_id, date) combinations found (lookback=${event.lookbackDays} days); exiting.`,
      fields: { lookback_days: event.lookbackDays },
    };
  },
  rows_written: (event) => {
    const { inserted, updated, unchanged, deleted } = event;
    return {
      level: 'info',
      message: `Rows: inserted=${inserted}, updated=${updated}, unchanged=${unchanged}, deleted=${deleted}`,
      fields: { inserted, updated, unchanged, deleted },
    };
  },
  dry_run_counts: (event) => {
    const { inserted, updated, unchanged, deleted } = event;
    return {
      level: 'info',
      message: `Dry run, nothing written: would_insert=${inserted}, would_update=${updated}, unchanged=${unchanged}, would_delete=${deleted}`,
      fields: { would_insert: inserted, would_update: updated, unchanged, would_delete: deleted },
    };
  },
  theta_skipped: (event) => {
    const skipped = event.studentTopicTheta + event.mirtAbility;
    return {
      level: 'info',
      message: `Theta: skipped ${skipped} invalid estimates (NULL, NaN, infinite or out of numeric(6,3) range)`,
      fields: {
        skipped,
        student_topic_theta: event.studentTopicTheta,
        mirt_ability: event.mirtAbility,
        mirt_fallback: event.mirtFallback,
      },
    };
  },
  combination_failed: (event) => {
    return {
      level: 'error',
      message: `user=${event.userId} topic=${event.topicId} date=${event.date} error=${event.error}`,
      fields: { user_id: event.userId, topic_id: event.topicId, date: event.date, error: event.error },
    };
  },
  combination_debug: (event) => {
    return {
      level: 'debug',
      message: Object.entries(event.row)
        .map(([key, value]) => `${key}=${displayValue(value)}`)
        .join(' '),
      fields: event.row,
    };
  },
  run_finished: (event) => {
    return {
      level: 'info',
      message: `Summary: processed=${event.processed}, failed=${event.failed}, duration_ms=${event.durationMs}`,
      fields: { processed: event.processed, failed: event.failed, duration_ms: event.durationMs },
    };
  },
  backfill_started: (event) => {
    return {
      level: 'info',
      message: `Backfilling ${event.from}..${event.to}: ${event.days} days, shard ${event.shard}, each chunk of days in one transaction`,
      fields: { from: event.from, to: event.to, days: event.days, shard: event.shard },
    };
  },
  backfill_progress: (event) => {
    const percent = ((100 * event.done) / event.total).toFixed(1);
    return {
      level: 'info',
      message: `Backfill progress: ${event.done}/${event.total} days (${percent}%), through ${event.day}; elapsed ${formatDuration(event.elapsedMs)}, ETA ${formatDuration(event.etaMs)}`,
      fields: { done: event.done, total: event.total, day: event.day, elapsed_ms: event.elapsedMs, eta_ms: event.etaMs },
    };
  },
  ripple_finished: (event) => {
    return {
      level: 'info',
      message: `Ripple: recomputed improvement of the stored rows on ${event.since}..${event.anchor}: updated=${event.updated}`,
      fields: { since: event.since, anchor: event.anchor, updated: event.updated },
    };
  },
  verify_difference: (event) => describeDifference(event.difference),
  verify_summary: (event) => describeSummary(event.summary),
  message: (event) => {
    return { level: event.level, message: event.message, fields: event.fields ?? {} };
  },
  day_written: () => undefined,
  run_opened: () => undefined,
  run_closed: () => undefined,
  verify_recorded: () => undefined,
  run_outcome: () => undefined,
};

/** The log line of an event; undefined for the records of the run log and the metrics, which have none. */
export function describe(event: RunEvent): Described | undefined {
  return (lines[event.type] as (event: RunEvent) => Described | undefined)(event);
}

function describeDifference(d: Difference): Described {
  const key = `user=${d.userId} topic=${d.topicId} date=${d.date}`;
  const values = (side: Record<string, string | null>) =>
    Object.entries(side)
      .map(([column, value]) => `${column}=${value ?? 'NULL'}`)
      .join(' ');
  const message =
    d.kind === 'missing'
      ? `Drift ${key}: missing, not stored; expected ${values(d.expected)}`
      : d.kind === 'unexpected'
        ? `Drift ${key}: unexpected, the source has no attempts for it; stored ${values(d.stored)}`
        : `Drift ${key}: differs: ${d.columns.map((c) => `${c} stored=${d.stored[c] ?? 'NULL'} expected=${d.expected[c] ?? 'NULL'}`).join(', ')}`;
  return {
    level: 'error',
    message,
    fields: {
      user_id: d.userId,
      topic_id: d.topicId,
      date: d.date,
      kind: d.kind,
      columns: d.columns,
      stored: d.stored,
      expected: d.expected,
    },
  };
}

function describeSummary(s: VerifySummary): Described {
  const fields = {
    since: s.since,
    anchor: s.anchor,
    expected_rows: s.expectedRows,
    stored_rows: s.storedRows,
    differs: s.differs,
    missing: s.missing,
    unexpected: s.unexpected,
    shown: s.shown,
  };
  const drift = s.differs + s.missing + s.unexpected;
  if (drift === 0 && s.storedRows === 0 && s.expectedRows === 0) {
    return {
      level: 'warn',
      message: `Verify compared nothing on ${s.since}..${s.anchor}: neither the source nor features_topic_daily has a row for these days, so this is no evidence either way; check the days (--date, --from/--to, AGG_LOOKBACK_DAYS), AGG_SOURCE and DATABASE_URL`,
      fields,
    };
  }
  if (drift === 0) {
    return {
      level: 'info',
      message: `Verify: features_topic_daily matches the source on ${s.since}..${s.anchor} (${s.storedRows} rows)`,
      fields,
    };
  }
  const shown = s.shown < drift ? `; showing the first ${s.shown}` : '';
  return {
    level: 'error',
    message: `Verify found drift on ${s.since}..${s.anchor}: ${drift} rows differ from a fresh computation (differs=${s.differs}, missing=${s.missing}, unexpected=${s.unexpected}; stored=${s.storedRows}, expected=${s.expectedRows})${shown}. Re-run the window (run --date, or backfill) to repair it`,
    fields,
  };
}

/**
 * A logger for one run. `redact` is applied to the message and to every text field (before
 * JSON escaping, which could otherwise hide a URL from it). In text format every control
 * character of the message is then made visible, so one event is always one line, whatever an
 * id, a topic, an error or a path holds; in JSON they are `\uXXXX` escapes (`inertJson`).
 */
export function createLogger(options: {
  format: LogFormat;
  runId: string;
  sink: LineSink;
  redact?: (text: string) => string;
  now?: () => Date;
}): Emit {
  const redact = options.redact ?? ((text: string) => text);
  const now = options.now ?? (() => new Date());
  return (event) => {
    const described = describe(event);
    if (described === undefined) return;
    const { level, message, fields } = described;
    const line =
      options.format === 'json'
        ? inertJson({
            level,
            time: now().toISOString(),
            run_id: options.runId,
            event: event.type,
            msg: redact(message),
            ...redactFields(fields, redact),
          })
        : `[${level.toUpperCase()}] ${visible(redact(message))}`;
    options.sink(line, level);
  };
}

function redactFields(value: Record<string, unknown>, redact: (text: string) => string): Record<string, unknown> {
  const walk = (v: unknown): unknown =>
    typeof v === 'string'
      ? redact(v)
      : Array.isArray(v)
        ? v.map(walk)
        : typeof v === 'object' && v !== null
          ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]))
          : v;
  return walk(value) as Record<string, unknown>;
}
