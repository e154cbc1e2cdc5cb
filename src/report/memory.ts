/**
 * `report`'s reading of the source memory (migration 003): each day of the period against the
 * same weekday of the weeks before, and the topics of the newest day that fell far below
 * theirs. Its findings are reasons of their own, added to the verdict:
 * - FAIL `below_baseline`: a day the memory holds fell more than AGG_NEWEST_MAX_DROP below
 *   its baseline, and no operator accepted it (--allow-incomplete, --allow-shrink);
 * - WARN `above_baseline`: a day more than AGG_NEWEST_MAX_RISE_PERCENT above it (a double
 *   delivery looks like this);
 * - WARN `topic_drop`: a topic of the newest day far below its own baseline.
 */
import type { Config } from '../config/index.js';
import type { Session } from '../database/db.js';
import { memoryAgainstBaseline, topicDrops } from '../sql/source-memory.js';
import { median, type Reason, type Status, type Verdict } from './verdict.js';

/** A day of the period: the attempts the source delivered (null: not in the memory) and its baseline. */
export interface BaselineDay {
  readonly date: string;
  readonly attempts: number | null;
  /** The median of the same weekday of the weeks before; null with too few of them on record. */
  readonly baseline: number | null;
  readonly weeks: number;
  readonly accepted: boolean;
}

export interface TopicDrop {
  readonly topic_id: string;
  readonly attempts: number;
  readonly baseline: number;
  readonly weeks: number;
}

/** What report reads from the memory. */
export interface MemoryReport {
  readonly days: BaselineDay[];
  /** The newest day of the period, with the topics that fell. */
  readonly topics: { readonly date: string; readonly drops: TopicDrop[] };
}

/** Reads the period's days against their baselines, and the newest day's topic drops. */
export async function collectMemory(session: Session, config: Config, period: { anchor: string; days: number }): Promise<MemoryReport> {
  const { weeks, minWeeks, maxDrop } = config.completeness;
  const rows = (
    await session.query<{ date: string; attempts: number | null; accepted: boolean; history: number[] }>(
      memoryAgainstBaseline(period, weeks),
    )
  ).rows;
  const days = rows.map((r) => ({
    date: r.date,
    attempts: r.attempts,
    baseline: r.history.length >= minWeeks ? median(r.history.map(Number)) : null,
    weeks: r.history.length,
    accepted: r.accepted,
  }));
  const drops = (
    await session.query<TopicDrop>(
      topicDrops(period.anchor, { weeks, minWeeks, maxDrop, minAttempts: Math.max(1, Math.round(config.shrink.minAttempts / 5)) }, 20),
    )
  ).rows;
  return { days, topics: { date: period.anchor, drops } };
}

const percent = (part: number, whole: number) => `${Math.round((100 * part) / whole)}%`;

/** The findings of the memory, as reasons of the verdict. */
export function memoryReasons(memory: MemoryReport, config: Config): Reason[] {
  const { maxDrop, maxRisePercent, weeks } = config.completeness;
  const reasons: Reason[] = [];
  for (const day of memory.days) {
    if (day.attempts === null || day.baseline === null || day.baseline < config.shrink.minAttempts || day.baseline === 0) continue;
    const against = `${day.attempts} attempts, ${percent(day.attempts, day.baseline)} of its baseline ${day.baseline} (the same weekday of the ${day.weeks} weeks before)`;
    if (day.attempts < day.baseline * (1 - maxDrop) && !day.accepted) {
      reasons.push({
        status: 'FAIL',
        check: 'below_baseline',
        message: `${day.date} has ${against}: below it by more than ${Math.round(maxDrop * 100)}% (AGG_NEWEST_MAX_DROP); backfill the day once the source has it, or accept it with --allow-incomplete`,
      });
    } else if (day.attempts > day.baseline * (1 + maxRisePercent / 100)) {
      reasons.push({
        status: 'WARN',
        check: 'above_baseline',
        message: `${day.date} has ${against}: above it by more than ${maxRisePercent}% (AGG_NEWEST_MAX_RISE_PERCENT); a source delivering attempts twice looks like this`,
      });
    }
  }
  if (memory.topics.drops.length > 0) {
    const listed = memory.topics.drops.map((t) => `${t.topic_id}: ${t.attempts} attempts, baseline ${t.baseline}`).join('; ');
    reasons.push({
      status: 'WARN',
      check: 'topic_drop',
      message: `${memory.topics.date}: ${memory.topics.drops.length} ${memory.topics.drops.length === 1 ? 'topic' : 'topics'} fell more than ${Math.round(maxDrop * 100)}% below the same weekday of the ${weeks} weeks before (${listed}); is one subject's ingestion broken?`,
    });
  }
  return reasons;
}

const rank: Record<Status, number> = { OK: 0, WARN: 1, FAIL: 2 };

/** The verdict with more reasons, its status the worst of all. */
export function withReasons(verdict: Verdict, more: readonly Reason[]): Verdict {
  const reasons = [...verdict.reasons, ...more];
  const status = reasons.reduce((worst, r) => (rank[r.status] > rank[worst] ? r.status : worst), verdict.status);
  return { status, reasons };
}
