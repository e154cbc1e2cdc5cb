/**
 * The verdict of `report`: OK, WARN or FAIL, with one reason per finding. A pure function of
 * what the report collected and the configured thresholds, so every rule is tested without a
 * database clock:
 * - FAIL: no successful nightly run recorded, or the last one finished longer ago than
 *   AGG_REPORT_MAX_AGE_HOURS (a missed night); the expected night (yesterday, after
 *   AGG_REPORT_NIGHT_GRACE_HOURS) covered by no successful run (report/night.ts); the newest writing run of a shard failed (its
 *   failed combinations or error); the last verify found drift after the last successful run.
 * - WARN: a day's users or attempts fell below AGG_REPORT_DROP_PERCENT of the median of the
 *   AGG_REPORT_BASELINE_DAYS days before it; theta coverage below AGG_REPORT_MIN_THETA_PERCENT
 *   (theta enabled only); drift found by a verify that ran before the last successful run.
 */
import type { ReportThresholds } from '../config/index.js';
import { judgeNight, type NightInput } from './night.js';

export type Status = 'OK' | 'WARN' | 'FAIL';

/** One finding: what is wrong (or, for OK, what was checked) in a sentence. */
export interface Reason {
  readonly status: Status;
  /** A stable name for monitoring: stale, night, no_success, run_failed, drop, theta, drift. */
  readonly check: string;
  readonly message: string;
}

export interface Verdict {
  readonly status: Status;
  readonly reasons: Reason[];
}

/** A shard's last success and newest writing run, as sql/report.ts `runHealth` returns them. */
export interface ShardHealth {
  readonly shard: string;
  readonly success_anchor: string | null;
  readonly success_finished_at: string | null;
  readonly success_age_hours: number | null;
  readonly run_id: string | null;
  readonly command: string | null;
  readonly outcome: string | null;
  readonly failed: number | null;
  readonly error: string | null;
  readonly last_anchor: string | null;
  readonly last_started_at: string | null;
  readonly last_age_hours: number | null;
}

export interface VerifyRecord {
  readonly since: string;
  readonly anchor: string;
  readonly outcome: string;
  readonly failed: number | null;
  readonly error: string | null;
  readonly finished_at: string;
  readonly age_hours: number;
}

/** A day of the period with the median of the days before it. */
export interface DayTrend {
  readonly date: string;
  readonly users: number;
  readonly attempts: number;
  readonly median_users: number | null;
  readonly median_attempts: number | null;
}

export interface VerdictInput {
  readonly shards: readonly ShardHealth[];
  readonly verify: VerifyRecord | undefined;
  /** Days of the period, newest first. */
  readonly days: readonly DayTrend[];
  readonly theta: { readonly enabled: boolean; readonly rows: number; readonly withTheta: number };
  /** The newest night each shard covered and the one expected (report/night.ts); no check without it. */
  readonly night?: NightInput | undefined;
}

const rank: Record<Status, number> = { OK: 0, WARN: 1, FAIL: 2 };

/** The median of a list of numbers; null for an empty list. */
export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

const hours = (h: number) => (h < 48 ? `${h.toFixed(1)} h` : `${(h / 24).toFixed(1)} days`);

type Add = (status: Status, check: string, message: string) => void;

/** Judges the collected facts. */
export function judge(input: VerdictInput, thresholds: ReportThresholds): Verdict {
  const reasons: Reason[] = [];
  const add: Add = (status, check, message) => reasons.push({ status, check, message });
  const newest = judgeSchedule(input, thresholds, add);
  judgeDays(input, thresholds, newest.anchor, add);
  judgeTheta(input, thresholds, add);
  judgeVerify(input, newest.finishedAt, add);
  for (const finding of judgeNight(input.night)) add(finding.status, finding.check, finding.message);
  const status = reasons.reduce<Status>((worst, r) => (rank[r.status] > rank[worst] ? r.status : worst), 'OK');
  return { status, reasons };
}

/**
 * Schedule: every shard of the current layout needs a recent successful nightly run. Returns
 * the newest successful anchor and finish of any shard.
 */
function judgeSchedule(
  input: VerdictInput,
  thresholds: ReportThresholds,
  add: Add,
): { anchor: string | undefined; finishedAt: string | undefined } {
  if (input.shards.length === 0 || input.shards.every((s) => s.success_finished_at === null)) {
    add('FAIL', 'no_success', 'no successful nightly run is recorded in aggregate_features_runs');
  }
  let newestSuccessAnchor: string | undefined;
  let newestSuccessAt: string | undefined;
  for (const s of input.shards) {
    const label = input.shards.length > 1 ? ` of shard ${s.shard}` : '';
    if (s.success_anchor !== null && (newestSuccessAnchor === undefined || s.success_anchor > newestSuccessAnchor)) {
      newestSuccessAnchor = s.success_anchor;
    }
    if (s.success_finished_at !== null && (newestSuccessAt === undefined || s.success_finished_at > newestSuccessAt)) {
      newestSuccessAt = s.success_finished_at;
    }
    if (s.success_age_hours === null) {
      if (input.shards.some((o) => o.success_age_hours !== null))
        add('FAIL', 'no_success', `no successful nightly run${label} is recorded`);
    } else if (s.success_age_hours > thresholds.maxAgeHours) {
      add(
        'FAIL',
        'stale',
        `the last successful run${label} finished ${hours(s.success_age_hours)} ago (anchor ${s.success_anchor}); expected at least every ${thresholds.maxAgeHours} h (AGG_REPORT_MAX_AGE_HOURS)`,
      );
    } else {
      add('OK', 'stale', `last successful run${label} ${hours(s.success_age_hours)} ago (anchor ${s.success_anchor})`);
    }
    if (s.outcome === 'failed') {
      const what =
        (s.failed ?? 0) > 0 ? `${s.failed} combinations failed${s.error ? ` (${s.error})` : ''}` : (s.error ?? 'no error recorded');
      add('FAIL', 'run_failed', `the last ${s.command}${label} (${hours(s.last_age_hours ?? 0)} ago) failed: ${what}`);
    }
  }
  return { anchor: newestSuccessAnchor, finishedAt: newestSuccessAt };
}

/** Each day against the days before it; days after the newest computed anchor are not judged yet. */
function judgeDays(input: VerdictInput, thresholds: ReportThresholds, newestSuccessAnchor: string | undefined, add: Add): void {
  const factor = thresholds.dropPercent / 100;
  for (const day of input.days) {
    if (newestSuccessAnchor !== undefined && day.date > newestSuccessAnchor) continue;
    const drops: string[] = [];
    if (day.median_users !== null && day.median_users > 0 && day.users < factor * day.median_users) {
      drops.push(`${day.users} users (median ${day.median_users})`);
    }
    if (day.median_attempts !== null && day.median_attempts > 0 && day.attempts < factor * day.median_attempts) {
      drops.push(`${day.attempts} attempts (median ${day.median_attempts})`);
    }
    if (drops.length > 0) {
      add(
        'WARN',
        'drop',
        `${day.date} has ${drops.join(' and ')}: below ${thresholds.dropPercent}% of the ${thresholds.baselineDays} days before it (AGG_REPORT_DROP_PERCENT)`,
      );
    }
  }
}

function judgeTheta(input: VerdictInput, thresholds: ReportThresholds, add: Add): void {
  if (!input.theta.enabled || input.theta.rows === 0) return;
  const percent = (100 * input.theta.withTheta) / input.theta.rows;
  if (percent < thresholds.minThetaPercent) {
    add(
      'WARN',
      'theta',
      `theta coverage ${percent.toFixed(1)}% of ${input.theta.rows} rows, below ${thresholds.minThetaPercent}% (AGG_REPORT_MIN_THETA_PERCENT)`,
    );
  }
}

/** A verify that found drift: FAIL when it is newer than the last successful run, else WARN. */
function judgeVerify(input: VerdictInput, newestSuccessAt: string | undefined, add: Add): void {
  const v = input.verify;
  if (v === undefined || v.outcome !== 'failed') return;
  const after = newestSuccessAt === undefined || v.finished_at > newestSuccessAt;
  const found = `verify of ${v.since}..${v.anchor} ${hours(v.age_hours)} ago found drift (${v.error ?? `${v.failed} rows`})`;
  if (after) add('FAIL', 'drift', `${found}; repair with backfill over those days`);
  else add('WARN', 'drift', `${found}, before the last successful run; run verify again`);
}

/** Adds each day's median of the `baselineDays` days before it; `history` is newest first and longer than the period. */
export function withTrend(
  history: readonly { date: string; users: number; attempts: number }[],
  periodDays: number,
  baselineDays: number,
): DayTrend[] {
  return history.slice(0, periodDays).map((day, i) => {
    const before = history.slice(i + 1, i + 1 + baselineDays);
    return {
      date: day.date,
      users: day.users,
      attempts: day.attempts,
      median_users: median(before.map((d) => d.users)),
      median_attempts: median(before.map((d) => d.attempts)),
    };
  });
}
