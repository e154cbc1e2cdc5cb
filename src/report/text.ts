/**
 * `report` as text for a terminal: the verdict first (one line), then its checks, coverage per
 * day with bars of users and attempts, theta coverage, the most recently changed rows and the
 * last runs. Every line fits `width` characters; names are shortened with … (full in --json).
 */
import type { Report } from './collect.js';
import { visibleDeep } from '../format.js';
import { bar, fitTable, shorten, sparkline, wrap } from './fit.js';

const numeric = [
  'users',
  'rows',
  'topics',
  'attempts',
  'vs_median',
  'theta',
  'correct',
  'avg_time_ms',
  'rt_median',
  'hints',
  'improvement',
  'theta_estimate',
  'theta_sd',
];
const runNumbers = ['duration_s', 'failed', 'inserted', 'updated', 'unchanged', 'deleted', 'combinations'];

/** A timestamp as text without fractions of a second and zone suffix noise: 2025-03-18 04:12:09+00. */
function shortTime(value: unknown): unknown {
  return typeof value === 'string' ? value.replace(/\.\d+(?=[+-]\d\d|$)/, '') : value;
}

function percentOf(value: number, median: number | null): string {
  if (median === null || median <= 0) return '-';
  const change = Math.round((100 * (value - median)) / median);
  return `${change > 0 ? '+' : ''}${change}%`;
}

/**
 * The report as lines of at most `width` characters. Every text that came from the data (ids,
 * errors, notes) is made visible first, so the lines are fitted to what is printed.
 */
export function formatReport(data: Report, width: number): string[] {
  const report = visibleDeep(data);
  return [
    ...headLines(report, width),
    ...coverageLines(report, width),
    ...baselineLines(report, width),
    ...thetaLines(report, width),
    ...recentLines(report, width),
    ...runLines(report, width),
  ];
}

/** The verdict with its problems, the period, the notes and every check. */
function headLines(report: Report, width: number): string[] {
  const { verdict, period } = report;
  const problems = verdict.reasons.filter((r) => r.status !== 'OK');
  const summary = (problems.length > 0 ? problems : verdict.reasons).map((r) => r.message).join('; ');
  const out: string[] = [shorten(`${verdict.status}: ${summary || 'no runs to judge'}`, width)];
  out.push(
    shorten(`features_topic_daily report: ${period.from}..${period.to} (${period.days} days, AGG_TIMEZONE=${period.timezone})`, width),
  );
  for (const note of report.notes) out.push(...wrap(`note: ${note}`, width));

  out.push('', 'Checks');
  for (const r of verdict.reasons) out.push(...wrap(`  ${r.status.padEnd(4)}  ${r.message}`, width, '        '));
  if (verdict.reasons.length === 0) out.push('  (nothing recorded yet)');
  return out;
}

/** Coverage per day: sparklines, then one row per day with bars. */
function coverageLines(report: Report, width: number): string[] {
  // Oldest first in the sparklines, newest first in the table (as the days are listed).
  const oldestFirst = [...report.trend].reverse();
  const out: string[] = [
    '',
    shorten(
      `Coverage per day   users ${sparkline(oldestFirst.map((d) => d.users))}   attempts ${sparkline(oldestFirst.map((d) => d.attempts))}`,
      width,
    ),
  ];
  const maxUsers = Math.max(0, ...report.trend.map((d) => d.users));
  const maxAttempts = Math.max(0, ...report.trend.map((d) => d.attempts));
  // date, users, attempts, vs_median, rows, topics, theta and the gaps take about 66 characters.
  const barWidth = Math.max(4, Math.min(24, Math.floor((width - 66) / 2)));
  const coverage = report.coverage.map((d, i) => {
    const t = report.trend[i]!;
    return {
      date: d.date,
      users: d.users,
      '': bar(d.users, maxUsers, barWidth),
      attempts: d.attempts,
      ' ': bar(d.attempts, maxAttempts, barWidth),
      vs_median: percentOf(d.attempts, t.median_attempts),
      rows: d.rows,
      topics: d.topics,
      theta: d.rows === 0 ? '-' : `${((100 * d.theta_rows) / d.rows).toFixed(0)}%`,
    };
  });
  out.push(...table(coverage, width, numeric));
  return out;
}

/** What the source delivered per day (the source memory) against the same weekday of the weeks before. */
function baselineLines(report: Report, width: number): string[] {
  const days = report.baselines.days.map((d) => ({
    date: d.date,
    attempts: d.attempts ?? '-',
    baseline: d.baseline ?? '-',
    vs_baseline: d.attempts === null ? '-' : percentOf(d.attempts, d.baseline),
    weeks: d.weeks,
    accepted: d.accepted ? 'yes' : '',
  }));
  return [
    '',
    shorten('Source per day (remembered) against the same weekday of the weeks before', width),
    ...table(days, width, ['attempts', 'baseline', 'vs_baseline', 'weeks']),
  ];
}

function thetaLines(report: Report, width: number): string[] {
  const { theta } = report;
  const share = theta.rows === 0 ? '-' : `${((100 * theta.with_theta) / theta.rows).toFixed(1)}%`;
  return [
    '',
    shorten(
      `Theta coverage: ${theta.with_theta} of ${theta.rows} rows have theta_estimate (${share})${theta.enabled ? '' : '; AGG_INCLUDE_THETA=false'}`,
      width,
    ),
  ];
}

function recentLines(report: Report, width: number): string[] {
  const recent = report.recent_rows.map((r) => ({
    user_id: r.user_id,
    topic_id: r.topic_id,
    date: r.date,
    attempts: r.attempts,
    correct: r.correct,
    improvement: r.improvement,
    computed_at: shortTime(r.computed_at),
    avg_time_ms: r.avg_time_ms,
    rt_median: r.rt_median,
    hints: r.hints,
    theta_estimate: r.theta_estimate,
    theta_sd: r.theta_sd,
    last_seen_at: shortTime(r.last_seen_at),
  }));
  return ['', `Recent rows (the ${report.recent_rows.length} most recently changed)`, ...table(recent, width, numeric)];
}

function runLines(report: Report, width: number): string[] {
  // The short run id is enough to find the row.
  const runs = report.runs.map((r) => ({
    run_id: typeof r.run_id === 'string' ? r.run_id.slice(0, 8) : r.run_id,
    command: r.command,
    anchor: r.anchor,
    started_at: shortTime(r.started_at),
    duration_s: r.duration_s,
    outcome: r.outcome,
    failed: r.failed,
    inserted: r.inserted,
    updated: r.updated,
    unchanged: r.unchanged,
    deleted: r.deleted,
    shard: r.shard,
    since: r.since,
    widened_from: r.widened_from,
    error: r.error,
  }));
  return ['', `Last runs (newest ${report.runs.length}, from aggregate_features_runs)`, ...table(runs, width, runNumbers)];
}

function table(rows: Record<string, unknown>[], width: number, rightAlign: readonly string[]): string[] {
  const fitted = fitTable(rows, width, { rightAlign, keep: 6, shrink: ['user_id', 'topic_id', 'error'] });
  const hidden = fitted.hidden.length === 0 ? [] : [shorten(`(not shown at this width: ${fitted.hidden.join(', ')}; see --json)`, width)];
  return [...fitted.lines, ...hidden];
}
