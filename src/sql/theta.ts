/**
 * SQL fragments for theta (the estimate as of each day and the theta mode of the improvement
 * index), composed into the one computation of compute.ts only when theta is enabled:
 * `student_topic_theta` and `mirt_ability` belong to another job and may not exist otherwise.
 * Tables come from the theta plan (work.ts), quoted by `ident`; values, the time zone too, are
 * bound parameters.
 *
 * Validity, in one place for every lookup and for the count of skipped estimates:
 * - theta and se are read as `col::text::numeric`, whatever their column type. For numeric
 *   that is the stored value; for double precision it is the shortest text that PostgreSQL
 *   prints for the double (extra_float_digits ≥ 1, which the run's session sets), so 1.0005
 *   stays 1.0005 and rounds to 1.001, as its decimal reading should. A direct
 *   `double::numeric` cast would keep only 15 significant digits. NaN and ±Infinity are
 *   numeric values on PostgreSQL 14+.
 * - theta is valid when `abs(round(theta, 3)) < 1000`: false for NaN (NaN sorts above every
 *   number in numeric), for ±Infinity and for values that round out of numeric(6,3); NULL
 *   for NULL. An invalid estimate is filtered out before anything is ranked.
 * - se is valid when `se >= 0 and round(se, 3) < 1000`; an invalid se is replaced by NULL,
 *   so it neither fills theta_sd nor wins a tie (NaN would otherwise rank first in
 *   `order by se desc`).
 */
import type { QualifiedName } from './identifiers.js';
import type { ThetaPlan } from '../work.js';
import { ident, join, raw, sql, type Sql } from './tag.js';

const theta = (alias: Sql) => sql`${alias}.theta::text::numeric`;
const se = (alias: Sql) => sql`${alias}.se::text::numeric`;

/**
 * True for a valid theta (finite and fits numeric(6,3) after rounding to 3 decimals); NULL
 * (not true) when theta is NULL. `alias` names the estimates' row.
 */
export function validTheta(alias: Sql): Sql {
  return sql`abs(round(${theta(alias)}, 3)) < 1000`;
}

/** The se as exact numeric when valid, else NULL. */
function validSe(alias: Sql): Sql {
  return sql`case when ${se(alias)} >= 0 and round(${se(alias)}, 3) < 1000 then ${se(alias)} end`;
}

/** The start of the day `dayExpression` in the time zone `zone`, as timestamptz. */
export function startOfDay(dayExpression: Sql, zone: string): Sql {
  return sql`((${dayExpression})::timestamp at time zone ${zone}::text)`;
}

/** The time column of an estimates table. */
type TimeColumn = 'updated_at' | 'fitted_at';

interface LatestEstimate {
  /** student_topic_theta or mirt_ability. */
  readonly table: QualifiedName;
  /** Condition tying a row `s` to the outer combination `h`. */
  readonly match: Sql;
  /** The time column: updated_at or fitted_at. */
  readonly at: TimeColumn;
  /** Only rows with at < this instant. */
  readonly before: Sql;
  /** Only rows with at >= this instant. */
  readonly notBefore?: Sql;
  /** A condition on outer columns only: when false the lookup is not run (a one-time filter). */
  readonly when?: Sql;
}

const s = sql`s`;

/**
 * A LATERAL subquery: the latest valid estimate in a time range, for one outer row. Ties at
 * the same instant go to the highest theta, then to the highest valid se (NULL last), so the
 * choice is deterministic.
 *
 * Shaped for the recommended index on (user_id, topic_id, updated_at): the inner query reads
 * it backwards and `fetch first 1 rows with ties` stops after the latest valid instant (with
 * its same-instant peers, usually none), so a lookup costs the same with a week or years of
 * history. Only those few rows are sorted for the tie-break. A plain `order by at desc,
 * theta desc, se desc limit 1` would read and sort the whole history before day d for every
 * combination (measured in docs/theta.md: it reads all 21 earlier rows per lookup and takes
 * ~11× as long with 22 estimates per pair).
 *
 * Columns: at, theta_exact (as stored), theta (rounded to 3 decimals), se_exact (valid se as
 * stored, or NULL), sd (valid se rounded, or NULL).
 */
function latestEstimate(spec: LatestEstimate): Sql {
  const at = raw(spec.at);
  const conditions = [spec.match, sql`s.${at} < ${spec.before}`];
  if (spec.notBefore !== undefined) conditions.push(sql`s.${at} >= ${spec.notBefore}`);
  if (spec.when !== undefined) conditions.push(spec.when);
  conditions.push(validTheta(s));
  return sql`(
    select e.at, e.theta_exact, round(e.theta_exact, 3) as theta, e.se_exact, round(e.se_exact, 3) as sd
    from (select s.${at} as at, ${theta(s)} as theta_exact, ${validSe(s)} as se_exact
          from ${ident(spec.table)} s
          where ${join(conditions, raw('\n            and '))}
          order by s.${at} desc
          fetch first 1 rows with ties) e
    order by e.theta_exact desc, e.se_exact desc nulls last
    limit 1
  )`;
}

const sameUserAndTopic = sql`s.user_id::text = h.user_id and s.topic_id::text = h.topic_id`;

/**
 * The joins that bring theta to each combination `h` (a row of `halves` with user_id,
 * topic_id, day and n_r):
 * - `cur`: the latest valid student_topic_theta of (u, t) strictly before the start of d+1;
 * - `fb`: only when there is none and mirt_ability exists, the latest valid mirt_ability of u
 *   fitted before the start of d+1;
 * - `prev` (theta improvement mode): θ_prev, the latest valid estimate of (u, t) updated on
 *   days d−27 … d−14. It is looked up only where the theta formula can apply: n_r ≥ 5 and a
 *   θ_recent exists. θ_recent, the latest valid estimate updated on d−13 … d, is `cur` when
 *   cur was updated on or after the start of d−13 (the latest before the end of d that lies
 *   in the half is the latest of the half), so it needs no lookup of its own.
 */
export function thetaJoins(plan: ThetaPlan, zone: string): Sql {
  const joins = [
    sql`left join lateral ${latestEstimate({
      table: plan.estimates,
      match: sameUserAndTopic,
      at: 'updated_at',
      before: startOfDay(sql`h.day + 1`, zone),
    })} cur on true`,
  ];
  if (plan.mirt) {
    joins.push(
      sql`left join lateral ${latestEstimate({
        table: plan.mirt,
        match: sql`s.user_id::text = h.user_id`,
        at: 'fitted_at',
        before: startOfDay(sql`h.day + 1`, zone),
        when: sql`cur.at is null`,
      })} fb on true`,
    );
  }
  if (plan.thetaMode) {
    joins.push(
      sql`left join lateral ${latestEstimate({
        table: plan.estimates,
        match: sameUserAndTopic,
        at: 'updated_at',
        before: startOfDay(sql`h.day - 13`, zone),
        notBefore: startOfDay(sql`h.day - 27`, zone),
        when: sql`h.n_r >= 5 and cur.at >= ${startOfDay(sql`h.day - 13`, zone)}`,
      })} prev on true`,
    );
  }
  return join(joins, raw('\n'));
}

/** theta_estimate and theta_sd of a combination, from the joins above. */
export function thetaColumns(plan: Pick<ThetaPlan, 'mirt'>): { estimate: Sql; sd: Sql } {
  if (!plan.mirt) return { estimate: sql`cur.theta`, sd: sql`cur.sd` };
  return {
    estimate: sql`coalesce(cur.theta, fb.theta)`,
    sd: sql`case when cur.at is not null then cur.sd else fb.sd end`,
  };
}

/**
 * The theta improvement where it applies (prev found), else `accuracy`:
 *   clamp((θ_recent − θ_prev) · min(1, n_r/30) · (1 − min(½, 1.96·se_recent)), −1, 1)
 *   = clamp(x / 3000, −1, 1) with x = (θ_recent − θ_prev) · min(n_r, 30) · (100 − min(50, 196·se_recent))
 * (196·se_recent taken as 0 when se_recent is NULL). x is an exact product of decimals; the
 * division and the rounding half away from zero are done together, exactly, as an integer
 * division: round(|x|/3000, 3)·1000 = floor((2·|x| + 3) / 6), and clamping to ±1 is clamping
 * that to ±1000 thousandths. `round(x / 3000, 3)` would round the quotient at numeric's
 * division scale first, which for thetas with 20 or more decimals can land exactly on a …5
 * boundary the true value does not reach (a test in theta.test.ts pins one such case).
 */
export function thetaImprovement(accuracy: Sql): Sql {
  const x = sql`((cur.theta_exact - prev.theta_exact) * least(h.n_r, 30) * (100 - least(50, coalesce(196 * cur.se_exact, 0))))`;
  return sql`case when prev.at is not null then
           sign(${x}) * least(1000, div(2 * abs(${x}) + 3, 6)) / 1000
         else ${accuracy} end`;
}

/**
 * The invalid estimates a run skipped, which the run's log counts: the invalid rows in the
 * history of the window's (user, topic) pairs, up to the end of the anchor day, i.e. the part
 * of the history that the run's lookups may read; and, when mirt_ability exists, its invalid
 * rows of the window's users, likewise. `pairs` is a relation with user_id and topic_id (the
 * computed combinations).
 */
export function skippedEstimatesSelect(pairs: Sql, plan: ThetaPlan, window: { anchor: string; timezone: string }): Sql {
  const end = sql`((${window.anchor}::date + 1)::timestamp at time zone ${window.timezone}::text)`;
  const invalidTheta = (alias: Sql) => sql`not coalesce(${validTheta(alias)}, false)`;
  const mirt = plan.mirt
    ? sql`(select count(*)::int from ${ident(plan.mirt)} s
        where s.fitted_at < ${end} and ${invalidTheta(s)}
          and s.user_id::text in (select p.user_id from ${pairs} p))`
    : sql`0`;
  return sql`
select (select count(*)::int from ${ident(plan.estimates)} s
        where s.updated_at < ${end} and ${invalidTheta(s)}
          and exists (select 1 from ${pairs} p where p.user_id = s.user_id::text and p.topic_id = s.topic_id::text)
       ) as student_topic_theta,
       ${mirt} as mirt_ability`;
}
