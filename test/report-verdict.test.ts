/**
 * The verdict of `report` as a pure function: a healthy window, a missed night, a failed run
 * (with its failed combinations or error), a day with a sharp drop, drift found by verify
 * (after or before the last success), low theta coverage, and the thresholds moving them.
 */
import { describe, expect, test } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { judge, median, withTrend, type ShardHealth, type VerdictInput } from '../src/report/verdict.js';

const thresholds = loadConfig({}).report;

const shard = (over: Partial<ShardHealth> = {}): ShardHealth => ({
  shard: '1/1',
  success_anchor: '2025-03-18',
  success_finished_at: '2025-03-19 02:10:00+00',
  success_age_hours: 6.5,
  run_id: 'r1',
  command: 'run',
  outcome: 'success',
  failed: 0,
  error: null,
  last_anchor: '2025-03-18',
  last_started_at: '2025-03-19 02:00:00+00',
  last_age_hours: 6.7,
  ...over,
});

/** Days newest first, 50 users and 400 attempts each, with overrides by date. */
function days(overrides: Record<string, { users: number; attempts: number }> = {}) {
  const history = Array.from({ length: 14 }, (_, i) => {
    const date = `2025-03-${String(18 - i).padStart(2, '0')}`;
    return { date, users: 50 + (i % 3), attempts: 400 + 10 * (i % 4), ...overrides[date] };
  });
  return withTrend(history, 7, 7);
}

const healthy = (over: Partial<VerdictInput> = {}): VerdictInput => ({
  shards: [shard()],
  verify: undefined,
  days: days(),
  theta: { enabled: false, rows: 1000, withTheta: 0 },
  ...over,
});

describe('verdict', () => {
  test('a healthy window: OK, saying when the last success was', () => {
    const verdict = judge(healthy(), thresholds);
    expect(verdict.status).toBe('OK');
    expect(verdict.reasons).toEqual([{ status: 'OK', check: 'stale', message: 'last successful run 6.5 h ago (anchor 2025-03-18)' }]);
  });

  test('a missed night: FAIL once the last success is older than AGG_REPORT_MAX_AGE_HOURS', () => {
    const verdict = judge(healthy({ shards: [shard({ success_age_hours: 54, success_anchor: '2025-03-16' })] }), thresholds);
    expect(verdict.status).toBe('FAIL');
    expect(verdict.reasons[0]).toEqual({
      status: 'FAIL',
      check: 'stale',
      message: 'the last successful run finished 2.3 days ago (anchor 2025-03-16); expected at least every 30 h (AGG_REPORT_MAX_AGE_HOURS)',
    });
    expect(judge(healthy({ shards: [shard({ success_age_hours: 54 })] }), { ...thresholds, maxAgeHours: 60 }).status).toBe('OK');
  });

  test('no successful run at all: FAIL', () => {
    expect(judge(healthy({ shards: [] }), thresholds)).toMatchObject({ status: 'FAIL', reasons: [{ check: 'no_success' }] });
  });

  test('a failed run: FAIL with its failed combinations, or its error', () => {
    const failed = judge(healthy({ shards: [shard({ outcome: 'failed', failed: 3 })] }), thresholds);
    expect(failed.status).toBe('FAIL');
    expect(failed.reasons.find((r) => r.check === 'run_failed')?.message).toBe('the last run (6.7 h ago) failed: 3 combinations failed');
    const broke = judge(
      healthy({ shards: [shard({ outcome: 'failed', failed: null, error: 'lost the connection', command: 'backfill' })] }),
      thresholds,
    );
    expect(broke.reasons.find((r) => r.check === 'run_failed')?.message).toBe('the last backfill (6.7 h ago) failed: lost the connection');
  });

  test('one shard of four missed its night: FAIL naming the shard', () => {
    const shards = ['1/4', '2/4', '3/4', '4/4'].map((s) => shard({ shard: s, success_age_hours: s === '3/4' ? 50 : 6 }));
    const verdict = judge(healthy({ shards }), thresholds);
    expect(verdict.status).toBe('FAIL');
    expect(verdict.reasons.filter((r) => r.status === 'FAIL').map((r) => r.message)).toEqual([
      expect.stringMatching(/^the last successful run of shard 3\/4 finished 2.1 days ago/),
    ]);
  });

  test('a day with a sharp drop: WARN naming the day, its counts and the median', () => {
    const verdict = judge(healthy({ days: days({ '2025-03-16': { users: 12, attempts: 90 } }) }), thresholds);
    expect(verdict.status).toBe('WARN');
    const drop = verdict.reasons.find((r) => r.check === 'drop')!;
    expect(drop.message).toMatch(
      /^2025-03-16 has 12 users \(median 5\d\) and 90 attempts \(median 4\d\d\): below 50% of the 7 days before it/,
    );
    // A smaller drop is within the threshold; a stricter threshold catches it.
    const mild = healthy({ days: days({ '2025-03-16': { users: 35, attempts: 300 } }) });
    expect(judge(mild, thresholds).status).toBe('OK');
    expect(judge(mild, { ...thresholds, dropPercent: 80 }).status).toBe('WARN');
  });

  test('days after the newest computed anchor are not judged (not computed yet)', () => {
    const verdict = judge(
      healthy({ days: days({ '2025-03-18': { users: 0, attempts: 0 } }), shards: [shard({ success_anchor: '2025-03-17' })] }),
      thresholds,
    );
    expect(verdict.status).toBe('OK');
  });

  test('drift found by the last verify: FAIL after the last success, WARN before it', () => {
    const verify = {
      since: '2025-02-20',
      anchor: '2025-03-18',
      outcome: 'failed',
      failed: 4,
      error: '4 rows differ (differs=4, missing=0, unexpected=0)',
      age_hours: 2,
      finished_at: '2025-03-19 06:00:00+00',
    };
    const after = judge(healthy({ verify }), thresholds);
    expect(after.status).toBe('FAIL');
    expect(after.reasons.find((r) => r.check === 'drift')?.message).toBe(
      'verify of 2025-02-20..2025-03-18 2.0 h ago found drift (4 rows differ (differs=4, missing=0, unexpected=0)); repair with backfill over those days',
    );
    const before = judge(healthy({ verify: { ...verify, finished_at: '2025-03-18 06:00:00+00' } }), thresholds);
    expect(before.status).toBe('WARN');
    expect(judge(healthy({ verify: { ...verify, outcome: 'success', failed: 0, error: null } }), thresholds).status).toBe('OK');
  });

  test('theta coverage below AGG_REPORT_MIN_THETA_PERCENT: WARN, only with theta enabled', () => {
    const low = { enabled: true, rows: 1000, withTheta: 300 };
    expect(judge(healthy({ theta: low }), thresholds).reasons.find((r) => r.check === 'theta')?.message).toBe(
      'theta coverage 30.0% of 1000 rows, below 50% (AGG_REPORT_MIN_THETA_PERCENT)',
    );
    expect(judge(healthy({ theta: { ...low, enabled: false } }), thresholds).status).toBe('OK');
    expect(judge(healthy({ theta: low }), { ...thresholds, minThetaPercent: 25 }).status).toBe('OK');
  });

  test('the median of the days before each day', () => {
    expect(median([])).toBeNull();
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    const trend = withTrend(
      [
        { date: 'd3', users: 1, attempts: 10 },
        { date: 'd2', users: 5, attempts: 50 },
        { date: 'd1', users: 7, attempts: 70 },
        { date: 'd0', users: 9, attempts: 90 },
      ],
      2,
      2,
    );
    expect(trend).toEqual([
      { date: 'd3', users: 1, attempts: 10, median_users: 6, median_attempts: 60 },
      { date: 'd2', users: 5, attempts: 50, median_users: 8, median_attempts: 80 },
    ]);
  });
});

describe('thresholds', () => {
  test('defaults, environment, and a bad value named with what it accepts', () => {
    expect(thresholds).toEqual({ maxAgeHours: 30, nightGraceHours: 6, dropPercent: 50, baselineDays: 7, minThetaPercent: 50 });
    expect(loadConfig({ AGG_REPORT_MAX_AGE_HOURS: '50', AGG_REPORT_DROP_PERCENT: '70' }).report).toMatchObject({
      maxAgeHours: 50,
      dropPercent: 70,
    });
    expect(() => loadConfig({ AGG_REPORT_DROP_PERCENT: '150' })).toThrow(
      'AGG_REPORT_DROP_PERCENT="150" is not accepted: use a whole number from 0 to 100',
    );
  });
});
