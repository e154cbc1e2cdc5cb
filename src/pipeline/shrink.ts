/**
 * The shrink guard: a run whose source suddenly holds much less than what is stored
 * for a day is far more likely an upstream outage (a broken view, a lagging replica, a partial
 * load) than a correction, and writing it would delete that day's features. The run refuses
 * (exit 1, nothing written) and names the days; `--allow-shrink` lets a deliberate correction
 * through. The empty-source guard is its special case: a window whose source holds nothing at
 * all while rows are stored is refused whatever the thresholds.
 */
import type { ShrinkConfig } from '../config/index.js';
import { HeldBackError } from '../errors.js';
import type { QualifiedName } from '../sql/identifiers.js';

/** A day of the window: its stored rows and attempts, and the attempts the run would leave. */
export interface DayAttempts {
  readonly date: string;
  readonly rows?: number;
  readonly stored: number;
  readonly current: number;
  /** The highest count the source memory holds for the day (source-memory.ts); undefined: none. */
  readonly highest?: number | undefined;
}

/** What a day is judged against: its highest remembered count, or its stored attempts where that is more (or there is none). */
export function shrinkBaseline(day: DayAttempts): number {
  return Math.max(day.stored, day.highest ?? 0);
}

/** What a run reads to judge its window. */
export interface ShrinkInput {
  readonly source: QualifiedName;
  readonly since: string;
  readonly anchor: string;
  readonly days: readonly DayAttempts[];
  /** Stored rows of the window (for the empty-source message). */
  readonly storedRows: number;
  /** True when the source returned no combination at all (and none failed). */
  readonly sourceEmpty: boolean;
  /**
   * Judge each day as the empty-source guard judges a window: a day the source returned nothing
   * for while it holds stored rows is refused whatever the thresholds (a backfill, which writes
   * days of history a chunk at a time; the nightly window leaves such a day to the thresholds).
   */
  readonly emptyDaysRefused?: boolean;
}

/**
 * The days that lost more than `maxDrop` of at least `minAttempts` attempts, counted from the
 * highest the source ever delivered for them (so a loss spread over several nights adds up).
 */
export function shrunkDays(days: readonly DayAttempts[], config: ShrinkConfig): DayAttempts[] {
  return days.filter((d) => {
    const baseline = shrinkBaseline(d);
    return baseline > 0 && baseline >= config.minAttempts && d.current < baseline * (1 - config.maxDrop);
  });
}

/** "2025-11-01: stored 240, now 20", with the remembered highest when it is above what is stored. */
function describeShrunk(d: DayAttempts): string {
  const highest = d.highest !== undefined && d.highest > d.stored ? `, highest ${d.highest}` : '';
  return `${d.date}: stored ${d.stored}${highest}, now ${d.current}`;
}

/**
 * The guard's verdict: a HeldBackError to throw (the same for a real run and a dry run), or
 * undefined when the run may write.
 */
export function shrinkVerdict(input: ShrinkInput, config: ShrinkConfig): HeldBackError | undefined {
  const { source, since, anchor } = input;
  if (input.sourceEmpty && input.storedRows > 0) {
    return new HeldBackError(
      `the source ${source.sql} returned no attempts for ${since}..${anchor}, but features_topic_daily holds ${input.storedRows} rows there; nothing was deleted. If the source is really empty (not an upstream outage), re-run with --allow-shrink`,
      input.days.filter((d) => (d.rows ?? d.stored) > 0).map((d) => d.date),
    );
  }
  const emptied = input.emptyDaysRefused ? input.days.filter((d) => d.current === 0 && (d.rows ?? d.stored) > 0) : [];
  if (emptied.length > 0) {
    const rows = emptied.reduce((sum, d) => sum + (d.rows ?? 0), 0);
    return new HeldBackError(
      `the source ${source.sql} returned no attempts for ${emptied.map((d) => d.date).join(', ')}, but features_topic_daily holds ${rows} rows there; nothing was written. If the source is really empty there (not an upstream outage), re-run with --allow-shrink`,
      emptied.map((d) => d.date),
    );
  }
  const shrunk = shrunkDays(input.days, config);
  if (shrunk.length === 0) return undefined;
  const percent = `${Math.round(config.maxDrop * 1000) / 10}%`;
  const listed = shrunk.map(describeShrunk).join('; ');
  return new HeldBackError(
    `the source ${source.sql} looks broken: ${shrunk.length} ${shrunk.length === 1 ? 'day' : 'days'} of ${since}..${anchor} lost more than ${percent} of their stored attempts (${listed}); nothing was written. Fix the source and re-run; if the attempts were really removed, re-run with --allow-shrink (thresholds: AGG_SHRINK_MAX_DROP, AGG_SHRINK_MIN_ATTEMPTS)`,
    shrunk.map((d) => d.date),
  );
}
