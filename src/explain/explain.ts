/**
 * `explain`: how one row of features_topic_daily is made, term by term: the day's attempts and
 * what each counts for, the median's middle values, the two 14-day halves with their per-day
 * answered/correct counts, the theta estimate chosen and the ones skipped, the improvement
 * formula with its terms, and the stored row beside the job's own recomputation of it.
 * Read-only; the CLI prints it as text (explain/text.ts) or JSON.
 */
import type { Config } from '../config/index.js';
import type { Session } from '../database/db.js';
import { ConfigError } from '../errors.js';
import type { Emit } from '../observe/events.js';
import { checkSchema } from '../database/migrate.js';
import { setUp } from '../pipeline/setup.js';
import {
  dayAttempts,
  estimatesOfPair,
  halfBounds,
  halvesPerDay,
  pairSource,
  recomputedRow,
  storedRow,
  type PairDay,
} from '../sql/explain.js';
import { planRange } from '../window.js';
import { unsharded, workOf, type Computation, type ThetaPlan } from '../work.js';

export interface ExplainOptions {
  readonly user: string;
  readonly topic: string;
  readonly date: string;
}

export interface ExplainAttempt {
  readonly completed_at: string;
  readonly correct: boolean | null;
  readonly response_time_ms: number | null;
  readonly hint_used: boolean | null;
  readonly counts_correct: boolean;
  readonly valid_time: boolean;
  readonly counts_hint: boolean;
  readonly is_last: boolean;
}

export interface ExplainEstimate {
  readonly at: string;
  readonly theta: string | null;
  readonly se: string | null;
  /** Why the estimate is not used for the day, or null when it is valid and not after it. */
  readonly skipped: string | null;
  readonly theta_rounded: string | null;
  readonly sd_rounded: string | null;
  readonly chosen: boolean;
  readonly recent: boolean;
  readonly previous: boolean;
}

export const rowColumns = [
  'attempts',
  'correct',
  'avg_time_ms',
  'rt_median',
  'hints',
  'last_seen_at',
  'theta_estimate',
  'theta_sd',
  'improvement',
] as const;
export type RowColumn = (typeof rowColumns)[number];
type RowValues = Record<RowColumn, string | number | null>;

export interface Explanation {
  readonly user_id: string;
  readonly topic_id: string;
  readonly date: string;
  readonly timezone: string;
  readonly attempts: ExplainAttempt[];
  readonly counts: { readonly attempts: number; readonly correct: number; readonly hints: number; readonly last_seen_at: string | null };
  readonly avg_time: { readonly valid_times: number; readonly sum: number; readonly mean: number | null; readonly rounded: number | null };
  readonly median: {
    readonly sorted_valid_times: number[];
    readonly middle: number[];
    readonly value: number | null;
    readonly rounded: number | null;
  };
  readonly halves: {
    readonly recent: { readonly from: string; readonly to: string; readonly n: number; readonly c: number };
    readonly previous: { readonly from: string; readonly to: string; readonly n: number; readonly c: number };
    readonly days: { readonly day: string; readonly half: 'recent' | 'previous'; readonly answered: number; readonly correct: number }[];
  };
  readonly improvement: ImprovementTerms;
  /** undefined with theta disabled (the theta columns are then not the job's). */
  readonly theta: ThetaTerms | undefined;
  readonly stored: RowValues | null;
  readonly recomputed: RowValues | null;
  /** Columns whose stored and recomputed values differ (theta columns only when theta is enabled). */
  readonly differences: RowColumn[];
}

export interface ImprovementTerms {
  /** Which formula made the value: accuracy, theta, or none (a half is empty: NULL). */
  readonly formula: 'accuracy' | 'theta' | 'none';
  readonly n_r: number;
  readonly c_r: number;
  readonly n_p: number;
  readonly c_p: number;
  readonly p_r: number | null;
  readonly p_p: number | null;
  readonly exposure: number;
  /** 1 − min(0.5, 1.96·sqrt(p_r(1 − p_r)/n_r)) (accuracy) or 1 − min(0.5, 1.96·se_recent) (theta). */
  readonly penalty: number | null;
  readonly theta_recent: string | null;
  readonly theta_prev: string | null;
  readonly se_recent: string | null;
  /** The formula's value before clamping and rounding, in double precision (the job computes it exactly). */
  readonly unrounded: number | null;
}

export interface ThetaTerms {
  readonly estimates: ExplainEstimate[];
  /** mirt_ability rows of the user, looked at only when no student_topic_theta estimate applies. */
  readonly mirt: ExplainEstimate[] | undefined;
  readonly chosen: {
    readonly table: 'student_topic_theta' | 'mirt_ability';
    readonly at: string;
    readonly theta: string;
    readonly sd: string | null;
  } | null;
}

/** Explains the row of (user, topic, date). */
export async function explainRow(session: Session, config: Config, options: ExplainOptions, emit: Emit): Promise<Explanation> {
  await checkSchema(session);
  const { computation } = await setUp(session, config, emit);
  const pair: PairDay = {
    source: computation.source,
    user: options.user,
    topic: options.topic,
    date: options.date,
    timezone: config.timezone,
  };
  const attempts = (await session.query<ExplainAttempt>(dayAttempts(pair))).rows;
  const perDay = (await session.query<{ day: string; answered: number; correct: number }>(halvesPerDay(pair))).rows;
  const bounds = (
    await session.query<{ recent_from: string; recent_to: string; previous_from: string; previous_to: string }>(halfBounds(options.date))
  ).rows[0]!;
  const stored = (await session.query<RowValues & { computed_at: string }>(storedRow(pair))).rows[0] ?? null;
  if (attempts.length === 0 && stored === null) {
    throw new ConfigError(
      `no attempts and no stored row for user=${options.user} topic=${options.topic} date=${options.date} (AGG_TIMEZONE=${config.timezone}): check the ids and the day`,
    );
  }

  const theta = computation.theta && (await thetaTerms(session, pair, computation.theta));
  const halves = halvesOf(perDay, bounds);
  const recomputed = await recompute(session, config, computation, options);
  const owned = rowColumns.filter((c) => config.includeTheta || (c !== 'theta_estimate' && c !== 'theta_sd'));
  const differences =
    stored === null || recomputed === null ? [...owned] : owned.filter((c) => textOf(stored[c]) !== textOf(recomputed[c]));
  return {
    user_id: options.user,
    topic_id: options.topic,
    date: options.date,
    timezone: config.timezone,
    attempts,
    counts: {
      attempts: attempts.length,
      correct: attempts.filter((a) => a.counts_correct).length,
      hints: attempts.filter((a) => a.counts_hint).length,
      last_seen_at: attempts.find((a) => a.is_last)?.completed_at ?? null,
    },
    ...timeTerms(attempts),
    halves,
    improvement: improvementTerms(config, halves.recent, halves.previous, theta),
    theta,
    stored: stored === null ? null : pickColumns(stored),
    recomputed,
    differences,
  };
}

/** The estimates of the pair (and of the user in mirt_ability when none applies), and the one chosen. */
async function thetaTerms(session: Session, pair: PairDay, plan: ThetaPlan): Promise<ThetaTerms> {
  const estimates = (await session.query<ExplainEstimate>(estimatesOfPair(pair, plan.estimates, 'user and topic'))).rows;
  const pick = estimates.find((e) => e.chosen);
  let mirt: ExplainEstimate[] | undefined;
  let chosen: ThetaTerms['chosen'] = pick
    ? { table: 'student_topic_theta', at: pick.at, theta: pick.theta_rounded!, sd: pick.sd_rounded }
    : null;
  if (!pick && plan.mirt) {
    mirt = (await session.query<ExplainEstimate>(estimatesOfPair(pair, plan.mirt, 'user'))).rows;
    const fallback = mirt.find((e) => e.chosen);
    if (fallback) chosen = { table: 'mirt_ability', at: fallback.at, theta: fallback.theta_rounded!, sd: fallback.sd_rounded };
  }
  return { estimates, mirt, chosen };
}

/** The improvement index's two 14-day halves from the pair's answered/correct counts per day. */
function halvesOf(
  perDay: readonly { day: string; answered: number; correct: number }[],
  bounds: { recent_from: string; recent_to: string; previous_from: string; previous_to: string },
): Explanation['halves'] {
  const days = perDay.map((d) => ({ ...d, half: d.day >= bounds.recent_from ? ('recent' as const) : ('previous' as const) }));
  const sum = (half: 'recent' | 'previous', key: 'answered' | 'correct') =>
    days.filter((d) => d.half === half).reduce((a, d) => a + d[key], 0);
  const recent = { from: bounds.recent_from, to: bounds.recent_to, n: sum('recent', 'answered'), c: sum('recent', 'correct') };
  const previous = { from: bounds.previous_from, to: bounds.previous_to, n: sum('previous', 'answered'), c: sum('previous', 'correct') };
  return { recent, previous, days };
}

/** The mean and the median of the valid response times, with the middle values. */
function timeTerms(attempts: readonly ExplainAttempt[]): Pick<Explanation, 'avg_time' | 'median'> {
  const times = attempts.filter((a) => a.valid_time).map((a) => a.response_time_ms!);
  const sorted = [...times].sort((a, b) => a - b);
  const middle =
    sorted.length === 0
      ? []
      : sorted.length % 2 === 1
        ? [sorted[(sorted.length - 1) / 2]!]
        : sorted.slice(sorted.length / 2 - 1, sorted.length / 2 + 1);
  const medianValue = middle.length === 0 ? null : middle.reduce((a, b) => a + b, 0) / middle.length;
  const timeSum = times.reduce((a, b) => a + b, 0);
  const mean = times.length === 0 ? null : timeSum / times.length;
  // Times are non-negative, so Math.round (half up) is half away from zero here.
  return {
    avg_time: { valid_times: times.length, sum: timeSum, mean, rounded: mean === null ? null : Math.round(mean) },
    median: { sorted_valid_times: sorted, middle, value: medianValue, rounded: medianValue === null ? null : Math.round(medianValue) },
  };
}

function improvementTerms(
  config: Config,
  recent: { n: number; c: number },
  previous: { n: number; c: number },
  theta: ThetaTerms | undefined,
): ImprovementTerms {
  const exposure = Math.min(1, recent.n / 30);
  const base = {
    n_r: recent.n,
    c_r: recent.c,
    n_p: previous.n,
    c_p: previous.c,
    exposure,
    theta_recent: null,
    theta_prev: null,
    se_recent: null,
  };
  const thetaRecent = theta?.estimates.find((e) => e.recent);
  const thetaPrev = theta?.estimates.find((e) => e.previous);
  const pR = recent.n > 0 ? recent.c / recent.n : null;
  const pP = previous.n > 0 ? previous.c / previous.n : null;
  const clamp = (x: number) => Math.max(-1, Math.min(1, x));
  if (config.improvementMode === 'theta' && recent.n >= 5 && thetaRecent && thetaPrev) {
    const se = thetaRecent.sd_rounded === null ? null : Number(thetaRecent.se);
    const penalty = se === null ? 1 : 1 - Math.min(0.5, 1.96 * se);
    const diff = Number(thetaRecent.theta) - Number(thetaPrev.theta);
    return {
      ...base,
      formula: 'theta',
      p_r: pR,
      p_p: pP,
      penalty,
      theta_recent: thetaRecent.theta,
      theta_prev: thetaPrev.theta,
      se_recent: se === null ? null : thetaRecent.se,
      unrounded: clamp(diff * exposure * penalty),
    };
  }
  if (pR === null || pP === null) return { ...base, formula: 'none', p_r: pR, p_p: pP, penalty: null, unrounded: null };
  const penalty = 1 - Math.min(0.5, 1.96 * Math.sqrt((pR * (1 - pR)) / recent.n));
  return { ...base, formula: 'accuracy', p_r: pR, p_p: pP, penalty, unrounded: clamp((pR - pP) * exposure * penalty) };
}

/** The job's computation of the one row (compute.ts), over the pair's attempts only. */
async function recompute(session: Session, config: Config, computation: Computation, options: ExplainOptions): Promise<RowValues | null> {
  const window = await planRange(session, { from: options.date, to: options.date, timezone: config.timezone });
  // The source as the run reads it (with AGG_SOURCE_TIMEZONE applied), restricted to the pair.
  const source = pairSource(computation.source, options);
  const row = (await session.query<RowValues>(recomputedRow(workOf({ ...computation, source }, window, unsharded), options))).rows[0];
  return row === undefined ? null : pickColumns(row);
}

function pickColumns(row: RowValues): RowValues {
  return Object.fromEntries(rowColumns.map((c) => [c, row[c]])) as RowValues;
}

function textOf(value: string | number | null): string | null {
  return value === null ? null : String(value);
}
