/**
 * `explain` term by term against the oracle's own terms (test/oracle/terms.ts): on generated
 * attempts with a theta history (invalid and later estimates among them, both improvement
 * formulas), on PGlite and the server; and from the command line (text, JSON, exit 1 when the
 * stored row differs, exit 2 for a row that does not exist). On the two real datasets it is
 * checked in test/datasets.test.ts, which has them imported already.
 */
import { describe, expect, test } from 'vitest';
import { createEventStream } from '../src/observe/events.js';
import { loadConfig } from '../src/config/index.js';
import { explainRow, type Explanation } from '../src/explain/explain.js';
import { runDaily } from '../src/pipeline/daily.js';
import { oracle, type OracleEstimate, type OracleOptions, type OracleRow } from './oracle/oracle.js';
import { explainAll } from './support/explain.js';
import { oracleTerms } from './oracle/terms.js';
import { allBackends, useSession, withSession } from './support/backends.js';
import { runMain } from './support/cli.js';
import { loadAttempts, prepareSchema } from './support/data.js';
import { history, prng } from './support/history.js';
import { insertEstimates } from './support/theta.js';
import { sql } from '../src/sql/tag.js';

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

/** The oracle's first row of 2025-03-12 (accuracy mode, no theta). */
function firstRowOfAnchorDay(): OracleRow {
  return oracle(attempts, {
    since: '2025-03-12',
    anchor: '2025-03-12',
    timezone: 'UTC',
    includeTheta: false,
    improvementMode: 'accuracy',
  })[0]!;
}

describe.each(backends)('explain = the oracle’s terms ($name)', (backend) => {
  const t = useSession(backend, async (session) => {
    await prepareSchema(session);
    await loadAttempts(session, attempts);
    await session.query(
      sql`create table student_topic_theta (user_id text, topic_id text, theta numeric, se numeric, updated_at timestamptz)`,
    );
    await session.query(sql`create index on student_topic_theta (user_id, topic_id, updated_at)`);
    await insertEstimates(session, thetaHistory);
  });

  test.each([
    { mode: 'accuracy', theta: 'false' },
    { mode: 'accuracy', theta: 'true' },
    { mode: 'theta', theta: 'true' },
  ])('generated history, AGG_IMPROVEMENT_MODE=$mode, AGG_INCLUDE_THETA=$theta: every term equal', async ({ mode, theta }) => {
    const config = loadConfig({ AGG_LOOKBACK_DAYS: '9', AGG_INCLUDE_THETA: theta, AGG_IMPROVEMENT_MODE: mode });
    await t.session.query(sql`truncate features_topic_daily`);
    await runDaily(t.session, config, { date: '2025-03-12' }, createEventStream());
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

  test('a source whose completed_at is a timestamp, with AGG_SOURCE_TIMEZONE: explain reads it as the run does', async () => {
    await t.session.query(sql`create or replace view attempt_local as
      select student_id, topic_id, completed_at at time zone 'Asia/Tokyo' as completed_at, correct, response_time_ms, hint_used from attempt`);
    const config = loadConfig({ AGG_LOOKBACK_DAYS: '9', AGG_SOURCE: 'attempt_local', AGG_SOURCE_TIMEZONE: 'Asia/Tokyo' });
    await t.session.query(sql`truncate features_topic_daily`);
    await runDaily(t.session, config, { date: '2025-03-12' }, createEventStream());
    const row = firstRowOfAnchorDay();
    const e = await explainRow(t.session, config, { user: row.user_id, topic: row.topic_id, date: row.date }, () => undefined);
    expect(e.differences).toEqual([]);
    expect(e.recomputed?.attempts).toBe(row.attempts);
  });

  test('a stored row that differs is flagged; the CLI exits 1, and 2 for a row that does not exist', async () => {
    const config = loadConfig({ AGG_LOOKBACK_DAYS: '9' });
    await t.session.query(sql`truncate features_topic_daily`);
    await runDaily(t.session, config, { date: '2025-03-12' }, createEventStream());
    const row = firstRowOfAnchorDay();
    await t.session.query(
      sql`update features_topic_daily set attempts = attempts + 5 where user_id = ${row.user_id} and topic_id = ${row.topic_id} and date = ${row.date}`,
    );
    const e = await explainRow(t.session, config, { user: row.user_id, topic: row.topic_id, date: row.date }, () => undefined);
    expect(e.differences).toEqual(['attempts']);
    expect(e.stored?.attempts).toBe(row.attempts + 5);
    expect(e.recomputed?.attempts).toBe(row.attempts);
  });
});

describe.each(backends)('explain from the command line ($name)', (backend) => {
  test('text and --json; exit 1 on a difference, exit 2 for a row that does not exist', async () => {
    await withSession(backend, async (session) => {
      await session.query(sql`truncate features_topic_daily`);
      await session.query(sql`update features_topic_daily set attempts = 0 where false`);
    });
    const env = { DATABASE_URL: backend.url, AGG_LOOKBACK_DAYS: '9' };
    expect((await runMain(['--date', '2025-03-12'], env)).code).toBe(0);
    const row = firstRowOfAnchorDay();
    const args = ['explain', '--user', row.user_id, '--topic', row.topic_id, '--date', row.date];
    const text = await runMain(args, env);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`explain user=${row.user_id} topic=${row.topic_id} date=${row.date} (AGG_TIMEZONE=UTC)`);
    expect(text.stdout).toMatch(new RegExp(`attempts\\s+= ${row.attempts} \\(every attempt of the day\\)`));
    expect(text.stdout).toContain('The stored row equals a fresh computation.');
    const json = JSON.parse((await runMain([...args, '--json'], env)).stdout) as Explanation;
    expect(json.recomputed?.improvement).toBe(row.improvement);

    await withSession(backend, (s) =>
      s.query(
        sql`update features_topic_daily set hints = hints + 1 where user_id = ${row.user_id} and topic_id = ${row.topic_id} and date = ${row.date}`,
      ),
    );
    const differs = await runMain(args, env);
    expect(differs.code).toBe(1);
    expect(differs.stdout).toMatch(/^hints\s+\d+\s+\d+\s+DIFFERS$/m);
    expect(differs.stdout).toContain('DIFFERS in hints');

    const missing = await runMain(['explain', '--user', 'nobody', '--topic', 'algebra', '--date', '2025-03-12'], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no attempts and no stored row for user=nobody topic=algebra date=2025-03-12');
  });
});
