/**
 * Theta through the job, case by case, on PGlite and the server: the start-up checks of the
 * estimate tables (missing table or column, wrong types, missing index), the log line of
 * skipped estimates, and the hand-computed cases of the oracle's tests (rounding boundaries,
 * unrounded thetas, the edges of the 14-day halves at local midnight, ties, the mirt
 * fallback) with theta and se stored as numeric and as double precision. Values the random
 * histories of theta.property.test.ts reach only by luck are pinned here.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { ConfigError } from '../src/errors.js';
import { runDaily } from '../src/pipeline/daily.js';
import { createEventStream, type RunEvent } from '../src/observe/events.js';
import { createLogger } from '../src/observe/log.js';
import { oracle, type OracleAttempt, type OracleEstimate, type OracleMirt } from './oracle/oracle.js';
import { byKey } from './support/arbitraries.js';
import { allBackends, useSession } from './support/backends.js';
import { loadAttempts, prepareSchema, readFeatures } from './support/data.js';
import type { NumberType } from './support/theta-arbitraries.js';
import { createThetaTables, insertEstimates, insertMirt, readEstimates, readMirt } from './support/theta.js';
import { raw, sql } from '../src/sql/tag.js';

const backends = await allBackends('theta');

function att(student_id: string, topic_id: string, completed_at: string, correct: boolean | null = true): OracleAttempt {
  return { student_id, topic_id, completed_at, correct, response_time_ms: 1000, hint_used: false };
}

/** n attempts of (u, t) at one instant, the first c of them correct. */
function many(u: string, t: string, at: string, n: number, c: number): OracleAttempt[] {
  return Array.from({ length: n }, (_, i) => att(u, t, at, i < c));
}

function est(theta: string | null, se: string | null, updated_at: string, user_id = 'u1', topic_id = 't1'): OracleEstimate {
  return { user_id, topic_id, theta, se, updated_at };
}

function mirt(theta: string | null, se: string | null, fitted_at: string, user_id = 'u1'): OracleMirt {
  return { user_id, theta, se, fitted_at };
}

describe.each(backends)('theta case by case ($name)', (backend) => {
  const t = useSession(backend, prepareSchema);

  const env = (over: Record<string, string> = {}) =>
    loadConfig({ AGG_INCLUDE_THETA: 'true', AGG_LOOKBACK_DAYS: '0', AGG_TIMEZONE: 'UTC', ...over });

  async function run(over: Record<string, string> = {}, date = '2025-11-01') {
    const events: RunEvent[] = [];
    const result = await runDaily(
      t.session,
      env(over),
      { date, allowEmptySource: true },
      createEventStream((e) => events.push(e)),
    );
    return { result, events };
  }

  describe('start-up checks', () => {
    beforeAll(async () => {
      await t.session.query(sql`truncate features_topic_daily; truncate aggregate_features_runs`);
      await loadAttempts(t.session, [att('u1', 't1', '2025-11-01T12:00:00Z')]);
    });

    test('no student_topic_theta: ConfigError (exit 2) naming the table; theta disabled does not need it', async () => {
      await t.session.query(sql`drop table if exists student_topic_theta; drop table if exists mirt_ability`);
      const error = await run().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).exitCode).toBe(2);
      expect((error as Error).message).toMatch(/AGG_INCLUDE_THETA=true, but the table student_topic_theta does not exist/);
      const { result } = await run({ AGG_INCLUDE_THETA: 'false' });
      expect(result.inserted).toBe(1);
      expect(result.skippedEstimates).toBeUndefined();
    });

    test.each([
      [
        'create table student_topic_theta (user_id text, topic_id text, theta numeric, updated_at timestamptz)',
        /student_topic_theta lacks the column se: it needs user_id, topic_id, theta, se, updated_at/,
      ],
      [
        'create table student_topic_theta (user_id text, theta numeric, se numeric)',
        /student_topic_theta lacks the columns topic_id, updated_at/,
      ],
      [
        'create table student_topic_theta (user_id text, topic_id text, theta text, se numeric, updated_at timestamptz)',
        /student_topic_theta\.theta is text: it must be a number type/,
      ],
      [
        'create table student_topic_theta (user_id text, topic_id text, theta float8, se numeric, updated_at timestamp)',
        /student_topic_theta\.updated_at is timestamp without time zone: it must be timestamp with time zone/,
      ],
    ])('%s → ConfigError', async (ddl, message) => {
      await t.session.query(sql`drop table if exists student_topic_theta; drop table if exists mirt_ability`);
      await t.session.query(raw(ddl));
      const error = await run().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(message);
    });

    test('a malformed mirt_ability is a ConfigError too', async () => {
      await t.session.query(sql`drop table if exists student_topic_theta; drop table if exists mirt_ability`);
      await t.session.query(
        sql`create table student_topic_theta (user_id text, topic_id text, theta numeric, se numeric, updated_at timestamptz)`,
      );
      await t.session.query(sql`create index on student_topic_theta (user_id, topic_id, updated_at)`);
      await t.session.query(sql`create table mirt_ability (user_id text, theta numeric, se numeric)`);
      await expect(run()).rejects.toThrow(/mirt_ability lacks the column fitted_at: it needs user_id, theta, se, fitted_at/);
    });

    test('a missing lookup index is a [WARN], a view is not checked, the index silences it', async () => {
      await t.session.query(sql`drop table if exists student_topic_theta; drop table if exists mirt_ability`);
      await t.session.query(
        sql`create table student_topic_theta (user_id text, topic_id text, theta numeric, se numeric, updated_at timestamptz)`,
      );
      await t.session.query(sql`create table mirt_ability (user_id text, theta numeric, se numeric, fitted_at timestamptz)`);
      const warnings = async () =>
        (await run()).events.filter((e) => e.type === 'message' && e.level === 'warn').map((e) => (e as { message: string }).message);
      expect(await warnings()).toEqual([
        "student_topic_theta has no index on (user_id, topic_id, updated_at): every combination's theta lookup scans the table, which takes hours on a large one; ask its owner to run `create index on student_topic_theta (user_id, topic_id, updated_at)` (docs/theta.md)",
        "mirt_ability has no index on (user_id, fitted_at): every combination's theta lookup scans the table, which takes hours on a large one; ask its owner to run `create index on mirt_ability (user_id, fitted_at)` (docs/theta.md)",
      ]);
      // (topic_id, user_id, updated_at) serves the lookup as well; (user_id) alone does not
      await t.session.query(sql`create index on student_topic_theta (topic_id, user_id, updated_at)`);
      await t.session.query(sql`create index on mirt_ability (user_id)`);
      expect(await warnings()).toEqual([expect.stringMatching(/^mirt_ability has no index/)]);
      await t.session.query(sql`create index on mirt_ability (user_id, fitted_at)`);
      expect(await warnings()).toEqual([]);
      await t.session.query(sql`alter table student_topic_theta rename to stt_base`);
      await t.session.query(sql`create view student_topic_theta as select * from stt_base`);
      expect(await warnings()).toEqual([]);
      await t.session.query(sql`drop view student_topic_theta; drop table stt_base`);
    });

    test('text log: the skipped line sits between the run line and the rows line; JSON has the breakdown', async () => {
      await createThetaTables(t.session, {
        thetaType: 'numeric',
        seType: 'numeric',
        index: true,
        mirt: { thetaType: 'numeric', seType: 'numeric' },
      });
      await insertEstimates(t.session, [
        est('NaN', '0.1', '2025-10-01T00:00:00Z'),
        est(null, '0.1', '2025-10-02T00:00:00Z'),
        est('1000', '0.1', '2025-10-03T00:00:00Z'),
        est('0.5', 'NaN', '2025-10-04T00:00:00Z'), // a bad se only: the estimate is valid
        est('Infinity', '0.1', '2025-11-02T00:00:00Z'), // after the anchor day: not counted
        est('NaN', '0.1', '2025-10-01T00:00:00Z', 'u1', 'other'), // a pair not in the window
      ]);
      await insertMirt(t.session, [mirt('-Infinity', null, '2025-10-01T00:00:00Z'), mirt('NaN', null, '2025-10-01T00:00:00Z', 'u9')]);
      const lines: string[] = [];
      const json: Record<string, unknown>[] = [];
      const text = createLogger({ format: 'text', runId: 'r', sink: (line) => lines.push(line) });
      const structured = createLogger({
        format: 'json',
        runId: 'r',
        sink: (line) => json.push(JSON.parse(line) as Record<string, unknown>),
      });
      await t.session.query(sql`truncate features_topic_daily`);
      const result = await runDaily(
        t.session,
        env(),
        { date: '2025-11-01' },
        createEventStream((e) => {
          text(e);
          structured(e);
        }),
      );
      expect(lines.slice(0, 3)).toEqual([
        '[INFO] Aggregating features for 1 (user, topic, date) combinations; since=2025-11-01, anchor=2025-11-01, dry_run=False',
        '[INFO] Theta: skipped 4 invalid estimates (NULL, NaN, infinite or out of numeric(6,3) range)',
        '[INFO] Rows: inserted=1, updated=0, unchanged=0, deleted=0',
      ]);
      expect(json[1]).toMatchObject({ event: 'theta_skipped', skipped: 4, student_topic_theta: 3, mirt_ability: 1, mirt_fallback: true });
      expect(result.skippedEstimates).toEqual({ studentTopicTheta: 3, mirtAbility: 1 });
      expect((await readFeatures(t.session))[0]).toMatchObject({ theta_estimate: '0.500', theta_sd: null });
    });
  });

  describe.each<[NumberType, NumberType]>([
    ['numeric', 'numeric'],
    ['double precision', 'double precision'],
    ['double precision', 'numeric'],
  ])('theta %s, se %s', (thetaType, seType) => {
    /** Sets up the tables and attempts, runs the job, checks every row against the oracle; returns the rows. */
    async function check(
      attempts: OracleAttempt[],
      estimates: OracleEstimate[],
      options: { mirt?: OracleMirt[]; mode?: 'accuracy' | 'theta'; timezone?: string; date?: string; lookback?: number } = {},
    ) {
      await t.session.query(sql`truncate features_topic_daily; truncate aggregate_features_runs`);
      await createThetaTables(t.session, {
        thetaType,
        seType,
        index: true,
        mirt: options.mirt ? { thetaType, seType } : undefined,
      });
      await insertEstimates(t.session, estimates);
      if (options.mirt) await insertMirt(t.session, options.mirt);
      await loadAttempts(t.session, attempts);
      const date = options.date ?? '2025-11-01';
      const mode = options.mode ?? 'theta';
      const { result } = await run(
        { AGG_IMPROVEMENT_MODE: mode, AGG_TIMEZONE: options.timezone ?? 'UTC', AGG_LOOKBACK_DAYS: String(options.lookback ?? 0) },
        date,
      );
      const rows = await readFeatures(t.session);
      const expected = oracle(attempts, {
        since: result.window.since,
        anchor: date,
        timezone: options.timezone ?? 'UTC',
        includeTheta: true,
        improvementMode: mode,
        estimates: await readEstimates(t.session),
        mirt: await readMirt(t.session),
      });
      expect(byKey(rows)).toEqual(byKey(expected));
      return rows;
    }

    // d = 2025-11-01: R = 10-19 … 11-01, P = 10-05 … 10-18 (as in the oracle's tests)
    const D = '2025-11-01T12:00:00Z';
    const P = '2025-10-10T12:00:00Z';
    const RECENT = '2025-10-25T12:00:00Z';
    const six = [...many('u1', 't1', D, 6, 6), att('u1', 't1', P, false)];
    const one = async (attempts: OracleAttempt[], estimates: OracleEstimate[], options = {}) => {
      const rows = await check(attempts, estimates, options);
      return rows.find((r) => r.date === '2025-11-01')!;
    };

    describe('theta as of a day', () => {
      test('latest estimate up to the end of d, decimal rounding half away from zero', async () => {
        const r = await one(
          [att('u1', 't1', D)],
          [
            est('0.1', '0.2', '2025-10-01T00:00:00Z'),
            est('1.2345', '0.1', '2025-11-01T23:59:59.999Z'),
            est('0.5', '0.3', '2025-11-02T00:00:00Z'), // exactly the start of d+1: never used for d
            est('7', '0.3', '2025-11-01T20:00:00Z', 'u1', 't2'),
          ],
        );
        expect(r).toMatchObject({ theta_estimate: '1.235', theta_sd: '0.100' });
        // 1.0005 is a tie on its text → 1.001, also stored as a double (1.000499999…)
        expect(await one([att('u1', 't1', D)], [est('1.0005', '0.0005', '2025-11-01T00:00:00Z')])).toMatchObject({
          theta_estimate: '1.001',
          theta_sd: '0.001',
        });
      });

      test('the start of d+1 in the job time zone is the boundary (New York, 1 ms either side)', async () => {
        const r = await one(
          [att('u1', 't1', D)],
          [est('0.25', null, '2025-11-02T03:59:59.999Z'), est('0.75', null, '2025-11-02T04:00:00.000Z')],
          { timezone: 'America/New_York' },
        );
        expect(r).toMatchObject({ theta_estimate: '0.250', theta_sd: null });
      });

      test('ties at one instant: highest theta, then highest valid se; invalid thetas never win', async () => {
        const at = '2025-11-01T00:00:00Z';
        const pick = (estimates: OracleEstimate[]) => one([att('u1', 't1', D)], estimates);
        expect(await pick([est('0.5', '0.3', at), est('0.7', null, at)])).toMatchObject({ theta_estimate: '0.700', theta_sd: null });
        expect(await pick([est('0.7', null, at), est('0.70', '0.2', at)])).toMatchObject({ theta_sd: '0.200' });
        expect(await pick([est('0.7', 'NaN', at), est('0.7', '0.2', at)])).toMatchObject({ theta_sd: '0.200' });
        expect(await pick([est('0.7', '1000', at), est('0.7', '0.2', at)])).toMatchObject({ theta_sd: '0.200' });
        expect(await pick([est('0.5', '0.2', at), est('1000', '0.1', at), est('NaN', '0.9', at)])).toMatchObject({
          theta_estimate: '0.500',
          theta_sd: '0.200',
        });
      });

      test('the mirt_ability fallback, only when (u, t) has no valid estimate up to d', async () => {
        const m = [
          mirt('0.25', '0.05', '2025-10-01T00:00:00Z'),
          mirt('0.35', '-1', '2025-10-15T00:00:00Z'),
          mirt('9', '0.1', '2025-11-02T00:00:00Z'),
        ];
        expect(await one([att('u1', 't1', D)], [est('NaN', '0.1', '2025-10-30T00:00:00Z')], { mirt: m })).toMatchObject({
          theta_estimate: '0.350',
          theta_sd: null,
        });
        expect(await one([att('u1', 't1', D)], [est('-0.5', '0.25', '2025-09-01T00:00:00Z')], { mirt: m })).toMatchObject({
          theta_estimate: '-0.500',
          theta_sd: '0.250',
        });
        expect(await one([att('u1', 't1', D)], [])).toMatchObject({ theta_estimate: null, theta_sd: null });
      });
    });

    describe('theta improvement', () => {
      test('theta improvement: se factor, NULL/negative se, cap, clamp', async () => {
        const mode = async (estimates: OracleEstimate[]) => (await one(six, estimates)).improvement;
        expect(await mode([est('0.2', '0.3', P), est('0.5', '0.1', RECENT)])).toBe('0.048');
        expect(await mode([est('0.2', '0.3', P), est('0.5', null, RECENT)])).toBe('0.060');
        expect(await mode([est('0.2', '0.3', P), est('0.5', '-0.1', RECENT)])).toBe('0.060');
        expect(await mode([est('0.2', '0.3', P), est('0.5', '0.4', RECENT)])).toBe('0.030');
        expect(await mode([est('-1', null, P), est('9', null, RECENT)])).toBe('1.000');
        expect(await mode([est('1', null, P), est('-9', null, RECENT)])).toBe('-1.000');
      });

      test('theta improvement is exact: a …5 boundary rounds away from zero, thetas are used unrounded', async () => {
        // n_r = 10: exposure 1/3; 0.0045 / 3 = 0.0015 exactly → 0.002 (doubles give 0.0014999… → 0.001)
        const ten = [...many('u1', 't1', D, 10, 10), att('u1', 't1', P, false)];
        expect((await one(ten, [est('0', null, P), est('0.0045', null, RECENT)])).improvement).toBe('0.002');
        expect((await one(ten, [est('0.0045', null, P), est('0', null, RECENT)])).improvement).toBe('-0.002');
        // 1.0045 − 1 = 0.0045 exactly → 0.002; in doubles it is 0.004499999999999948 → 0.00149999999999998 → 0.001
        expect((await one(ten, [est('1', null, P), est('1.0045', null, RECENT)])).improvement).toBe('0.002');
        // 22 nines: 0.00449999…/3 = 0.00149999…667 → 0.001; round(x / 3000, 3) in numeric divides at the
        // operand's scale (23 digits), lands exactly on 0.0015 and gives 0.002. (As a double it is 0.0045.)
        const nines = await one(ten, [est('0', null, P), est('0.00449999999999999999999', null, RECENT)]);
        expect(nines.improvement).toBe(thetaType === 'numeric' ? '0.001' : '0.002');
        // n_r = 30: 0.5006 − 0.5004 = 0.0002 → 0.000 (rounded first: 0.501 − 0.500 → 0.001)
        const thirty = [...many('u1', 't1', D, 30, 30), att('u1', 't1', P, false)];
        expect(await one(thirty, [est('0.5004', null, P), est('0.5006', null, RECENT)])).toMatchObject({
          improvement: '0.000',
          theta_estimate: '0.501',
        });
        // se_recent 0.125: factor 1 − 0.245 = 0.755; 0.002 · 0.755 = 0.00151 → 0.002 (with 30 attempts)
        expect((await one(thirty, [est('1', null, P), est('1.002', '0.125', RECENT)])).improvement).toBe('0.002');
      });

      test('the halves end at local midnight: θ_prev from d−27 00:00 to before d−13 00:00, θ_recent from d−13 00:00', async () => {
        const tz = 'Asia/Kolkata'; // +05:30: local midnight of day X is X−1 18:30Z
        const at = (day: string, deltaMs: number) => new Date(Date.parse(`${day}T00:00:00+05:30`) + deltaMs).toISOString();
        const recentAttempts = [...many('u1', 't1', '2025-11-01T06:00:00Z', 6, 6), att('u1', 't1', '2025-10-10T06:00:00Z', false)];
        const improvement = async (estimates: OracleEstimate[]) =>
          (await check(recentAttempts, estimates, { timezone: tz })).find((r) => r.date === '2025-11-01')!.improvement;
        // d−13 = 10-19, d−27 = 10-05 (local days in Kolkata)
        // θ_prev at exactly 10-05 00:00 local counts; θ_recent at exactly 10-19 00:00 local counts: (0.5−0.2)·0.2 = 0.060
        expect(await improvement([est('0.2', null, at('2025-10-05', 0)), est('0.5', null, at('2025-10-19', 0))])).toBe('0.060');
        // 1 ms before 10-05 00:00 is d−28: no θ_prev → accuracy (p_r = 1, p_p = 0, exposure 0.2) = 0.200
        expect(await improvement([est('0.2', null, at('2025-10-05', -1)), est('0.5', null, at('2025-10-19', 0))])).toBe('0.200');
        // 1 ms before 10-19 00:00 belongs to P; with no later estimate there is no θ_recent → 0.200
        expect(await improvement([est('0.2', null, at('2025-10-05', 0)), est('0.5', null, at('2025-10-19', -1))])).toBe('0.200');
        // θ_prev is the latest in P: 0.3 at 10-18 23:59:59.999 local beats 0.2 → (0.5 − 0.3)·0.2 = 0.040
        expect(
          await improvement([
            est('0.2', null, at('2025-10-05', 0)),
            est('0.3', null, at('2025-10-19', -1)),
            est('0.5', null, at('2025-10-19', 0)),
          ]),
        ).toBe('0.040');
        // θ_recent up to the end of d: 0.9 at 11-01 23:59:59.999 local → (0.9 − 0.2)·0.2 = 0.140; at 11-02 00:00 it is ignored
        expect(await improvement([est('0.2', null, at('2025-10-05', 0)), est('0.9', null, at('2025-11-02', -1))])).toBe('0.140');
        expect(
          await improvement([
            est('0.2', null, at('2025-10-05', 0)),
            est('0.5', null, at('2025-10-19', 0)),
            est('0.9', null, at('2025-11-02', 0)),
          ]),
        ).toBe('0.060');
      });

      test('theta mode falls back to accuracy: n_r < 5, no θ_prev, no θ_recent, mirt never counts', async () => {
        const four = [...many('u1', 't1', D, 4, 4), att('u1', 't1', P, false)];
        expect((await one(four, [est('0.2', null, P), est('0.5', null, RECENT)])).improvement).toBe('0.133');
        // n_r = 5 is enough: (0.5 − 0.2) · 5/30 = 0.05 → 0.050
        const five = [...many('u1', 't1', D, 5, 5), att('u1', 't1', P, false)];
        expect((await one(five, [est('0.2', null, P), est('0.5', null, RECENT)])).improvement).toBe('0.050');
        expect((await one(six, [est('0.2', null, '2025-10-04T23:00:00Z'), est('0.5', null, RECENT)])).improvement).toBe('0.200');
        expect((await one(six, [est('0.2', null, P), est('0.5', null, '2025-10-18T00:00:00Z')])).improvement).toBe('0.200');
        expect((await one(six, [est('0.5', null, RECENT)], { mirt: [mirt('0.2', null, P)] })).improvement).toBe('0.200');
        // accuracy mode ignores the thetas
        expect(
          (await check(six, [est('0.2', null, P), est('0.5', null, RECENT)], { mode: 'accuracy' })).find((r) => r.date === '2025-11-01')!
            .improvement,
        ).toBe('0.200');
      });

      test('doubles are read as their shortest text, not a 15-digit cast', async () => {
        // stored as double, 999.9994999999999 rounds to 999.999 (valid); a 15-digit cast would make it 1000.000 (invalid)
        expect(await one([att('u1', 't1', D)], [est('999.9994999999999', '0.0004999999999999999', '2025-11-01T00:00:00Z')])).toMatchObject({
          theta_estimate: '999.999',
          theta_sd: '0.000',
        });
        expect(await one([att('u1', 't1', D)], [est('1.0004999999999997', null, '2025-11-01T00:00:00Z')])).toMatchObject({
          theta_estimate: '1.000',
        });
      });
    });
  });
});
