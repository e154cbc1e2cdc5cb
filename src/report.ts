/**
 * `report`: the checks of an operator's morning in one command: coverage per day (users, rows,
 * attempts), theta coverage, the most recent rows and the last runs of the run log. Read-only;
 * the CLI prints it as aligned tables or as JSON.
 */
import type { Config } from './config.js';
import type { Session } from './db.js';
import { formatTable } from './format.js';
import { checkSchema } from './migrate.js';
import { coveragePerDay, lastRuns, recentRows } from './sql/report.js';
import { planWindow } from './window.js';

export interface ReportOptions {
  /** Days covered, ending at `date` (default 7). */
  readonly days: number;
  /** The last day covered; default yesterday in AGG_TIMEZONE (the nightly run's anchor). */
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
  readonly period: { readonly from: string; readonly to: string; readonly days: number; readonly timezone: string };
  readonly coverage: CoverageDay[];
  readonly theta: { readonly rows: number; readonly with_theta: number; readonly share: number | null };
  readonly recent_rows: Record<string, unknown>[];
  readonly runs: Record<string, unknown>[];
}

/** Collects the report. */
export async function collectReport(session: Session, config: Config, options: ReportOptions): Promise<Report> {
  await checkSchema(session);
  const limit = options.limit ?? 10;
  const window = await planWindow(session, { date: options.date, lookbackDays: options.days - 1, timezone: config.timezone });
  const coverage = (await session.query<CoverageDay>(coveragePerDay, [window.anchor, options.days])).rows;
  const rows = coverage.reduce((sum, d) => sum + d.rows, 0);
  const withTheta = coverage.reduce((sum, d) => sum + d.theta_rows, 0);
  const recent = (await session.query<Record<string, unknown>>(recentRows, [window.anchor, options.days, limit])).rows;
  const runs = (await session.query<Record<string, unknown>>(lastRuns, [limit])).rows;
  return {
    period: { from: window.since, to: window.anchor, days: options.days, timezone: config.timezone },
    coverage,
    theta: { rows, with_theta: withTheta, share: rows === 0 ? null : Number((withTheta / rows).toFixed(4)) },
    recent_rows: recent,
    runs,
  };
}

/** The report as text: a title, then one aligned table per section. */
export function formatReport(report: Report): string[] {
  const { period, theta } = report;
  const percent = (part: number, whole: number) => (whole === 0 ? '-' : `${((100 * part) / whole).toFixed(1)}%`);
  const coverage = report.coverage.map((d) => ({
    date: d.date,
    users: d.users,
    rows: d.rows,
    topics: d.topics,
    attempts: d.attempts,
    theta_rows: d.theta_rows,
    theta_share: percent(d.theta_rows, d.rows),
    last_computed_at: d.last_computed_at,
  }));
  // The short run id is enough to find the row; a long error is cut to keep the table readable.
  const runs = report.runs.map((r) => ({
    ...r,
    run_id: typeof r.run_id === 'string' ? r.run_id.slice(0, 8) : r.run_id,
    error: typeof r.error === 'string' && r.error.length > 60 ? `${r.error.slice(0, 59)}…` : r.error,
  }));
  return [
    `features_topic_daily report: ${period.from}..${period.to} (${period.days} days, AGG_TIMEZONE=${period.timezone})`,
    '',
    'Coverage per day',
    ...formatTable(coverage),
    '',
    `Theta coverage: ${theta.with_theta} of ${theta.rows} rows have theta_estimate (${percent(theta.with_theta, theta.rows)})`,
    '',
    `Recent rows (newest ${report.recent_rows.length})`,
    ...formatTable(report.recent_rows),
    '',
    `Last runs (newest ${report.runs.length}, from aggregate_features_runs)`,
    ...formatTable(runs),
  ];
}
