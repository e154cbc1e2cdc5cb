/** Checks `explain` term by term against the oracle's own terms (test/oracle/terms.ts). */
import { expect } from 'vitest';
import type { Config } from '../../src/config/index.js';
import type { Session } from '../../src/database/db.js';
import { explainRow, type Explanation } from '../../src/explain/explain.js';
import { oracle, parseInstant, type OracleAttempt, type OracleOptions } from '../oracle/oracle.js';
import { oracleTerms } from '../oracle/terms.js';

/** Checks every term of an explanation against the oracle's. */
function expectTerms(
  e: Explanation,
  all: OracleAttempt[],
  options: OracleOptions,
  expectedRow: { improvement: string | null } | undefined,
) {
  const o = oracleTerms(all, options, e.user_id, e.topic_id, e.date);
  expect(e.counts).toMatchObject({ attempts: o.attempts, correct: o.correct, hints: o.hints });
  expect(e.median.sorted_valid_times).toEqual(o.sortedValidTimes);
  expect(e.median.middle).toEqual(o.middle);
  expect([e.halves.recent.n, e.halves.recent.c, e.halves.previous.n, e.halves.previous.c]).toEqual([o.nR, o.cR, o.nP, o.cP]);
  expect(e.halves.days.filter((d) => d.answered > 0).map((d) => [d.day, d.answered, d.correct])).toEqual(o.days);
  expect(e.improvement.formula).toBe(o.formula);
  if (o.formula === 'accuracy') {
    expect(e.improvement.p_r).toBe(o.cR / o.nR);
    expect(e.improvement.p_p).toBe(o.cP / o.nP);
    expect(e.improvement.exposure).toBe(Math.min(1, o.nR / 30));
  }
  expect(e.recomputed?.improvement ?? null).toBe(o.improvement);
  expect(e.stored?.improvement ?? null).toBe(expectedRow?.improvement ?? null);
  expect(e.differences).toEqual([]);
  if (options.includeTheta) {
    const chosen = e.theta?.chosen ?? null;
    expect(chosen === null ? null : { at: parseInstant(chosen.at), theta: chosen.theta }).toEqual(o.chosen);
    const at = (flag: 'recent' | 'previous') => {
      const found = e.theta?.estimates.find((s) => s[flag]);
      return found === undefined ? null : parseInstant(found.at);
    };
    expect(at('recent')).toBe(o.recentAt);
    expect(at('previous')).toBe(o.previousAt);
    // Every estimate that is not used says why, and the later ones are after the day.
    for (const s of e.theta?.estimates ?? []) {
      if (s.theta === null) expect(s.skipped).toBe('theta is NULL');
      if (s.theta === 'NaN') expect(s.skipped).toBe('theta is not finite');
      if (s.theta === '5000.1') expect(s.skipped).toBe('theta does not fit numeric(6,3)');
    }
  }
}

/** Explains the oracle's rows (the first `limit`) and checks each against the oracle's terms. */
export async function explainAll(session: Session, config: Config, options: OracleOptions, all: OracleAttempt[], limit = Infinity) {
  const rows = oracle(all, options);
  expect(rows.length).toBeGreaterThan(20);
  let checked = 0;
  for (const row of rows.slice(0, limit)) {
    const e = await explainRow(session, config, { user: row.user_id, topic: row.topic_id, date: row.date }, () => undefined);
    expectTerms(e, all, options, row);
    checked++;
  }
  return { checked, rows };
}
