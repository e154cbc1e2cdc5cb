/**
 * The oracle's intermediate terms for one (user, topic, day), for checking `explain` term by
 * term. Built from the oracle's own functions (oracle.ts), so a term here is the term the
 * oracle's row is made of; oracle() itself is unchanged.
 */
import {
  accuracyImprovementMilli,
  formatMilli,
  latest,
  localDay,
  parseDate,
  parseInstant,
  thetaImprovementMilli,
  validateEstimate,
  type OracleAttempt,
  type OracleOptions,
  type ValidEstimate,
} from './oracle.js';

export interface OracleTerms {
  attempts: number;
  correct: number;
  hints: number;
  sortedValidTimes: number[];
  middle: number[];
  nR: number;
  cR: number;
  nP: number;
  cP: number;
  /** Per day of d−27 … d with answered attempts: [day, answered, correct]. */
  days: [string, number, number][];
  formula: 'accuracy' | 'theta' | 'none';
  /** The chosen student_topic_theta estimate's instant (µs) and rounded theta, or null. */
  chosen: { at: bigint; theta: string } | null;
  recentAt: bigint | null;
  previousAt: bigint | null;
  improvement: string | null;
}

const dayText = (day: number) => new Date(day * 86_400_000).toISOString().slice(0, 10);

/** The terms of the oracle's row for (user, topic, date). */
export function oracleTerms(attempts: OracleAttempt[], options: OracleOptions, user: string, topic: string, date: string): OracleTerms {
  const tz = options.timezone;
  const d = parseDate(date);
  const own = attempts
    .filter((a) => a.student_id === user && a.topic_id === topic)
    .map((a) => ({ ...a, day: localDay(parseInstant(a.completed_at), tz) }));
  const today = own.filter((a) => a.day === d);
  const sortedValidTimes = today
    .map((a) => a.response_time_ms)
    .filter((t): t is number => t !== null && t >= 0)
    .sort((x, y) => x - y);
  const n = sortedValidTimes.length;
  const middle = n === 0 ? [] : n % 2 === 1 ? [sortedValidTimes[(n - 1) / 2]!] : [sortedValidTimes[n / 2 - 1]!, sortedValidTimes[n / 2]!];

  const perDay = new Map<number, [number, number]>();
  for (const a of own) {
    if (a.correct === null || a.day < d - 27 || a.day > d) continue;
    const counts = perDay.get(a.day) ?? [0, 0];
    counts[0] += 1;
    if (a.correct) counts[1] += 1;
    perDay.set(a.day, counts);
  }
  const days = [...perDay.entries()]
    .sort((x, y) => x[0] - y[0])
    .map(([day, [answered, correct]]) => [dayText(day), answered, correct] as [string, number, number]);
  const sum = (from: number, to: number, i: 0 | 1) =>
    [...perDay.entries()].filter(([day]) => day >= from && day <= to).reduce((s, [, c]) => s + c[i], 0);
  const nR = sum(d - 13, d, 0);
  const cR = sum(d - 13, d, 1);
  const nP = sum(d - 27, d - 14, 0);
  const cP = sum(d - 27, d - 14, 1);

  const valid: ValidEstimate[] = [];
  for (const e of options.includeTheta ? (options.estimates ?? []) : []) {
    if (e.user_id !== user || e.topic_id !== topic) continue;
    const v = validateEstimate(e.user_id, e.topic_id, e.theta, e.se, e.updated_at, tz);
    if (v !== null) valid.push(v);
  }
  const chosen = latest(valid, Number.MIN_SAFE_INTEGER, d);
  const recent = latest(valid, d - 13, d);
  const previous = latest(valid, d - 27, d - 14);
  let formula: OracleTerms['formula'] = 'none';
  let milli: bigint | null;
  if (options.includeTheta && options.improvementMode === 'theta' && nR >= 5 && recent !== null && previous !== null) {
    formula = 'theta';
    milli = thetaImprovementMilli(nR, recent, previous);
  } else {
    milli = accuracyImprovementMilli(nR, cR, nP, cP);
    if (milli !== null) formula = 'accuracy';
  }
  return {
    attempts: today.length,
    correct: today.filter((a) => a.correct === true).length,
    hints: today.filter((a) => a.hint_used === true).length,
    sortedValidTimes,
    middle,
    nR,
    cR,
    nP,
    cP,
    days,
    formula,
    chosen: chosen === null ? null : { at: chosen.at, theta: formatMilli(chosen.thetaMilli) },
    recentAt: recent?.at ?? null,
    previousAt: previous?.at ?? null,
    improvement: milli === null ? null : formatMilli(milli),
  };
}
