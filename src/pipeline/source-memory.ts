/**
 * What the job remembers of its source, and how a run is judged by it (migration 003,
 * docs/operations.md "What the job remembers"):
 * - the shrink guard compares each stored day with the highest count the source ever delivered
 *   for it, not with last night's rows, so a loss spread over several nights is stopped once it
 *   adds up to the threshold;
 * - a day with no stored rows yet (the newest day) is compared with the median of the same
 *   weekday of the weeks before: far below, it is incomplete and the run refuses; far above
 *   (a double delivery), it is a warning;
 * - after the write, in the same transaction, the days' counts are remembered.
 * The dry run reaches the same verdict from the same reads; it remembers nothing.
 */
import type { Config } from '../config/index.js';
import type { Session } from '../database/db.js';
import { HeldBackError } from '../errors.js';
import type { Emit } from '../observe/events.js';
import { rememberDays, rememberedDays, weekdayHistory } from '../sql/source-memory.js';
import { shardName, type Shard } from '../work.js';
import { shrinkVerdict, type DayAttempts } from './shrink.js';

/** A window of a shard to judge. */
export interface JudgedWindow {
  readonly since: string;
  readonly anchor: string;
  readonly shard: Shard;
}

/** What the operator let through. */
export interface Overrides {
  /** --allow-shrink: a stored day may lose attempts (and what is remembered is lowered). */
  readonly allowShrink: boolean;
  /** --allow-incomplete: a new day far below its baseline is published anyway. */
  readonly allowIncomplete: boolean;
  /**
   * New days before this one are not judged for completeness (a backfill's days older than the
   * nightly window: history the source finished delivering, whose quiet days are its own shape,
   * holidays and term breaks, not a delivery in progress). Undefined: every new day is judged.
   */
  readonly judgeNewDaysFrom?: string | undefined;
  /** A day whose source is empty while it holds stored rows is refused whatever the thresholds (a backfill; see ShrinkInput). */
  readonly emptyDaysRefused?: boolean;
}

/** A new day against the same weekday of the weeks before. */
export interface NewDay {
  readonly date: string;
  readonly attempts: number;
  /** The median of the weeks on record; undefined when too few are (not judged). */
  readonly baseline: number | undefined;
  /** How many of the weeks before were on record. */
  readonly weeks: number;
  readonly verdict: 'incomplete' | 'surge' | 'normal' | 'not_judged';
}

/** The verdict on a window: the refusal to throw (none when it may be written), and the days let through below their baseline. */
export interface SourceVerdict {
  readonly refusal: HeldBackError | undefined;
  /** Days an override let through below their baseline: remembered as accepted. */
  readonly accepted: ReadonlySet<string>;
  /** The window's days with the memory's highest counts. */
  readonly days: readonly DayAttempts[];
  readonly newDays: readonly NewDay[];
}

/** The median of a non-empty list. */
function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

const percentOf = (part: number, whole: number) => `${Math.round((100 * part) / whole)}%`;

/**
 * Judges the window's days (`days`: every day of the window, from sql/shrink.ts) against the
 * memory of the source. Emits the log lines of the judgement (a day not judged for lack of
 * history, a day far above its baseline); returns the refusal rather than throwing it, so the
 * caller decides (the dry run emits its counts first).
 */
export async function judgeSource(
  session: Session,
  config: Config,
  window: JudgedWindow,
  input: { days: readonly DayAttempts[]; storedRows: number; sourceEmpty: boolean; tableEmpty: boolean },
  overrides: Overrides,
  emit: Emit,
): Promise<SourceVerdict> {
  const shard = shardName(window.shard);
  // An empty table starts over (definition.ts): what was remembered before is left out.
  const remembered = input.tableEmpty ? [] : (await session.query<{ date: string; highest: number }>(rememberedDays(shard, window))).rows;
  const highest = new Map(remembered.map((r) => [r.date, r.highest]));
  const days = input.days.map((d) => ({ ...d, highest: highest.get(d.date) }));
  const accepted = new Set<string>();
  const shrinkRefusal = shrinkVerdict(
    {
      source: config.source,
      since: window.since,
      anchor: window.anchor,
      days,
      storedRows: input.storedRows,
      sourceEmpty: input.sourceEmpty,
      emptyDaysRefused: overrides.emptyDaysRefused ?? false,
    },
    config.shrink,
  );
  if (shrinkRefusal && overrides.allowShrink) for (const day of shrinkRefusal.days) accepted.add(day);
  const fresh = days.filter((d) => (d.rows ?? d.stored) === 0 && d.highest === undefined);
  const from = overrides.judgeNewDaysFrom;
  const judged = from === undefined ? fresh : fresh.filter((d) => d.date >= from);
  const newDays = input.tableEmpty ? [] : await judgeAgainstWeekdays(session, config, window.shard, judged);
  for (const day of newDays) emitJudgement(emit, config, day);
  const incomplete = newDays.filter((d) => d.verdict === 'incomplete');
  if (overrides.allowIncomplete) {
    for (const day of incomplete) accepted.add(day.date);
    // Days published before, below their baseline (a looser threshold let them through), are accepted too.
    const published = days.filter((d) => !fresh.includes(d));
    for (const day of await judgeAgainstWeekdays(session, config, window.shard, published)) {
      if (day.verdict === 'incomplete') accepted.add(day.date);
    }
  }
  const refusal =
    (overrides.allowShrink ? undefined : shrinkRefusal) ??
    (overrides.allowIncomplete || incomplete.length === 0 ? undefined : incompleteRefusal(config, incomplete));
  return { refusal, accepted, days, newDays };
}

/** Each day against the median of the same weekday of the weeks before (memory, else stored rows). */
async function judgeAgainstWeekdays(session: Session, config: Config, shard: Shard, fresh: readonly DayAttempts[]): Promise<NewDay[]> {
  if (fresh.length === 0) return [];
  const { weeks, minWeeks, maxDrop, maxRisePercent } = config.completeness;
  const history = (
    await session.query<{ date: string; attempts: number }>(
      weekdayHistory(
        shardName(shard),
        shard,
        fresh.map((d) => d.date),
        weeks,
      ),
    )
  ).rows;
  return fresh.map((day) => {
    const values = history.filter((h) => h.date === day.date).map((h) => h.attempts);
    const base = { date: day.date, attempts: day.current, weeks: values.length };
    if (values.length < minWeeks) return { ...base, baseline: undefined, verdict: 'not_judged' as const };
    const baseline = median(values);
    if (baseline === 0 || baseline < config.shrink.minAttempts) return { ...base, baseline, verdict: 'not_judged' as const };
    if (day.current < baseline * (1 - maxDrop)) return { ...base, baseline, verdict: 'incomplete' as const };
    if (day.current > baseline * (1 + maxRisePercent / 100)) return { ...base, baseline, verdict: 'surge' as const };
    return { ...base, baseline, verdict: 'normal' as const };
  });
}

function emitJudgement(emit: Emit, config: Config, day: NewDay): void {
  const { weeks, minWeeks, maxRisePercent } = config.completeness;
  const fields = { date: day.date, attempts: day.attempts, baseline: day.baseline ?? null, weeks: day.weeks };
  // A day with no attempts and nothing on record before it (an empty source, a new installation) has nothing to say.
  if (day.verdict === 'not_judged' && day.attempts === 0 && day.weeks === 0) return;
  if (day.verdict === 'not_judged') {
    const why =
      day.baseline === undefined
        ? `${day.weeks} of the ${weeks} weeks before hold that weekday, at least ${minWeeks} needed (AGG_NEWEST_MIN_WEEKS)`
        : `its baseline ${day.baseline} is below ${config.shrink.minAttempts} attempts (AGG_SHRINK_MIN_ATTEMPTS)`;
    emit({ type: 'message', level: 'info', message: `Newest-day check: ${day.date} not judged: ${why}`, fields });
  } else if (day.verdict === 'surge') {
    emit({
      type: 'message',
      level: 'warn',
      message: `Newest-day check: ${day.date} has ${day.attempts} attempts, ${percentOf(day.attempts, day.baseline!)} of its baseline ${day.baseline} (the same weekday of the ${day.weeks} weeks before), more than ${maxRisePercent}% above it (AGG_NEWEST_MAX_RISE_PERCENT): is the source delivering attempts twice?`,
      fields,
    });
  }
}

function incompleteRefusal(config: Config, incomplete: readonly NewDay[]): HeldBackError {
  const listed = incomplete
    .map((d) => `${d.date}: ${d.attempts} attempts, ${percentOf(d.attempts, d.baseline!)} of its baseline ${d.baseline}`)
    .join('; ');
  const percent = `${Math.round(config.completeness.maxDrop * 1000) / 10}%`;
  return new HeldBackError(
    `the source ${config.source.sql} looks incomplete: ${incomplete.length === 1 ? 'the new day' : `${incomplete.length} new days`} fell more than ${percent} below the same weekday of the weeks before (${listed}); nothing was written. Wait until the source has delivered the day and re-run; if the day really was this quiet (a holiday), re-run with --allow-incomplete (thresholds: AGG_NEWEST_MAX_DROP, AGG_NEWEST_WEEKS)`,
    incomplete.map((d) => d.date),
  );
}

/**
 * Remembers what the source delivered for every day of the window, in the write's transaction.
 * With --allow-shrink the highest counts are lowered to today's.
 */
export async function rememberWindow(
  session: Session,
  shard: Shard,
  verdict: SourceVerdict,
  options: { allowShrink: boolean; runTimestamp: string },
): Promise<void> {
  const days = verdict.days.map((d) => ({ date: d.date, attempts: d.current, accepted: verdict.accepted.has(d.date) }));
  if (days.length === 0) return;
  await session.query(rememberDays(shardName(shard), days, { lower: options.allowShrink, at: options.runTimestamp }));
}
