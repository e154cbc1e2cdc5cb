// Independent correctness oracle for features_topic_daily (SPEC.md §3–§6).
//
// Written the plain way on purpose: loops over arrays, exact integer / rational arithmetic with
// BigInt, no shared code with src/. The project's tests compare the SQL job with this row by row.
//
// Exactness:
// - Instants are parsed to BigInt microseconds since the epoch (PostgreSQL's precision).
// - Calendar days are integer day numbers (days since 1970-01-01); the local date of an instant
//   in the job's time zone comes from Intl.DateTimeFormat.
// - Decimal text (theta, se) is parsed to an exact rational; rounding to 3 decimals is done on it.
// - The improvement index is computed as an exact number of the form a + b·√k (a, b rational,
//   k a non-negative integer), and rounded by exact comparisons, so values exactly on a rounding
//   boundary (…5 in the 4th decimal) round away from zero and irrational values round correctly.

export interface OracleAttempt {
  student_id: string | null;
  topic_id: string | null;
  /** ISO-8601 instant, e.g. 2025-11-01T23:59:59.999Z or with an offset */
  completed_at: string;
  correct: boolean | null;
  response_time_ms: number | null;
  hint_used: boolean | null;
}

/** A student_topic_theta row; theta/se are decimal text as stored ("1.2345", "-0.5", "NaN", "Infinity", "-Infinity"). */
export interface OracleEstimate {
  user_id: string;
  topic_id: string;
  theta: string | null;
  se: string | null;
  updated_at: string;
}

/** A mirt_ability row (user-level fallback). */
export interface OracleMirt {
  user_id: string;
  theta: string | null;
  se: string | null;
  fitted_at: string;
}

export interface OracleOptions {
  since: string;
  /** YYYY-MM-DD */
  anchor: string;
  /** IANA time zone name */
  timezone: string;
  includeTheta: boolean;
  improvementMode: 'accuracy' | 'theta';
  estimates?: OracleEstimate[];
  /** undefined = the mirt_ability table does not exist */
  mirt?: OracleMirt[];
}

export interface OracleRow {
  user_id: string;
  topic_id: string;
  /** YYYY-MM-DD */
  date: string;
  attempts: number;
  correct: number;
  avg_time_ms: number | null;
  rt_median: number | null;
  hints: number;
  /** max completed_at, ISO instant in UTC with milliseconds: 2025-11-01T23:59:59.999Z */
  last_seen_at: string;
  theta_estimate: string | null;
  theta_sd: string | null;
  /** numeric(6,3) text as PostgreSQL prints it: "0.125", "-0.040", "0.000", "1.000" */
  improvement: string | null;
}

// ---------------------------------------------------------------------------------------------
// Exact rationals: n / d with d > 0 (not necessarily reduced; BigInt makes that unnecessary).

interface Rat {
  n: bigint;
  d: bigint;
}

function rat(n: bigint, d: bigint = 1n): Rat {
  if (d === 0n) throw new Error('oracle: zero denominator');
  if (d < 0n) return { n: -n, d: -d };
  return { n, d };
}

function ratAdd(x: Rat, y: Rat): Rat {
  return rat(x.n * y.d + y.n * x.d, x.d * y.d);
}

function ratSub(x: Rat, y: Rat): Rat {
  return rat(x.n * y.d - y.n * x.d, x.d * y.d);
}

function ratMul(x: Rat, y: Rat): Rat {
  return rat(x.n * y.n, x.d * y.d);
}

function ratSign(x: Rat): number {
  if (x.n > 0n) return 1;
  if (x.n < 0n) return -1;
  return 0;
}

/** -1, 0 or 1 as x <, =, > y */
function ratCmp(x: Rat, y: Rat): number {
  return ratSign(ratSub(x, y));
}

function ratMin(x: Rat, y: Rat): Rat {
  return ratCmp(x, y) <= 0 ? x : y;
}

/** x rounded half away from zero to 3 decimals, as an integer number of thousandths. */
function ratRoundMilli(x: Rat): bigint {
  const negative = x.n < 0n;
  const absN = negative ? -x.n : x.n;
  // floor(|x|·1000 + 1/2) = floor((2·|n|·1000 + d) / (2·d)); BigInt division truncates, and
  // both operands are non-negative here, so truncation is floor.
  const q = (2n * absN * 1000n + x.d) / (2n * x.d);
  return negative ? -q : q;
}

// ---------------------------------------------------------------------------------------------
// Exact numbers a + b·√k (a, b rational, k a non-negative integer).

interface Surd {
  a: Rat;
  b: Rat;
  k: bigint;
}

function surdOfRat(x: Rat): Surd {
  return { a: x, b: rat(0n), k: 0n };
}

function surdSign(x: Surd): number {
  const sa = ratSign(x.a);
  const sb = x.k === 0n ? 0 : ratSign(x.b);
  if (sb === 0) return sa;
  if (sa === 0) return sb;
  if (sa === sb) return sa;
  // Opposite signs: the part with the larger absolute value decides. Compare a² with b²·k.
  const a2 = ratMul(x.a, x.a);
  const b2k = ratMul(ratMul(x.b, x.b), rat(x.k));
  const c = ratCmp(a2, b2k);
  if (c > 0) return sa;
  if (c < 0) return sb;
  return 0;
}

function surdMulRat(x: Surd, r: Rat): Surd {
  return { a: ratMul(x.a, r), b: ratMul(x.b, r), k: x.k };
}

function surdAddRat(x: Surd, r: Rat): Surd {
  return { a: ratAdd(x.a, r), b: x.b, k: x.k };
}

/** -1, 0 or 1 as x <, =, > r */
function surdCmpRat(x: Surd, r: Rat): number {
  return surdSign(surdAddRat(x, rat(-r.n, r.d)));
}

/** floor(x) for an x known to lie in [lo, hi). Binary search with exact comparisons. */
function surdFloor(x: Surd, lo: bigint, hi: bigint): bigint {
  if (surdCmpRat(x, rat(lo)) < 0 || surdCmpRat(x, rat(hi)) >= 0) throw new Error('oracle: value out of range');
  // invariant: lo ≤ x < hi
  while (hi - lo > 1n) {
    const mid = (lo + hi) / 2n;
    if (surdCmpRat(x, rat(mid)) >= 0) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** clamp(x, −1, 1) rounded half away from zero to 3 decimals, in thousandths. */
function clampAndRoundMilli(x: Surd): bigint {
  if (surdCmpRat(x, rat(1n)) > 0) return 1000n;
  if (surdCmpRat(x, rat(-1n)) < 0) return -1000n;
  const s = surdSign(x);
  if (s === 0) return 0n;
  // |x| ≤ 1, so |x|·1000 + 1/2 lies in [0, 1000.5]
  const absX = s > 0 ? x : surdMulRat(x, rat(-1n));
  const shifted = surdAddRat(surdMulRat(absX, rat(1000n)), rat(1n, 2n));
  const q = surdFloor(shifted, 0n, 1001n);
  return s > 0 ? q : -q;
}

/** numeric(6,3) text of a number of thousandths, as PostgreSQL prints it (never "-0.000"). */
export function formatMilli(m: bigint): string {
  const negative = m < 0n;
  const abs = negative ? -m : m;
  const intPart = abs / 1000n;
  const frac = (abs % 1000n).toString().padStart(3, '0');
  return `${negative ? '-' : ''}${intPart.toString()}.${frac}`;
}

// ---------------------------------------------------------------------------------------------
// Decimal text → exact rational.

/** Exact value of decimal text, or null when the text is NaN / ±Infinity. Throws on garbage. */
function parseDecimal(text: string): Rat | null {
  const s = text.trim();
  if (/^[+-]?(inf|infinity|nan)$/i.test(s)) return null;
  const m = /^([+-])?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d{1,5}))?$/.exec(s);
  if (m === null) throw new Error(`oracle: not a decimal number: ${JSON.stringify(text)}`);
  const intDigits = m[2] ?? '';
  const fracDigits = m[3] ?? '';
  if (intDigits === '' && fracDigits === '') throw new Error(`oracle: not a decimal number: ${JSON.stringify(text)}`);
  const exponent = m[4] === undefined ? 0 : Number(m[4]);
  let n = BigInt(intDigits + fracDigits);
  if (m[1] === '-') n = -n;
  const scale = fracDigits.length - exponent; // value = n · 10^(−scale)
  if (scale >= 0) return rat(n, 10n ** BigInt(scale));
  return rat(n * 10n ** BigInt(-scale));
}

// ---------------------------------------------------------------------------------------------
// Calendar: day numbers (days since 1970-01-01) and instants (BigInt microseconds since epoch).

const MICROS_PER_SECOND = 1_000_000n;
const SECONDS_PER_DAY = 86_400;

/** Day number of a proleptic Gregorian date; throws when the date does not exist. */
function dayNumber(year: number, month: number, day: number): number {
  const dt = new Date(Date.UTC(2000, 0, 1));
  dt.setUTCFullYear(year, month - 1, day); // setUTCFullYear, unlike Date.UTC, takes years 0…99 literally
  if (dt.getUTCFullYear() !== year || dt.getUTCMonth() !== month - 1 || dt.getUTCDate() !== day) {
    throw new Error(`oracle: no such date ${year}-${month}-${day}`);
  }
  return dt.getTime() / 86_400_000;
}

export function parseDate(text: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (m === null) throw new Error(`oracle: not a YYYY-MM-DD date: ${JSON.stringify(text)}`);
  return dayNumber(Number(m[1]), Number(m[2]), Number(m[3]));
}

function formatDate(dayNum: number): string {
  return new Date(dayNum * 86_400_000).toISOString().slice(0, 10);
}

/**
 * ISO-8601 / PostgreSQL text instant → microseconds since the epoch. An explicit offset (Z, ±HH,
 * ±HH:MM, ±HH:MM:SS) is required; up to 6 fractional digits (PostgreSQL's precision).
 * Years 2…9998 only, so that every local date is an ordinary 4-digit AD date.
 */
export function parseInstant(text: string): bigint {
  const m =
    /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?\s*(?:([Zz])|([+-])(\d{2})(?::?(\d{2})(?::?(\d{2}))?)?)$/.exec(
      text.trim(),
    );
  if (m === null) throw new Error(`oracle: not an ISO-8601 instant with an offset: ${JSON.stringify(text)}`);
  const year = Number(m[1]);
  if (year < 2 || year > 9998) throw new Error(`oracle: year out of the supported range 2…9998: ${JSON.stringify(text)}`);
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = Number(m[6] ?? '0');
  if (hour > 23 || minute > 59 || second > 59) throw new Error(`oracle: bad time of day: ${JSON.stringify(text)}`);
  const micros = BigInt((m[7] ?? '').padEnd(6, '0'));
  let offsetSeconds = 0;
  if (m[8] === undefined) {
    const oh = Number(m[10]);
    const om = Number(m[11] ?? '0');
    const os = Number(m[12] ?? '0');
    if (oh > 15 || om > 59 || os > 59) throw new Error(`oracle: bad UTC offset: ${JSON.stringify(text)}`);
    offsetSeconds = (m[9] === '-' ? -1 : 1) * (oh * 3600 + om * 60 + os);
  }
  const days = dayNumber(year, Number(m[2]), Number(m[3]));
  const seconds = days * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second - offsetSeconds;
  return BigInt(seconds) * MICROS_PER_SECOND + micros;
}

/** floor(a / b) for b > 0 */
function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n ? q - 1n : q;
}

/** max completed_at text: UTC with milliseconds; 6 fractional digits only if the instant has sub-millisecond precision. */
export function formatInstant(micros: bigint): string {
  const ms = floorDiv(micros, 1000n);
  const subMs = micros - ms * 1000n;
  const iso = new Date(Number(ms)).toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
  if (subMs === 0n) return iso;
  return `${iso.slice(0, -1)}${subMs.toString().padStart(3, '0')}Z`;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Day number of the local calendar date of an instant in an IANA time zone. */
export function localDay(micros: bigint, timezone: string): number {
  let fmt = formatters.get(timezone);
  if (fmt === undefined) {
    fmt = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      calendar: 'gregory',
      numberingSystem: 'latn',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
    });
    formatters.set(timezone, fmt);
  }
  // Zone offsets are whole seconds, so flooring to the millisecond never changes the local date.
  const parts = fmt.formatToParts(new Date(Number(floorDiv(micros, 1000n))));
  let year = NaN;
  let month = NaN;
  let day = NaN;
  for (const p of parts) {
    if (p.type === 'year') year = Number(p.value);
    else if (p.type === 'month') month = Number(p.value);
    else if (p.type === 'day') day = Number(p.value);
  }
  return dayNumber(year, month, day);
}

// ---------------------------------------------------------------------------------------------
// Theta estimates (§5).

export interface ValidEstimate {
  user_id: string;
  topic_id: string; // '' for mirt rows
  theta: Rat;
  thetaMilli: bigint;
  se: Rat | null; // null when se is NULL, negative, not finite or does not fit numeric(6,3)
  seMilli: bigint | null;
  at: bigint; // updated_at / fitted_at in microseconds
  day: number; // local day of `at`
}

const NUMERIC_6_3_MAX_MILLI = 999_999n; // numeric(6,3): |value| ≤ 999.999

/** The estimate as the job sees it, or null when it is invalid (skipped everywhere). */
export function validateEstimate(
  user_id: string,
  topic_id: string,
  thetaText: string | null,
  seText: string | null,
  atText: string,
  timezone: string,
): ValidEstimate | null {
  if (thetaText === null) return null;
  const theta = parseDecimal(thetaText);
  if (theta === null) return null;
  const thetaMilli = ratRoundMilli(theta);
  if (thetaMilli > NUMERIC_6_3_MAX_MILLI || thetaMilli < -NUMERIC_6_3_MAX_MILLI) return null;
  let se: Rat | null = null;
  let seMilli: bigint | null = null;
  if (seText !== null) {
    const parsed = parseDecimal(seText);
    if (parsed !== null && ratSign(parsed) >= 0) {
      const milli = ratRoundMilli(parsed);
      if (milli <= NUMERIC_6_3_MAX_MILLI) {
        se = parsed;
        seMilli = milli;
      }
    }
  }
  const at = parseInstant(atText);
  return { user_id, topic_id, theta, thetaMilli, se, seMilli, at, day: localDay(at, timezone) };
}

/** true when x should be chosen over y: later instant; then higher theta; then higher se, NULL se last. */
function isBetter(x: ValidEstimate, y: ValidEstimate): boolean {
  if (x.at !== y.at) return x.at > y.at;
  const c = ratCmp(x.theta, y.theta);
  if (c !== 0) return c > 0;
  if (x.se === null) return false;
  if (y.se === null) return true;
  return ratCmp(x.se, y.se) > 0;
}

/** The best estimate in the list whose local day lies in [fromDay, toDay], or null. */
export function latest(list: ValidEstimate[], fromDay: number, toDay: number): ValidEstimate | null {
  let best: ValidEstimate | null = null;
  for (const e of list) {
    if (e.day < fromDay || e.day > toDay) continue;
    if (best === null || isBetter(e, best)) best = e;
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
// Improvement (§6).

/** Integer square root of n ≥ 0 if n is a perfect square, else null. (Used only in a sanity check.) */
function exactSqrt(n: bigint): bigint | null {
  if (n < 0n) return null;
  if (n < 2n) return n;
  let x = n;
  let y = (x + 1n) / 2n;
  while (y < x) {
    x = y;
    y = (x + n / x) / 2n;
  }
  return x * x === n ? x : null;
}

/** exposure = min(1, n_r / 30) */
function exposure(nR: number): Rat {
  return ratMin(rat(1n), rat(BigInt(nR), 30n));
}

/** clamp((p_r − p_p)·exposure·(1 − min(0.5, 1.96·sqrt(p_r(1−p_r)/n_r))), −1, 1), in thousandths; null if n_r = 0 or n_p = 0. */
export function accuracyImprovementMilli(nR: number, cR: number, nP: number, cP: number): bigint | null {
  if (nR === 0 || nP === 0) return null;
  const diff = ratSub(rat(BigInt(cR), BigInt(nR)), rat(BigInt(cP), BigInt(nP)));
  const scale = ratMul(diff, exposure(nR));
  // sqrt(p(1−p)/n) with p = c/n equals sqrt(c·(n−c)·n) / n²; so 1.96·sqrt(…) = (49/25)/n² · √k
  const n = BigInt(nR);
  const k = BigInt(cR) * (n - BigInt(cR)) * n;
  const coef = rat(49n, 25n * n * n);
  const spread: Surd = { a: rat(0n), b: coef, k };
  // Sanity check of the surd arithmetic against the perfect-square shortcut.
  const root = exactSqrt(k);
  if (root !== null && surdCmpRat(spread, ratMul(coef, rat(root))) !== 0) throw new Error('oracle: surd arithmetic broken');
  let penalty: Surd;
  if (surdCmpRat(spread, rat(1n, 2n)) >= 0) penalty = surdOfRat(rat(1n, 2n));
  else penalty = { a: rat(1n), b: rat(-coef.n, coef.d), k }; // 1 − coef·√k
  return clampAndRoundMilli(surdMulRat(penalty, scale));
}

/** clamp((θ_recent − θ_prev)·exposure·(1 − min(0.5, 1.96·se_recent)), −1, 1), in thousandths; factor 1 when se_recent is NULL. */
export function thetaImprovementMilli(nR: number, recent: ValidEstimate, prev: ValidEstimate): bigint {
  const diff = ratSub(recent.theta, prev.theta);
  let factor = rat(1n);
  if (recent.se !== null) factor = ratSub(rat(1n), ratMin(rat(1n, 2n), ratMul(rat(49n, 25n), recent.se)));
  return clampAndRoundMilli(surdOfRat(ratMul(ratMul(diff, exposure(nR)), factor)));
}

// ---------------------------------------------------------------------------------------------
// The oracle.

interface ParsedAttempt {
  user_id: string;
  topic_id: string;
  day: number;
  at: bigint;
  correct: boolean | null;
  response_time_ms: number | null;
  hint_used: boolean | null;
}

function pairKey(user: string, topic: string): string {
  return JSON.stringify([user, topic]);
}

/** Rounded half away from zero mean of non-negative integers: floor((2·sum + n) / (2·n)). */
function roundedMean(values: number[]): number | null {
  if (values.length === 0) return null;
  let sum = 0n;
  for (const v of values) sum += BigInt(v);
  const n = BigInt(values.length);
  return Number((2n * sum + n) / (2n * n));
}

/** percentile_cont(0.5) of non-negative integers rounded half away from zero. */
function roundedMedian(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((x, y) => x - y);
  const len = sorted.length;
  if (len % 2 === 1) return sorted[(len - 1) / 2] as number;
  const lower = BigInt(sorted[len / 2 - 1] as number);
  const upper = BigInt(sorted[len / 2] as number);
  return Number((lower + upper + 1n) / 2n); // (lower+upper)/2 rounded half up; values ≥ 0
}

/** The attempts of one (user, topic) pair, or of one (user, topic, day), in the order read. */
type AttemptList = ParsedAttempt[];

/** The valid estimates the theta columns and the theta improvement choose from. */
interface ValidThetas {
  /** student_topic_theta, by (user, topic). */
  readonly byPair: Map<string, ValidEstimate[]>;
  /** mirt_ability, by user (empty when the table does not exist). */
  readonly mirtByUser: Map<string, ValidEstimate[]>;
}

/** Appends `item` to the list of `key`, starting the list when it is the first. */
function pushTo<T>(map: Map<string, T[]>, key: string, item: T): void {
  let list = map.get(key);
  if (list === undefined) {
    list = [];
    map.set(key, list);
  }
  list.push(item);
}

/**
 * Window: "Attempts after the anchor are never used. Attempts with a NULL or empty
 * `student_id` or `topic_id` are ignored." Each kept attempt carries its day, cut in the
 * job's time zone. Days before the window stay: the improvement index reads them.
 */
function usableAttempts(attempts: OracleAttempt[], anchorDay: number, tz: string): AttemptList {
  const used: AttemptList = [];
  for (const a of attempts) {
    if (a.student_id === null || a.student_id === '' || a.topic_id === null || a.topic_id === '') continue;
    const at = parseInstant(a.completed_at);
    const day = localDay(at, tz);
    if (day > anchorDay) continue;
    if (a.response_time_ms !== null && !Number.isInteger(a.response_time_ms)) {
      throw new Error(`oracle: response_time_ms must be an integer, got ${a.response_time_ms}`);
    }
    used.push({
      user_id: a.student_id,
      topic_id: a.topic_id,
      day,
      at,
      correct: a.correct,
      response_time_ms: a.response_time_ms,
      hint_used: a.hint_used,
    });
  }
  return used;
}

/**
 * "For every (user, topic, day) with at least one attempt in the window": the window is every
 * day from `since` to the anchor, both included. One list of attempts per row to write.
 */
function attemptsPerRow(used: AttemptList, sinceDay: number, anchorDay: number): AttemptList[] {
  const groups = new Map<string, AttemptList>();
  for (const a of used) {
    if (a.day < sinceDay || a.day > anchorDay) continue;
    pushTo(groups, JSON.stringify([a.user_id, a.topic_id, a.day]), a);
  }
  return [...groups.values()];
}

/** All usable attempts of each (user, topic), days before the window included: the improvement halves read them. */
function historyPerPair(used: AttemptList): Map<string, AttemptList> {
  const byPair = new Map<string, AttemptList>();
  for (const a of used) pushTo(byPair, pairKey(a.user_id, a.topic_id), a);
  return byPair;
}

/**
 * Theta's validity (docs/theta.md): an invalid estimate (theta NULL, NaN, ±Infinity, or not
 * fitting numeric(6,3)) is skipped everywhere as if it did not exist. None is read when theta
 * is disabled.
 */
function validThetas(options: OracleOptions): ValidThetas {
  const byPair = new Map<string, ValidEstimate[]>();
  const mirtByUser = new Map<string, ValidEstimate[]>();
  if (!options.includeTheta) return { byPair, mirtByUser };
  for (const e of options.estimates ?? []) {
    const v = validateEstimate(e.user_id, e.topic_id, e.theta, e.se, e.updated_at, options.timezone);
    if (v !== null) pushTo(byPair, pairKey(v.user_id, v.topic_id), v);
  }
  for (const r of options.mirt ?? []) {
    const v = validateEstimate(r.user_id, '', r.theta, r.se, r.fitted_at, options.timezone);
    if (v !== null) pushTo(mirtByUser, v.user_id, v);
  }
  return { byPair, mirtByUser };
}

/** `attempts`: "attempts that day". */
function attemptCount(day: AttemptList): number {
  return day.length;
}

/** `correct`: "attempts with `correct IS TRUE`". */
function correctCount(day: AttemptList): number {
  return day.filter((a) => a.correct === true).length;
}

/** `hints`: "attempts with `hint_used IS TRUE`". */
function hintCount(day: AttemptList): number {
  return day.filter((a) => a.hint_used === true).length;
}

/** `last_seen_at`: "the last attempt's `completed_at`". */
function lastSeen(day: AttemptList): bigint {
  let last = day[0]!.at;
  for (const a of day) if (a.at > last) last = a.at;
  return last;
}

/** The valid response times of `avg_time_ms` and `rt_median`: "not NULL, ≥ 0". */
function validResponseTimes(day: AttemptList): number[] {
  const times: number[] = [];
  for (const a of day) if (a.response_time_ms !== null && a.response_time_ms >= 0) times.push(a.response_time_ms);
  return times;
}

/** `avg_time_ms`: "mean of the valid response times (not NULL, ≥ 0), rounded half away from zero; NULL if none". */
function meanResponseTime(day: AttemptList): number | null {
  return roundedMean(validResponseTimes(day));
}

/**
 * `rt_median`: "median of the valid response times (mean of the two middle ones for an even
 * count), rounded half away from zero"; NULL if none.
 */
function medianResponseTime(day: AttemptList): number | null {
  return roundedMedian(validResponseTimes(day));
}

/**
 * `theta_estimate`, `theta_sd`: "the IRT ability estimate as of the end of that day (never a
 * later one)". docs/theta.md: the latest valid estimate of (u, t) before the end of d; else,
 * when mirt_ability exists, the latest valid one of u; NULL if neither exists. `theta_sd` is
 * that estimate's se, NULL when it is NULL or invalid. Both NULL with theta disabled.
 */
function thetaAsOf(
  d: number,
  pairEstimates: ValidEstimate[],
  userEstimates: ValidEstimate[],
  includeTheta: boolean,
): { theta_estimate: string | null; theta_sd: string | null } {
  if (!includeTheta) return { theta_estimate: null, theta_sd: null };
  const VERY_EARLY = Number.MIN_SAFE_INTEGER;
  let chosen = latest(pairEstimates, VERY_EARLY, d);
  if (chosen === null) chosen = latest(userEstimates, VERY_EARLY, d);
  if (chosen === null) return { theta_estimate: null, theta_sd: null };
  return { theta_estimate: formatMilli(chosen.thetaMilli), theta_sd: chosen.seMilli === null ? null : formatMilli(chosen.seMilli) };
}

/** The two halves of the improvement index for day d: counts of answered and correct attempts. */
interface Halves {
  nR: number;
  cR: number;
  nP: number;
  cP: number;
}

/**
 * Improvement index: "R = the (user, topic)'s attempts with a non-NULL `correct` on days
 * d−13…d, P = those on d−27…d−14". Days before the window are read for it.
 */
function improvementHalves(history: AttemptList, d: number): Halves {
  const halves: Halves = { nR: 0, cR: 0, nP: 0, cP: 0 };
  for (const a of history) {
    if (a.correct === null) continue;
    if (a.day >= d - 13 && a.day <= d) {
      halves.nR += 1;
      if (a.correct) halves.cR += 1;
    } else if (a.day >= d - 27 && a.day <= d - 14) {
      halves.nP += 1;
      if (a.correct) halves.cP += 1;
    }
  }
  return halves;
}

/**
 * `improvement`, in thousandths. Accuracy mode: "NULL if either [half] is empty, else
 * clamp((p_R − p_P) · min(1, n_R/30) · (1 − min(0.5, 1.96·√(p_R(1−p_R)/n_R))), −1, 1)", exact.
 * Theta mode (docs/theta.md): if n_R ≥ 5 and both θ_recent (latest valid estimate of days
 * d−13…d) and θ_prev (of d−27…d−14) exist, clamp((θ_recent − θ_prev) · exposure ·
 * (1 − min(0.5, 1.96·se_recent)), −1, 1); otherwise the accuracy formula.
 */
function improvementMilli(halves: Halves, d: number, pairEstimates: ValidEstimate[], options: OracleOptions): bigint | null {
  const { nR, cR, nP, cP } = halves;
  if (options.includeTheta && options.improvementMode === 'theta' && nR >= 5) {
    const recent = latest(pairEstimates, d - 13, d);
    const prev = latest(pairEstimates, d - 27, d - 14);
    if (recent !== null && prev !== null) return thetaImprovementMilli(nR, recent, prev);
  }
  return accuracyImprovementMilli(nR, cR, nP, cP);
}

/** The row of one (user, topic, day): each column by its definition above. */
function featureRow(day: AttemptList, history: Map<string, AttemptList>, thetas: ValidThetas, options: OracleOptions): OracleRow {
  const first = day[0]!;
  const d = first.day;
  const pair = pairKey(first.user_id, first.topic_id);
  const pairEstimates = thetas.byPair.get(pair) ?? [];
  const theta = thetaAsOf(d, pairEstimates, thetas.mirtByUser.get(first.user_id) ?? [], options.includeTheta);
  const improvement = improvementMilli(improvementHalves(history.get(pair) ?? [], d), d, pairEstimates, options);
  return {
    user_id: first.user_id,
    topic_id: first.topic_id,
    date: formatDate(d),
    attempts: attemptCount(day),
    correct: correctCount(day),
    avg_time_ms: meanResponseTime(day),
    rt_median: medianResponseTime(day),
    hints: hintCount(day),
    last_seen_at: formatInstant(lastSeen(day)),
    theta_estimate: theta.theta_estimate,
    theta_sd: theta.theta_sd,
    improvement: improvement === null ? null : formatMilli(improvement),
  };
}

/** Orders rows by (user_id, topic_id, date), comparing code units. */
function byKey(x: OracleRow, y: OracleRow): number {
  if (x.user_id !== y.user_id) return x.user_id < y.user_id ? -1 : 1;
  if (x.topic_id !== y.topic_id) return x.topic_id < y.topic_id ? -1 : 1;
  if (x.date !== y.date) return x.date < y.date ? -1 : 1;
  return 0;
}

/**
 * The rows of features_topic_daily for the window `options.since`…`options.anchor`, computed
 * from `attempts` (and the theta tables of `options`) by the README's definitions, sorted by
 * (user_id, topic_id, date).
 */
export function oracle(attempts: OracleAttempt[], options: OracleOptions): OracleRow[] {
  const tz = options.timezone;
  new Intl.DateTimeFormat('en-US', { timeZone: tz }); // throws RangeError for an unknown time zone
  const sinceDay = parseDate(options.since);
  const anchorDay = parseDate(options.anchor);
  const used = usableAttempts(attempts, anchorDay, tz);
  const history = historyPerPair(used);
  const thetas = validThetas(options);
  return attemptsPerRow(used, sinceDay, anchorDay)
    .map((day) => featureRow(day, history, thetas, options))
    .sort(byKey);
}

// ---------------------------------------------------------------------------------------------
// The count of skipped estimates (docs/theta.md): invalid rows in the history of the result's
// (user, topic) pairs up to the end of the anchor day; for mirt_ability, of the result's users.

export interface OracleSkipped {
  studentTopicTheta: number;
  mirtAbility: number;
}

/** How many invalid estimates a run over `rows` (the oracle's result for `options`) reports as skipped. */
export function oracleSkipped(rows: OracleRow[], options: OracleOptions): OracleSkipped {
  const tz = options.timezone;
  const anchorDay = parseDate(options.anchor);
  const pairs = new Set(rows.map((r) => pairKey(r.user_id, r.topic_id)));
  const users = new Set(rows.map((r) => r.user_id));
  let studentTopicTheta = 0;
  for (const e of options.estimates ?? []) {
    if (!pairs.has(pairKey(e.user_id, e.topic_id))) continue;
    if (localDay(parseInstant(e.updated_at), tz) > anchorDay) continue;
    if (validateEstimate(e.user_id, e.topic_id, e.theta, e.se, e.updated_at, tz) === null) studentTopicTheta += 1;
  }
  let mirtAbility = 0;
  for (const m of options.mirt ?? []) {
    if (!users.has(m.user_id)) continue;
    if (localDay(parseInstant(m.fitted_at), tz) > anchorDay) continue;
    if (validateEstimate(m.user_id, '', m.theta, m.se, m.fitted_at, tz) === null) mirtAbility += 1;
  }
  return { studentTopicTheta, mirtAbility };
}
