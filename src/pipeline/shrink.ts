/**
 * The shrink guard (SPEC §7): a run whose source suddenly holds much less than what is stored
 * for a day is far more likely an upstream outage (a broken view, a lagging replica, a partial
 * load) than a correction, and writing it would delete that day's features. The run refuses
 * (exit 1, nothing written) and names the days; `--allow-shrink` lets a deliberate correction
 * through. The empty-source guard is its special case: a window whose source holds nothing at
 * all while rows are stored is refused whatever the thresholds.
 */
import type { ShrinkConfig } from '../config.js';
import { RunFailedError } from '../errors.js';
import type { QualifiedName } from '../identifiers.js';

/** A stored day of the window: the attempts stored, and those the run would leave. */
export interface DayAttempts {
  readonly date: string;
  readonly stored: number;
  readonly current: number;
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
}

/** The days that lost more than `maxDrop` of at least `minAttempts` stored attempts. */
export function shrunkDays(days: readonly DayAttempts[], config: ShrinkConfig): DayAttempts[] {
  return days.filter((d) => d.stored > 0 && d.stored >= config.minAttempts && d.current < d.stored * (1 - config.maxDrop));
}

/**
 * The guard's verdict: a RunFailedError to throw (the same for a real run and a dry run), or
 * undefined when the run may write.
 */
export function shrinkVerdict(input: ShrinkInput, config: ShrinkConfig): RunFailedError | undefined {
  const { source, since, anchor } = input;
  if (input.sourceEmpty && input.storedRows > 0) {
    return new RunFailedError(
      `the source ${source.sql} returned no attempts for ${since}..${anchor}, but features_topic_daily holds ${input.storedRows} rows there; nothing was deleted. If the source is really empty (not an upstream outage), re-run with --allow-shrink`,
    );
  }
  const shrunk = shrunkDays(input.days, config);
  if (shrunk.length === 0) return undefined;
  const percent = `${Math.round(config.maxDrop * 1000) / 10}%`;
  const listed = shrunk.map((d) => `${d.date}: stored ${d.stored}, now ${d.current}`).join('; ');
  return new RunFailedError(
    `the source ${source.sql} looks broken: ${shrunk.length} ${shrunk.length === 1 ? 'day' : 'days'} of ${since}..${anchor} lost more than ${percent} of their stored attempts (${listed}); nothing was written. Fix the source and re-run; if the attempts were really removed, re-run with --allow-shrink (thresholds: AGG_SHRINK_MAX_DROP, AGG_SHRINK_MIN_ATTEMPTS)`,
  );
}
