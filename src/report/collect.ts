/**
 * `report`: the checks of an operator's morning in one command: a verdict (OK, WARN or FAIL,
 * with its reasons), coverage per day against the days before it, theta coverage, the most
 * recently changed rows and the last runs of the run log. Read-only; the CLI prints it as
 * text (report/text.ts), JSON or an HTML page (report/html.ts).
 */
import type { Config } from '../config/index.js';
import type { Session } from '../database/db.js';
import { checkSchema } from '../database/migrate.js';
import { collectMemory, memoryReasons, withReasons, type MemoryReport } from './memory.js';
import { judge, withTrend, type DayTrend, type ShardHealth, type Verdict, type VerifyRecord } from './verdict.js';
import { coveragePerDay, improvementHistogram, lastRuns, lastVerify, latestDataDay, recentRows, runHealth } from '../sql/report.js';
import { nightCoverage } from '../sql/night.js';
import { planWindow } from '../window.js';
import type { ShardNight } from './night.js';

export interface ReportOptions {
  /** Days covered, ending at `date` (default 7). */
  readonly days: number;
  /**
   * The last day covered; default yesterday in AGG_TIMEZONE (the nightly run's anchor), or the
   * newest day with rows when yesterday has none (said in `notes`).
   */
  readonly date?: string | undefined;
  /** Rows of the recent-rows and last-runs sections (default 10). */
  readonly limit?: number;
}

export interface CoverageDay {
  readonly date: string;
  readonly users: number;
  readonly rows: number;
  readonly topics: number;
  readonly attempts: number;
  readonly theta_rows: number;
  readonly last_computed_at: string | null;
}

export interface Report {
  readonly verdict: Verdict;
  readonly period: { readonly from: string; readonly to: string; readonly days: number; readonly timezone: string };
  /** How the period was chosen when --date was not given, e.g. that yesterday had no rows. */
  readonly notes: string[];
  readonly coverage: CoverageDay[];
  /** Each day's users and attempts with the median of the days before it, newest first. */
  readonly trend: DayTrend[];
  readonly theta: { readonly enabled: boolean; readonly rows: number; readonly with_theta: number; readonly share: number | null };
  /** Rows per improvement bin of width 0.1 from −1 (bin 1) to 1 (bin 20); bin null: no improvement. */
  readonly improvement: { readonly bin: number | null; readonly rows: number }[];
  readonly shards: ShardHealth[];
  readonly last_verify: VerifyRecord | null;
  readonly recent_rows: Record<string, unknown>[];
  readonly runs: Record<string, unknown>[];
  /** Each day's attempts as the source delivered them against the same weekday of the weeks before, and the newest day's topic drops. */
  readonly baselines: MemoryReport;
}

/** Collects the report. */
export async function collectReport(session: Session, config: Config, options: ReportOptions): Promise<Report> {
  await checkSchema(session);
  const limit = options.limit ?? 10;
  const { baselineDays } = config.report;
  const notes: string[] = [];
  let window = await planWindow(session, { date: options.date, lookbackDays: options.days - 1, timezone: config.timezone });
  if (options.date === undefined) {
    const latest = (await session.query<{ day: string | null }>(latestDataDay)).rows[0]!.day;
    if (latest === null) notes.push('features_topic_daily is empty: run the job (or a backfill) first');
    else if (latest < window.anchor) {
      notes.push(
        `no rows for ${window.anchor} (yesterday in ${config.timezone}); the newest data is on ${latest}: reporting the ${options.days} days up to it (--date chooses the period)`,
      );
      window = await planWindow(session, { date: latest, lookbackDays: options.days - 1, timezone: config.timezone });
    }
  }
  const period = { anchor: window.anchor, days: options.days };
  const history = (await session.query<CoverageDay>(coveragePerDay({ anchor: window.anchor, days: options.days + baselineDays }))).rows;
  const coverage = history.slice(0, options.days);
  const trend = withTrend(history, options.days, baselineDays);
  const rows = coverage.reduce((sum, d) => sum + d.rows, 0);
  const withTheta = coverage.reduce((sum, d) => sum + d.theta_rows, 0);
  const improvement = (await session.query<{ bin: number | null; rows: number }>(improvementHistogram(period))).rows;
  const recent = (await session.query<Record<string, unknown>>(recentRows(period, limit))).rows;
  const runs = (await session.query<Record<string, unknown>>(lastRuns(limit))).rows;
  const shards = (await session.query<ShardHealth>(runHealth)).rows;
  const verify = (await session.query<VerifyRecord>(lastVerify)).rows[0];
  const nights = (
    await session.query<ShardNight>(
      nightCoverage({ timezone: config.timezone, graceHours: config.report.nightGraceHours, date: options.date }),
    )
  ).rows;
  const night = { shards: nights, timezone: config.timezone, graceHours: config.report.nightGraceHours };
  const theta = {
    enabled: config.includeTheta,
    rows,
    with_theta: withTheta,
    share: rows === 0 ? null : Number((withTheta / rows).toFixed(4)),
  };
  const memory = await collectMemory(session, config, period);
  return {
    verdict: withReasons(
      judge({ shards, verify, days: trend, theta: { enabled: config.includeTheta, rows, withTheta }, night }, config.report),
      memoryReasons(memory, config),
    ),
    period: { from: window.since, to: window.anchor, days: options.days, timezone: config.timezone },
    notes,
    coverage,
    trend,
    theta,
    improvement,
    shards,
    last_verify: verify ?? null,
    recent_rows: recent,
    runs,
    baselines: memory,
  };
}
