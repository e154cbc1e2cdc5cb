/**
 * Theta from the command line, as a CronJob runs it, on PGlite and the server: a missing
 * student_topic_theta stops the run with exit 2 and a line naming the table; the log line of
 * skipped estimates; and a backfill of an old day (--date) that estimates made later cannot
 * change.
 */
import { describe, expect, test } from 'vitest';
import type { OracleAttempt, OracleEstimate } from './oracle/oracle.js';
import { allBackends, withSession } from './support/backends.js';
import { runMain } from './support/cli.js';
import { loadAttempts, prepareSchema, readFeatures } from './support/data.js';
import { createThetaTables, insertEstimates } from './support/theta.js';
import { sql } from '../src/sql/tag.js';

const backends = await allBackends('theta_cli');

/** Every day from 2025-09-15 to 2025-11-01: 3 attempts of u1 on t1 and 2 of u2 on t1, at 10:00 UTC. */
function history(): OracleAttempt[] {
  const out: OracleAttempt[] = [];
  for (let day = Date.parse('2025-09-15T10:00:00Z'); day <= Date.parse('2025-11-01T10:00:00Z'); day += 86_400_000) {
    const at = new Date(day).toISOString();
    for (let i = 0; i < 3; i++)
      out.push({
        student_id: 'u1',
        topic_id: 't1',
        completed_at: at,
        correct: (day / 86_400_000 + i) % 3 !== 0,
        response_time_ms: 900 + i,
        hint_used: false,
      });
    for (let i = 0; i < 2; i++)
      out.push({ student_id: 'u2', topic_id: 't1', completed_at: at, correct: i === 0, response_time_ms: 1500, hint_used: null });
  }
  return out;
}

/** An estimate of (user, t1) every 4 days from 2025-09-13 at 22:00 UTC; theta grows slowly. */
function estimates(until: string): OracleEstimate[] {
  const out: OracleEstimate[] = [];
  let k = 0;
  for (let at = Date.parse('2025-09-13T22:00:00Z'); at <= Date.parse(until); at += 4 * 86_400_000, k++) {
    for (const user of ['u1', 'u2']) {
      out.push({
        user_id: user,
        topic_id: 't1',
        theta: (0.1 * k + (user === 'u2' ? 0.05 : 0)).toFixed(4),
        se: (0.5 - 0.01 * k).toFixed(3),
        updated_at: new Date(at).toISOString(),
      });
    }
  }
  return out;
}

describe.each(backends)('theta from the command line ($name)', (backend) => {
  const env = (over: Record<string, string> = {}) => ({ DATABASE_URL: backend.url, ...over });

  test('AGG_INCLUDE_THETA=true without student_topic_theta exits 2 with one line naming the table', async () => {
    await withSession(backend, async (session) => {
      await prepareSchema(session);
      await loadAttempts(session, history());
      await session.query(sql`drop table if exists student_topic_theta; drop table if exists mirt_ability`);
    });
    const variants: Record<string, string>[] = [
      {},
      { AGG_IMPROVEMENT_MODE: 'theta' },
      { AGG_IMPROVEMENT_MODE: 'theta', LOG_FORMAT: 'json' },
    ];
    for (const extra of variants) {
      const result = await runMain(['--date', '2025-11-01'], env({ AGG_INCLUDE_THETA: 'true', ...extra }));
      expect(result.code).toBe(2);
      expect(result.lines).toHaveLength(1);
      expect(result.stderr).toMatch(/AGG_INCLUDE_THETA=true, but the table student_topic_theta does not exist/);
    }
    const dry = await runMain(['--date', '2025-11-01', '--dry-run'], env({ AGG_INCLUDE_THETA: 'yes' }));
    expect(dry.code).toBe(2);
    expect(dry.lines).toEqual([
      '[ERROR] AGG_INCLUDE_THETA=true, but the table student_topic_theta does not exist (looked up through the search_path): create it (user_id, topic_id, theta, se, updated_at timestamptz; docs/theta.md), or set AGG_INCLUDE_THETA=false',
    ]);
    // Theta disabled does not need the table.
    expect((await runMain(['--date', '2025-11-01'], env())).code).toBe(0);
  });

  test('a backfill of an old day (--date) is not changed by estimates made later; the log counts skipped estimates', async () => {
    await withSession(backend, async (session) => {
      await prepareSchema(session);
      await session.query(sql`truncate features_topic_daily; truncate aggregate_features_runs`);
      await loadAttempts(session, history());
      await createThetaTables(session, { thetaType: 'double precision', seType: 'numeric', index: true, mirt: undefined });
      await insertEstimates(session, [
        ...estimates('2025-10-10T23:59:59Z'),
        { user_id: 'u1', topic_id: 't1', theta: 'NaN', se: '0.1', updated_at: '2025-10-09T12:00:00Z' },
      ]);
    });
    const thetaEnv = env({ AGG_INCLUDE_THETA: 'true', AGG_IMPROVEMENT_MODE: 'theta', AGG_LOOKBACK_DAYS: '3' });
    const first = await runMain(['--date', '2025-10-10'], thetaEnv);
    expect(first.code).toBe(0);
    expect(first.lines.slice(0, 3)).toEqual([
      '[INFO] Aggregating features for 8 (user, topic, date) combinations; since=2025-10-07, anchor=2025-10-10, dry_run=False',
      '[INFO] Theta: skipped 1 invalid estimates (NULL, NaN, infinite or out of numeric(6,3) range)',
      '[INFO] Rows: inserted=8, updated=0, unchanged=0, deleted=0',
    ]);
    const before = await withSession(backend, async (session) => {
      const rows = await readFeatures(session);
      const stamps = await session.query<{ computed_at: string }>(
        sql`select computed_at::text as computed_at from features_topic_daily order by 1`,
      );
      // Estimates made after 2025-10-10: from exactly midnight UTC on, with very different thetas.
      await insertEstimates(session, [
        { user_id: 'u1', topic_id: 't1', theta: '9', se: '0', updated_at: '2025-10-11T00:00:00Z' },
        { user_id: 'u2', topic_id: 't1', theta: '-9', se: null, updated_at: '2025-10-11T00:00:00.001Z' },
        ...estimates('2025-11-01T00:00:00Z').filter((e) => e.updated_at > '2025-10-11'),
      ]);
      return { rows, stamps: stamps.rows };
    });
    expect(before.rows.map((r) => r.theta_estimate)).not.toContain(null);

    const again = await runMain(['--date', '2025-10-10'], thetaEnv);
    expect(again.code).toBe(0);
    expect(again.lines[2]).toBe('[INFO] Rows: inserted=0, updated=0, unchanged=8, deleted=0');
    const after = await withSession(backend, async (session) => ({
      rows: await readFeatures(session),
      stamps: (
        await session.query<{ computed_at: string }>(sql`select computed_at::text as computed_at from features_topic_daily order by 1`)
      ).rows,
    }));
    expect(after).toEqual(before);
  });
});
