/**
 * `explain` term by term against the oracle's own terms (test/oracle/terms.ts): on generated
 * attempts with a theta history (invalid and later estimates among them, both improvement
 * formulas), on the two real datasets, on PGlite and the server; and as a subprocess (text,
 * JSON, exit 1 when the stored row differs, exit 2 for a row that does not exist).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { loadConfig, type Config } from '../src/config.js';
import type { Session } from '../src/db.js';
import { explainRow, type Explanation } from '../src/explain/explain.js';
import { parseQualifiedName } from '../src/identifiers.js';
import { importAttempts } from '../src/import-attempts.js';
import { runDaily } from '../src/pipeline/daily.js';
import { oracle, parseInstant, type OracleAttempt, type OracleEstimate, type OracleOptions } from './oracle/oracle.js';
import { oracleTerms } from './oracle/terms.js';
import { allBackends, useSession, withSession } from './support/backends.js';
import { runCli } from './support/cli.js';
import { loadAttempts, prepareSchema } from './support/data.js';
import { addDays, history, prng } from './support/history.js';
import { insertEstimates } from './support/theta.js';
import { readAttempts } from './support/datasets.js';

const backends = await allBackends('explain');
const attempts = history({ first: '2025-02-01', days: 40, seed: 11, activity: 0.5 });

/** A theta history of every pair: valid estimates, and NULL, NaN, out-of-range ones and bad se among them. */
function estimates(seed: number): OracleEstimate[] {
  const random = prng(seed);
  const out: OracleEstimate[] = [];
  for (let s = 1; s <= 6; s++) {
    for (const topic of ['algebra', 'geometry', 'fractions']) {
      for (let i = 0; i < 12; i++) {
        const at = new Date(Date.parse('2025-02-01T00:00:00Z') + Math.floor(random() * 45 * 86_400_000)).toISOString();
        const r = random();
        const theta = r < 0.05 ? null : r < 0.1 ? 'NaN' : r < 0.14 ? '5000.1' : (random() * 6 - 3).toFixed(4);
        const q = random();
        const se = q < 0.2 ? null : q < 0.25 ? '-0.1' : (random() * 0.4).toFixed(4);
        out.push({ user_id: `s${s}`, topic_id: topic, theta, se, updated_at: at });
      }
    }
  }
  return out;
}
const thetaHistory = estimates(3);

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

async function explainAll(session: Session, config: Config, options: OracleOptions, all: OracleAttempt[], limit = Infinity) {
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

describe.each(backends)('explain = the oracle’s terms ($name)', (backend) => {
  const t = useSession(backend, async (session) => {
    await prepareSchema(session);
    await loadAttempts(session, attempts);
    await session.query(
      'create table student_topic_theta (user_id text, topic_id text, theta numeric, se numeric, updated_at timestamptz)',
    );
    await session.query('create index on student_topic_theta (user_id, topic_id, updated_at)');
    await insertEstimates(session, thetaHistory);
  });

  test.each([
    { mode: 'accuracy', theta: 'false' },
    { mode: 'accuracy', theta: 'true' },
    { mode: 'theta', theta: 'true' },
  ])('generated history, AGG_IMPROVEMENT_MODE=$mode, AGG_INCLUDE_THETA=$theta: every term equal', async ({ mode, theta }) => {
    const config = loadConfig({ AGG_LOOKBACK_DAYS: '9', AGG_INCLUDE_THETA: theta, AGG_IMPROVEMENT_MODE: mode });
    await t.session.query('truncate features_topic_daily');
    await runDaily(t.session, config, { date: '2025-03-12' }, () => undefined);
    const options: OracleOptions = {
      since: '2025-03-03',
      anchor: '2025-03-12',
      timezone: 'UTC',
      includeTheta: theta === 'true',
      improvementMode: mode as 'accuracy' | 'theta',
      estimates: thetaHistory,
    };
    const { rows } = await explainAll(t.session, config, options, attempts);
    if (mode === 'theta') {
      // Both formulas occur, so both branches were compared.
      const formulas = new Set(rows.map((r) => oracleTerms(attempts, options, r.user_id, r.topic_id, r.date).formula));
      expect([...formulas].sort()).toEqual(expect.arrayContaining(['accuracy', 'theta']));
    }
  });

  test('a stored row that differs is flagged; the CLI exits 1, and 2 for a row that does not exist', async () => {
    const config = loadConfig({ AGG_LOOKBACK_DAYS: '9' });
    await t.session.query('truncate features_topic_daily');
    await runDaily(t.session, config, { date: '2025-03-12' }, () => undefined);
    const row = oracle(attempts, {
      since: '2025-03-12',
      anchor: '2025-03-12',
      timezone: 'UTC',
      includeTheta: false,
      improvementMode: 'accuracy',
    })[0]!;
    await t.session.query('update features_topic_daily set attempts = attempts + 5 where user_id = $1 and topic_id = $2 and date = $3', [
      row.user_id,
      row.topic_id,
      row.date,
    ]);
    const e = await explainRow(t.session, config, { user: row.user_id, topic: row.topic_id, date: row.date }, () => undefined);
    expect(e.differences).toEqual(['attempts']);
    expect(e.stored?.attempts).toBe(row.attempts + 5);
    expect(e.recomputed?.attempts).toBe(row.attempts);
  });
});

describe.each(backends)('explain as a subprocess ($name)', (backend) => {
  test('text and --json; exit 1 on a difference, exit 2 for a row that does not exist', async () => {
    await withSession(backend, async (session) => {
      await session.query('truncate features_topic_daily');
      await session.query('update features_topic_daily set attempts = 0 where false');
    });
    const env = { DATABASE_URL: backend.url, AGG_LOOKBACK_DAYS: '9' };
    expect((await runCli(['--date', '2025-03-12'], env)).code).toBe(0);
    const row = oracle(attempts, {
      since: '2025-03-12',
      anchor: '2025-03-12',
      timezone: 'UTC',
      includeTheta: false,
      improvementMode: 'accuracy',
    })[0]!;
    const args = ['explain', '--user', row.user_id, '--topic', row.topic_id, '--date', row.date];
    const text = await runCli(args, env);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`explain user=${row.user_id} topic=${row.topic_id} date=${row.date} (AGG_TIMEZONE=UTC)`);
    expect(text.stdout).toMatch(new RegExp(`attempts\\s+= ${row.attempts} \\(every attempt of the day\\)`));
    expect(text.stdout).toContain('The stored row equals a fresh computation.');
    const json = JSON.parse((await runCli([...args, '--json'], env)).stdout) as Explanation;
    expect(json.recomputed?.improvement).toBe(row.improvement);

    await withSession(backend, (s) =>
      s.query('update features_topic_daily set hints = hints + 1 where user_id = $1 and topic_id = $2 and date = $3', [
        row.user_id,
        row.topic_id,
        row.date,
      ]),
    );
    const differs = await runCli(args, env);
    expect(differs.code).toBe(1);
    expect(differs.stdout).toMatch(/^hints\s+\d+\s+\d+\s+DIFFERS$/m);
    expect(differs.stdout).toContain('DIFFERS in hints');

    const missing = await runCli(['explain', '--user', 'nobody', '--topic', 'algebra', '--date', '2025-03-12'], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no attempts and no stored row for user=nobody topic=algebra date=2025-03-12');
  });
});

const datasetsDirectory = fileURLToPath(new URL('../../shared/datasets/', import.meta.url));
const realDatasets = [
  { name: 'ednet-kt1-sample', anchor: '2019-08-20', timezone: 'Asia/Seoul' },
  { name: 'kddcup2010-algebra-2006-07-sample', anchor: '2007-03-11', timezone: 'America/New_York' },
].filter((d) => existsSync(`${datasetsDirectory}${d.name}/attempts.csv`));

describe.each(realDatasets.length > 0 ? backends : [])('explain on the real datasets ($name)', (backend) => {
  const t = useSession(backend, prepareSchema);
  test.each(realDatasets)('$name, anchor $anchor, $timezone: the first 40 rows, every term equal', async (dataset) => {
    const file = `${datasetsDirectory}${dataset.name}/attempts.csv`;
    const all = readAttempts(file);
    await importAttempts(t.session, { file, table: parseQualifiedName('attempt', 'table'), replace: true });
    await t.session.query('truncate features_topic_daily');
    const config = loadConfig({ AGG_TIMEZONE: dataset.timezone, AGG_LOOKBACK_DAYS: '3' });
    await runDaily(t.session, config, { date: dataset.anchor }, () => undefined);
    const options: OracleOptions = {
      since: addDays(dataset.anchor, -3),
      anchor: dataset.anchor,
      timezone: dataset.timezone,
      includeTheta: false,
      improvementMode: 'accuracy',
    };
    const { checked } = await explainAll(t.session, config, options, all, 40);
    expect(checked).toBe(40);
  });
});
