/** `explain` as text: one section per step of the row's computation, then stored vs recomputed. */
import type { ExplainEstimate, Explanation } from './explain.js';
import { displayValue, formatTable, visibleDeep } from '../format.js';

const yes = (flag: boolean) => (flag ? 'yes' : '');
const num = (value: number | null, digits = 6) => (value === null ? 'NULL' : Number(value.toFixed(digits)).toString());

/** The explanation as lines of text; every text from the data (the ids, theta table names) shown visibly. */
export function formatExplanation(data: Explanation): string[] {
  const e = visibleDeep(data);
  return [
    `explain user=${e.user_id} topic=${e.topic_id} date=${e.date} (AGG_TIMEZONE=${e.timezone})`,
    '',
    ...dayLines(e),
    ...halvesLines(e),
    ...improvementLines(e),
    ...thetaLines(e),
    ...comparisonLines(e),
  ];
}

/** The day's attempts and the counts, mean and median made of them. */
function dayLines(e: Explanation): string[] {
  const out: string[] = [`Attempts on ${e.date} (${e.attempts.length})`];
  out.push(
    ...formatTable(
      e.attempts.map((a, i) => ({
        '#': i + 1,
        completed_at: a.completed_at,
        correct: a.correct,
        response_time_ms: a.response_time_ms,
        hint_used: a.hint_used,
        counts_correct: yes(a.counts_correct),
        valid_time: yes(a.valid_time),
        counts_hint: yes(a.counts_hint),
        last: yes(a.is_last),
      })),
    ),
  );
  const { counts, avg_time: avg, median } = e;
  out.push(
    `  attempts     = ${counts.attempts} (every attempt of the day)`,
    `  correct      = ${counts.correct} (correct IS TRUE)`,
    `  hints        = ${counts.hints} (hint_used IS TRUE)`,
    `  last_seen_at = ${displayValue(counts.last_seen_at)}`,
    `  avg_time_ms  = ${avg.mean === null ? 'NULL (no valid response time: not NULL and ≥ 0)' : `round(${avg.sum} / ${avg.valid_times} = ${num(avg.mean, 3)}) = ${avg.rounded}`}`,
    `  rt_median    = ${
      median.value === null
        ? 'NULL (no valid response time)'
        : `${median.sorted_valid_times.length} valid times, middle ${median.middle.length === 1 ? 'value' : 'values'} ${median.middle.join(' and ')} → ${num(median.value, 1)} → ${median.rounded}`
    }`,
  );
  if (median.sorted_valid_times.length > 0 && median.sorted_valid_times.length <= 40)
    out.push(`                 sorted: ${median.sorted_valid_times.join(', ')}`);
  return out;
}

/** The two 14-day halves, day by day. */
function halvesLines(e: Explanation): string[] {
  const { recent, previous } = e.halves;
  return [
    '',
    'Improvement halves (attempts with correct not NULL, per day: answered/correct)',
    ...formatTable(e.halves.days.map((d) => ({ day: d.day, half: d.half, answered: d.answered, correct: d.correct }))),
    `  recent   ${recent.from}..${recent.to}: n_r = ${recent.n}, c_r = ${recent.c}`,
    `  previous ${previous.from}..${previous.to}: n_p = ${previous.n}, c_p = ${previous.c}`,
  ];
}

/** The improvement formula with its terms. */
function improvementLines(e: Explanation): string[] {
  const { recent, previous } = e.halves;
  const t = e.improvement;
  const out: string[] = ['', `Improvement (formula: ${t.formula})`];
  if (t.formula === 'none') {
    out.push(`  NULL: ${t.n_r === 0 ? 'n_r' : 'n_p'} = 0 (a half without answered attempts)`);
    return out;
  }
  out.push(`  exposure = min(1, n_r / 30) = min(1, ${t.n_r}/30) = ${num(t.exposure)}`);
  if (t.formula === 'accuracy') {
    out.push(
      `  p_r = c_r / n_r = ${t.c_r}/${t.n_r} = ${num(t.p_r)}`,
      `  p_p = c_p / n_p = ${t.c_p}/${t.n_p} = ${num(t.p_p)}`,
      `  penalty = 1 − min(0.5, 1.96·sqrt(p_r·(1 − p_r)/n_r)) = ${num(t.penalty)}`,
      `  improvement = clamp((p_r − p_p) · exposure · penalty, −1, 1) = ${num(t.unrounded, 9)}`,
    );
  } else {
    out.push(
      `  θ_recent = ${t.theta_recent} (latest valid estimate updated ${recent.from}..${recent.to}), θ_prev = ${t.theta_prev} (${previous.from}..${previous.to})`,
      `  factor = 1 − min(0.5, 1.96·se_recent) = ${num(t.penalty)} (se_recent = ${displayValue(t.se_recent)}; 1 when NULL)`,
      `  improvement = clamp((θ_recent − θ_prev) · exposure · factor, −1, 1) = ${num(t.unrounded, 9)}`,
    );
  }
  out.push('  rounded half away from zero to 3 decimals (the job computes it exactly in numeric)');
  return out;
}

/** The estimate chosen for the day, and every estimate looked at. */
function thetaLines(e: Explanation): string[] {
  if (e.theta === undefined) return ['', 'Theta: AGG_INCLUDE_THETA=false (theta_estimate and theta_sd are not written by this job)'];
  const chosen = e.theta.chosen;
  return [
    '',
    `Theta as of ${e.date}: ${chosen ? `theta_estimate = ${chosen.theta}, theta_sd = ${displayValue(chosen.sd)} from ${chosen.table} at ${chosen.at}` : 'none (NULL)'}`,
    ...estimateTable('student_topic_theta', e.theta.estimates),
    ...(e.theta.mirt !== undefined ? estimateTable('mirt_ability (fallback)', e.theta.mirt) : []),
  ];
}

/** The stored row beside the job's own recomputation, and the verdict. */
function comparisonLines(e: Explanation): string[] {
  return [
    '',
    'Stored vs recomputed (the job’s own computation, now)',
    ...formatTable(
      (Object.keys(e.recomputed ?? e.stored ?? {}) as (keyof NonNullable<Explanation['stored']>)[]).map((c) => ({
        column: c,
        stored: e.stored === null ? '(no row)' : e.stored[c],
        recomputed: e.recomputed === null ? '(no attempts)' : e.recomputed[c],
        '': e.differences.includes(c) ? 'DIFFERS' : '',
      })),
    ),
    e.differences.length === 0
      ? 'The stored row equals a fresh computation.'
      : `DIFFERS in ${e.differences.join(', ')}: the row is out of date (late or corrected data) or was written by something else; re-run its window (run --date ${e.date}, or backfill).`,
  ];
}

function estimateTable(title: string, estimates: ExplainEstimate[]): string[] {
  const rows = estimates.map((s) => ({
    at: s.at,
    theta: s.theta,
    se: s.se,
    use: s.chosen ? 'CHOSEN' : (s.skipped ?? 'older'),
    recent: yes(s.recent),
    previous: yes(s.previous),
  }));
  return [
    `  ${title}: ${estimates.length} estimates, newest first (skipped: invalid or after the day)`,
    ...formatTable(rows).map((l) => `  ${l}`),
  ];
}
