/**
 * Keeps the planner's picture of features_topic_daily true enough to plan a write (see
 * sql/statistics.ts for why a day written since the last ANALYZE is planned as empty).
 */
import type { Session } from '../database/db.js';
import { analyzeTarget, writtenDaysUnknownToStatistics } from '../sql/statistics.js';

/**
 * Analyzes features_topic_daily before a window is written when more than half of the days of
 * the window that the job has written lie beyond what the statistics know: a day of a second
 * backfill, a re-run of a one-day window, or a nightly window once the days the nightly runs
 * added outnumber the ones the last ANALYZE saw (then about every fourth night at lookback 7).
 * A window of new days (a first run or backfill) has no written days and is left to the
 * backfill's own ANALYZE as the table grows (range.ts). Runs outside the write's transaction:
 * ANALYZE's lock conflicts with itself, and concurrent shards would otherwise queue for each
 * other's whole transaction; a lock held elsewhere is not waited for (SKIP_LOCKED, sql/statistics.ts).
 * Without the right to analyze the table PostgreSQL only warns.
 */
export async function refreshStatisticsFor(
  session: Session,
  window: { readonly since: string; readonly anchor: string },
): Promise<boolean> {
  const { written, unknown } = (await session.query<{ written: number; unknown: number }>(writtenDaysUnknownToStatistics(window))).rows[0]!;
  if (!(unknown * 2 > written)) return false;
  await session.query(analyzeTarget);
  return true;
}
