// Hand-computed examples that pin down each rule of SPEC.md §3–§6 for the oracle.
// Every expected value is derived by hand in the comment next to it, never copied from output.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { oracle, type OracleAttempt, type OracleEstimate, type OracleMirt, type OracleOptions, type OracleRow } from './oracle.js';

function att(student_id: string | null, topic_id: string | null, completed_at: string, extra: Partial<OracleAttempt> = {}): OracleAttempt {
  return { student_id, topic_id, completed_at, correct: null, response_time_ms: null, hint_used: null, ...extra };
}

/** n attempts of (u, t) at one instant, the first c of them correct. */
function many(u: string, t: string, at: string, n: number, c: number): OracleAttempt[] {
  const out: OracleAttempt[] = [];
  for (let i = 0; i < n; i++) out.push(att(u, t, at, { correct: i < c }));
  return out;
}

function opts(over: Partial<OracleOptions> = {}): OracleOptions {
  return { since: '2025-11-01', anchor: '2025-11-01', timezone: 'UTC', includeTheta: false, improvementMode: 'accuracy', ...over };
}

function est(theta: string | null, se: string | null, updated_at: string, user_id = 'u1', topic_id = 't1'): OracleEstimate {
  return { user_id, topic_id, theta, se, updated_at };
}

function mirt(theta: string | null, se: string | null, fitted_at: string, user_id = 'u1'): OracleMirt {
  return { user_id, theta, se, fitted_at };
}

function only(rows: OracleRow[]): OracleRow {
  expect(rows).toHaveLength(1);
  return rows[0] as OracleRow;
}

function keys(rows: OracleRow[]): string[] {
  return rows.map((r) => `${r.user_id}|${r.topic_id}|${r.date}`);
}

describe('oracle: counts and last_seen_at (§4)', () => {
  it('counts attempts, correct IS TRUE, hint_used IS TRUE and takes the max instant', () => {
    const rows = oracle(
      [
        att('u1', 't1', '2025-11-01T08:00:00Z', { correct: true, hint_used: true }),
        att('u1', 't1', '2025-11-01T23:59:59.999Z', { correct: false, hint_used: null }),
        att('u1', 't1', '2025-11-01T12:00:00+02:00', { correct: null, hint_used: false }), // 10:00Z
        att('u1', 't1', '2025-11-02T01:30:00+02:00', { correct: true, hint_used: true }), // 2025-11-01T23:30Z → still 11-01 in UTC
      ],
      opts(),
    );
    const r = only(rows);
    // 4 rows; correct: true, true → 2 (false and null do not count); hints: true, true → 2
    expect(r).toMatchObject({ user_id: 'u1', topic_id: 't1', date: '2025-11-01', attempts: 4, correct: 2, hints: 2 });
    // max of 08:00Z, 23:59:59.999Z, 10:00Z, 23:30Z
    expect(r.last_seen_at).toBe('2025-11-01T23:59:59.999Z');
    // no response times at all
    expect(r.avg_time_ms).toBeNull();
    expect(r.rt_median).toBeNull();
    // theta disabled
    expect(r.theta_estimate).toBeNull();
    expect(r.theta_sd).toBeNull();
  });

  it('prints last_seen_at in UTC with milliseconds, also from PostgreSQL text and microsecond input', () => {
    // '2025-11-01 10:00:00.5+00' is 10:00:00.500 UTC
    expect(only(oracle([att('u1', 't1', '2025-11-01 10:00:00.5+00')], opts())).last_seen_at).toBe('2025-11-01T10:00:00.500Z');
    // 2025-11-01T12:00:00+05:30 is 06:30:00 UTC
    expect(only(oracle([att('u1', 't1', '2025-11-01T12:00:00+05:30')], opts())).last_seen_at).toBe('2025-11-01T06:30:00.000Z');
    // sub-millisecond precision is kept (6 digits) rather than silently truncated
    expect(only(oracle([att('u1', 't1', '2025-11-01T10:00:00.123456Z')], opts())).last_seen_at).toBe('2025-11-01T10:00:00.123456Z');
  });

  it('sorts rows by user_id, topic_id, date with plain string comparison', () => {
    const rows = oracle(
      [
        att('b', 't', '2025-11-01T00:00:00Z'),
        att('a', 'z', '2025-10-31T00:00:00Z'),
        att('a', 'z', '2025-11-01T00:00:00Z'),
        att('B', 't', '2025-11-01T00:00:00Z'),
        att('a', 'y', '2025-11-01T00:00:00Z'),
      ],
      opts({ since: '2025-10-31' }),
    );
    // 'B' (0x42) < 'a' (0x61) < 'b' (0x62); then topic 'y' < 'z'; then date
    expect(keys(rows)).toEqual(['B|t|2025-11-01', 'a|y|2025-11-01', 'a|z|2025-10-31', 'a|z|2025-11-01', 'b|t|2025-11-01']);
  });
});

describe('oracle: response times (§4)', () => {
  it('mean and median of an even count, both needing half-away rounding; NULL and negative times are not valid', () => {
    const times = [10, 11, 20, 30, null, -5];
    const rows = oracle(
      times.map((t) => att('u1', 't1', '2025-11-01T10:00:00Z', { response_time_ms: t })),
      opts(),
    );
    const r = only(rows);
    expect(r.attempts).toBe(6);
    // valid: 10, 11, 20, 30 → mean 71/4 = 17.75 → 18
    expect(r.avg_time_ms).toBe(18);
    // sorted 10, 11 | 20, 30 → (11 + 20)/2 = 15.5 → half away → 16
    expect(r.rt_median).toBe(16);
  });

  it('mean exactly .5 rounds up; median of an even count of equal middles', () => {
    const rows = oracle(
      [1, 1, 1, 3].map((t) => att('u1', 't1', '2025-11-01T10:00:00Z', { response_time_ms: t })),
      opts(),
    );
    const r = only(rows);
    // mean 6/4 = 1.5 → 2 (half away from zero); median (1 + 1)/2 = 1
    expect(r.avg_time_ms).toBe(2);
    expect(r.rt_median).toBe(1);
  });

  it('odd count, zero is a valid time, all-invalid gives NULL', () => {
    const odd = only(
      oracle(
        [5, 1, 0].map((t) => att('u1', 't1', '2025-11-01T10:00:00Z', { response_time_ms: t })),
        opts(),
      ),
    );
    // mean (5 + 1 + 0)/3 = 2; median of 0, 1, 5 = 1
    expect(odd.avg_time_ms).toBe(2);
    expect(odd.rt_median).toBe(1);
    const none = only(
      oracle(
        [-1, null].map((t) => att('u1', 't1', '2025-11-01T10:00:00Z', { response_time_ms: t })),
        opts(),
      ),
    );
    expect(none.avg_time_ms).toBeNull();
    expect(none.rt_median).toBeNull();
    expect(none.attempts).toBe(2);
  });

  it('large integer times: mean 2147483646.5 → 2147483647', () => {
    const r = only(
      oracle(
        [2147483647, 2147483646].map((t) => att('u1', 't1', '2025-11-01T10:00:00Z', { response_time_ms: t })),
        opts(),
      ),
    );
    // (2147483647 + 2147483646)/2 = 2147483646.5 → half away → 2147483647, for mean and median alike
    expect(r.avg_time_ms).toBe(2147483647);
    expect(r.rt_median).toBe(2147483647);
    // mean 2/3 → 0.667 → 1 ; and mean 1/3 → 0
    expect(
      only(
        oracle(
          [0, 0, 2].map((t) => att('u1', 't1', '2025-11-01T10:00:00Z', { response_time_ms: t })),
          opts(),
        ),
      ).avg_time_ms,
    ).toBe(1);
    expect(
      only(
        oracle(
          [0, 0, 1].map((t) => att('u1', 't1', '2025-11-01T10:00:00Z', { response_time_ms: t })),
          opts(),
        ),
      ).avg_time_ms,
    ).toBe(0);
  });
});

describe('oracle: calendar (§3)', () => {
  it('America/New_York, spring forward 2025-03-09 (a 23-hour day)', () => {
    // 2025-03-09 starts at 00:00 EST = 05:00Z and ends at 00:00 EDT on 03-10 = 04:00Z (23 hours)
    const rows = oracle(
      [
        att('u1', 't1', '2025-03-09T04:59:59.999Z'), // 03-08 23:59:59.999 EST → 03-08
        att('u1', 't1', '2025-03-09T05:00:00.000Z'), // 03-09 00:00 EST → 03-09
        att('u1', 't1', '2025-03-10T03:59:59.999Z'), // 03-09 23:59:59.999 EDT → 03-09
        att('u1', 't1', '2025-03-10T04:00:00.000Z'), // 03-10 00:00 EDT → 03-10
      ],
      opts({ since: '2025-03-08', anchor: '2025-03-10', timezone: 'America/New_York' }),
    );
    expect(rows.map((r) => [r.date, r.attempts, r.last_seen_at])).toEqual([
      ['2025-03-08', 1, '2025-03-09T04:59:59.999Z'],
      ['2025-03-09', 2, '2025-03-10T03:59:59.999Z'],
      ['2025-03-10', 1, '2025-03-10T04:00:00.000Z'],
    ]);
  });

  const fallBack = [
    att('u1', 't1', '2025-11-02T03:59:59.999Z'), // 11-01 23:59:59.999 EDT → 11-01
    att('u1', 't1', '2025-11-02T04:00:00.000Z'), // 11-02 00:00 EDT → 11-02
    att('u1', 't1', '2025-11-02T05:30:00.000Z'), // 11-02 01:30 EDT (first pass) → 11-02
    att('u1', 't1', '2025-11-02T06:30:00.000Z'), // 11-02 01:30 EST (second pass) → 11-02
    att('u1', 't1', '2025-11-03T04:59:59.999Z'), // 11-02 23:59:59.999 EST → 11-02
    att('u1', 't1', '2025-11-03T05:00:00.000Z'), // 11-03 00:00 EST → 11-03
  ];

  it('America/New_York, fall back 2025-11-02 (a 25-hour day)', () => {
    // 2025-11-02 starts at 00:00 EDT = 04:00Z and ends at 00:00 EST on 11-03 = 05:00Z (25 hours)
    const rows = oracle(fallBack, opts({ since: '2025-11-01', anchor: '2025-11-03', timezone: 'America/New_York' }));
    expect(rows.map((r) => [r.date, r.attempts, r.last_seen_at])).toEqual([
      ['2025-11-01', 1, '2025-11-02T03:59:59.999Z'],
      ['2025-11-02', 4, '2025-11-03T04:59:59.999Z'],
      ['2025-11-03', 1, '2025-11-03T05:00:00.000Z'],
    ]);
  });

  it('the same instants in UTC fall on other days', () => {
    // UTC dates: 11-02 ×4 (03:59, 04:00, 05:30, 06:30), 11-03 ×2 (04:59, 05:00)
    const rows = oracle(fallBack, opts({ since: '2025-11-01', anchor: '2025-11-03', timezone: 'UTC' }));
    expect(rows.map((r) => [r.date, r.attempts])).toEqual([
      ['2025-11-02', 4],
      ['2025-11-03', 2],
    ]);
  });

  it('the window is since…anchor inclusive; attempts after the anchor are ignored', () => {
    const rows = oracle(
      [
        att('u1', 't1', '2025-10-24T23:59:59.999Z'), // before since → no row
        att('u1', 't1', '2025-10-25T00:00:00.000Z'), // since → row
        att('u1', 't1', '2025-11-01T23:59:59.999Z'), // anchor → row
        att('u1', 't1', '2025-11-02T00:00:00.000Z'), // after the anchor → ignored
        att('u2', 't1', '2025-11-02T12:00:00.000Z'), // after the anchor → no row for u2 at all
      ],
      opts({ since: '2025-10-25', anchor: '2025-11-01' }),
    );
    expect(keys(rows)).toEqual(['u1|t1|2025-10-25', 'u1|t1|2025-11-01']);
    // the anchor-day row's last_seen_at is not the 11-02 attempt
    expect(rows[1]?.last_seen_at).toBe('2025-11-01T23:59:59.999Z');
    expect(rows[1]?.attempts).toBe(1);
  });

  it('NULL and empty student_id / topic_id are ignored, also in the improvement halves', () => {
    const rows = oracle(
      [
        att('u1', 't1', '2025-11-01T10:00:00Z', { correct: true }), // R: n_r = 1, c_r = 1
        att('u1', 't1', '2025-10-18T10:00:00Z', { correct: false }), // d−14 → P: n_p = 1, c_p = 0
        att(null, 't1', '2025-11-01T10:00:00Z', { correct: false }),
        att('', 't1', '2025-11-01T10:00:00Z', { correct: false }),
        att('u1', null, '2025-11-01T10:00:00Z', { correct: false }),
        att('u1', '', '2025-11-01T10:00:00Z', { correct: false }),
        att('', '', '2025-10-18T10:00:00Z', { correct: true }),
        att(' ', 't1', '2025-11-01T10:00:00Z'), // ' ' is not empty: it is a student
      ],
      opts(),
    );
    expect(keys(rows)).toEqual([' |t1|2025-11-01', 'u1|t1|2025-11-01']);
    const r = rows[1] as OracleRow;
    expect(r.attempts).toBe(1);
    // p_r = 1, p_p = 0, sqrt(1·0/1) = 0 → penalty 1, exposure 1/30 → 1/30 = 0.0333… → 0.033
    expect(r.improvement).toBe('0.033');
    // ' ' has one attempt with correct NULL → n_r = 0 → NULL
    expect(rows[0]?.improvement).toBeNull();
  });

  it('rejects an unknown time zone and a non-date anchor', () => {
    expect(() => oracle([], opts({ timezone: 'Mars/Olympus_Mons' }))).toThrow();
    expect(() => oracle([], opts({ anchor: '2025-02-30' }))).toThrow();
  });
});

describe('oracle: improvement, accuracy mode (§6)', () => {
  // d = 2025-11-01: R = 10-19 … 11-01, P = 10-05 … 10-18
  const D = '2025-11-01T12:00:00Z';
  const P = '2025-10-18T12:00:00Z';

  it('half boundaries d−13 / d−14 and d−27 / d−28; days before since are read', () => {
    const rows = oracle(
      [
        att('u1', 't1', D, { correct: true }), // R
        att('u1', 't1', '2025-10-19T00:00:00Z', { correct: true }), // d−13 → R
        att('u1', 't1', '2025-10-18T23:59:59Z', { correct: false }), // d−14 → P
        att('u1', 't1', '2025-10-05T00:00:00Z', { correct: false }), // d−27 → P
        att('u1', 't1', '2025-10-04T23:59:59Z', { correct: true }), // d−28 → neither
        att('u1', 't1', '2025-11-02T00:00:00Z', { correct: false }), // after the anchor → never
      ],
      opts(),
    );
    // only the anchor day is in the window (lookback 0)
    const r = only(rows);
    // n_r = 2, c_r = 2, n_p = 2, c_p = 0 → p_r − p_p = 1; sqrt(2·0·2) = 0 → penalty 1;
    // exposure 2/30 → 1/15 = 0.0666… → 0.067
    expect(r.improvement).toBe('0.067');
  });

  it('NULL when n_r = 0 or n_p = 0', () => {
    // R only has a NULL-correct attempt → n_r = 0
    expect(only(oracle([att('u1', 't1', D), att('u1', 't1', P, { correct: true })], opts())).improvement).toBeNull();
    // no attempts in P → n_p = 0
    expect(only(oracle([att('u1', 't1', D, { correct: true })], opts())).improvement).toBeNull();
    // P only has a NULL-correct attempt → n_p = 0
    expect(only(oracle([att('u1', 't1', D, { correct: true }), att('u1', 't1', P)], opts())).improvement).toBeNull();
  });

  it('exactly +0.0005 rounds away from zero to 0.001 (perfect-square penalty)', () => {
    // n_r = 4, c_r = 2 → p_r = 1/2; n_p = 136, c_p = 67 → p_p = 67/136; p_r − p_p = 68/136 − 67/136 = 1/136
    // exposure = 4/30 = 2/15; sqrt(p_r(1−p_r)/n_r) = sqrt(1/16) = 1/4; 1.96/4 = 0.49 < 0.5 → penalty 0.51
    // 1/136 · 2/15 · 51/100 = 102/204000 = 1/2000 = 0.0005 → 0.001
    // (in doubles this product is 0.0004999999999999983, which would round to 0.000)
    const rows = oracle([...many('u1', 't1', D, 4, 2), ...many('u1', 't1', P, 136, 67)], opts());
    expect(only(rows).improvement).toBe('0.001');
  });

  it('exactly −0.0005 rounds away from zero to −0.001', () => {
    // as above with c_p = 69: p_r − p_p = 68/136 − 69/136 = −1/136 → −1/2000 → −0.001
    expect(only(oracle([...many('u1', 't1', D, 4, 2), ...many('u1', 't1', P, 136, 69)], opts())).improvement).toBe('-0.001');
    // n_r = 1, c_r = 0 → p_r = 0, penalty 1 (sqrt 0), exposure 1/30; p_p = 3/200
    // (0 − 3/200) · 1/30 = −3/6000 = −0.0005 → −0.001
    expect(only(oracle([...many('u1', 't1', D, 1, 0), ...many('u1', 't1', P, 200, 3)], opts())).improvement).toBe('-0.001');
  });

  it('perfect-square penalty n = 4, c = 2: sqrt(1/16) = 1/4', () => {
    // p_r = 1/2, p_p = 0/4 = 0 → diff 1/2; exposure 4/30; penalty 1 − min(0.5, 1.96·0.25 = 0.49) = 0.51
    // 1/2 · 4/30 · 0.51 = 0.51/15 = 0.034
    expect(only(oracle([...many('u1', 't1', D, 4, 2), ...many('u1', 't1', P, 4, 0)], opts())).improvement).toBe('0.034');
  });

  it('penalty capped at 0.5 when 1.96·sd ≥ 0.5', () => {
    // n_r = 2, c_r = 1: sqrt(1/4 / 2) = sqrt(1/8) ≈ 0.35355; 1.96 · 0.35355 ≈ 0.693 > 0.5 → penalty 0.5
    // p_p = 0/2 → diff 1/2; exposure 2/30; 1/2 · 1/15 · 1/2 = 1/60 = 0.01666… → 0.017
    expect(only(oracle([...many('u1', 't1', D, 2, 1), ...many('u1', 't1', P, 2, 0)], opts())).improvement).toBe('0.017');
  });

  it('irrational penalty (n = 30, c = 20)', () => {
    // p_r = 2/3, p_p = 15/30 = 1/2 → diff 1/6; exposure min(1, 30/30) = 1
    // sqrt((2/3)(1/3)/30) = sqrt(1/135) = 1/11.61895… = 0.0860663…; ·1.96 = 0.168690…; penalty 0.831310…
    // 1/6 · 0.831310 = 0.138552 → 0.139
    expect(only(oracle([...many('u1', 't1', D, 30, 20), ...many('u1', 't1', P, 30, 15)], opts())).improvement).toBe('0.139');
  });

  it('exposure capped at 1, full range ±1.000, zero, and a tiny negative prints 0.000', () => {
    // n_r = 60 all correct, p_p = 0/1: diff 1, exposure min(1, 2) = 1, sqrt(0) → penalty 1 → 1.000
    expect(only(oracle([...many('u1', 't1', D, 60, 60), ...many('u1', 't1', P, 1, 0)], opts())).improvement).toBe('1.000');
    // mirror: diff −1 → −1.000
    expect(only(oracle([...many('u1', 't1', D, 60, 0), ...many('u1', 't1', P, 1, 1)], opts())).improvement).toBe('-1.000');
    // p_r = p_p = 1/2 → 0 → 0.000
    expect(only(oracle([...many('u1', 't1', D, 2, 1), ...many('u1', 't1', P, 2, 1)], opts())).improvement).toBe('0.000');
    // n_r = 1, c_r = 0, p_p = 1/100: −1/100 · 1/30 = −1/3000 = −0.000333… → 0.000 (never "-0.000")
    expect(only(oracle([...many('u1', 't1', D, 1, 0), ...many('u1', 't1', P, 100, 1)], opts())).improvement).toBe('0.000');
    // n_r = 3, c_r = 0, p_p = 2/5: −2/5 · 3/30 · 1 = −0.04 → "-0.040"
    expect(only(oracle([...many('u1', 't1', D, 3, 0), ...many('u1', 't1', P, 5, 2)], opts())).improvement).toBe('-0.040');
  });

  it('each day of the window gets its own halves', () => {
    const rows = oracle(
      [
        att('u1', 't1', '2025-10-31T12:00:00Z', { correct: true }),
        att('u1', 't1', '2025-11-01T12:00:00Z', { correct: false }),
        att('u1', 't1', '2025-10-17T12:00:00Z', { correct: false }),
      ],
      opts({ since: '2025-10-31' }),
    );
    // d = 10-31: R = 10-18…10-31 → {10-31 true}: 1/1; P = 10-04…10-17 → {10-17 false}: 0/1
    //   diff 1, exposure 1/30, penalty 1 → 0.033
    // d = 11-01: R = 10-19…11-01 → {10-31 true, 11-01 false}: 1/2; P = 10-05…10-18 → {10-17 false}: 0/1
    //   diff 1/2, exposure 2/30; sqrt(1/4 / 2) ≈ 0.354 → 1.96·0.354 > 0.5 → penalty 0.5
    //   1/2 · 1/15 · 1/2 = 1/60 → 0.017
    expect(rows.map((r) => [r.date, r.improvement])).toEqual([
      ['2025-10-31', '0.033'],
      ['2025-11-01', '0.017'],
    ]);
  });
});

describe('oracle: theta (§5)', () => {
  const D = '2025-11-01T12:00:00Z';
  const theta = (over: Partial<OracleOptions>) => opts({ includeTheta: true, ...over });

  it('latest estimate up to the end of d, rounded half away on the decimal text', () => {
    const r = only(
      oracle(
        [att('u1', 't1', D)],
        theta({
          estimates: [
            est('0.1', '0.2', '2025-10-01T00:00:00Z'),
            est('1.2345', '0.1', '2025-11-01T23:59:59.999Z'), // latest on day d → used
            est('0.5', '0.3', '2025-11-02T00:00:00Z'), // after d → never used for d
            est('7', '0.3', '2025-11-01T20:00:00Z', 'u1', 't2'), // other topic
            est('8', '0.3', '2025-11-01T20:00:00Z', 'u2', 't1'), // other user
          ],
        }),
      ),
    );
    // 1.2345 → 1.235 (half away); se 0.1 → 0.100
    expect(r.theta_estimate).toBe('1.235');
    expect(r.theta_sd).toBe('0.100');
  });

  it('exact decimal rounding: -1.2345 → -1.235, -0.0004 → 0.000, 2 → 2.000, 1.0005 → 1.001', () => {
    const pick = (t: string, se: string | null) =>
      only(oracle([att('u1', 't1', D)], theta({ estimates: [est(t, se, '2025-11-01T00:00:00Z')] })));
    expect(pick('-1.2345', '0.0005')).toMatchObject({ theta_estimate: '-1.235', theta_sd: '0.001' });
    expect(pick('-0.0004', '0.0004')).toMatchObject({ theta_estimate: '0.000', theta_sd: '0.000' });
    expect(pick('2', '1')).toMatchObject({ theta_estimate: '2.000', theta_sd: '1.000' });
    // 1.0005 is not exactly representable as a double (1.000499999…); on the text it is a tie → 1.001
    expect(pick('1.0005', null)).toMatchObject({ theta_estimate: '1.001', theta_sd: null });
    // double-precision text with an exponent: 1e-05 = 0.00001 → 0.000; 1.5e2 = 150 → 150.000
    expect(pick('1e-05', '1.5e2')).toMatchObject({ theta_estimate: '0.000', theta_sd: '150.000' });
  });

  it('local day of updated_at in the job time zone', () => {
    // New York 2025-11-01 ends at 2025-11-02T04:00Z (EDT, −4)
    const r = only(
      oracle(
        [att('u1', 't1', D)],
        theta({
          timezone: 'America/New_York',
          estimates: [
            est('0.25', null, '2025-11-02T03:59:59.999Z'), // 11-01 23:59:59.999 EDT → usable for 11-01
            est('0.75', null, '2025-11-02T04:00:00.000Z'), // 11-02 00:00 EDT → not usable
          ],
        }),
      ),
    );
    expect(r.theta_estimate).toBe('0.250');
    expect(r.theta_sd).toBeNull();
  });

  it('ties at the same instant: highest theta, then highest se with NULL/invalid se last', () => {
    const at = '2025-11-01T00:00:00Z';
    const pick = (estimates: OracleEstimate[]) => only(oracle([att('u1', 't1', D)], theta({ estimates })));
    // 0.7 > 0.5 → 0.7 wins even though its se is NULL
    expect(pick([est('0.5', '0.3', at), est('0.7', null, at)])).toMatchObject({ theta_estimate: '0.700', theta_sd: null });
    // thetas equal (0.7 = 0.70): se 0.2 beats NULL, whichever order
    expect(pick([est('0.7', null, at), est('0.70', '0.2', at)])).toMatchObject({ theta_estimate: '0.700', theta_sd: '0.200' });
    expect(pick([est('0.70', '0.2', at), est('0.7', null, at)])).toMatchObject({ theta_estimate: '0.700', theta_sd: '0.200' });
    // se 0.2 beats 0.1
    expect(pick([est('0.7', '0.1', at), est('0.7', '0.2', at)])).toMatchObject({ theta_sd: '0.200' });
    // a negative se is invalid → last: 0.2 wins over −0.5
    expect(pick([est('0.7', '-0.5', at), est('0.7', '0.2', at)])).toMatchObject({ theta_sd: '0.200' });
    // se that does not fit numeric(6,3) or is infinite is invalid → last, although it is numerically higher
    expect(pick([est('0.7', '1000', at), est('0.7', '0.2', at)])).toMatchObject({ theta_sd: '0.200' });
    expect(pick([est('0.7', 'Infinity', at), est('0.7', '0.2', at)])).toMatchObject({ theta_sd: '0.200' });
    // NaN se is invalid → last (PostgreSQL would sort NaN above all numbers)
    expect(pick([est('0.7', 'NaN', at), est('0.7', '0.2', at)])).toMatchObject({ theta_sd: '0.200' });
    // a later instant beats a higher theta
    expect(pick([est('0.9', '0.1', at), est('0.1', '0.1', '2025-11-01T00:00:00.001Z')])).toMatchObject({ theta_estimate: '0.100' });
  });

  it('invalid theta is skipped as if it did not exist', () => {
    const pick = (estimates: OracleEstimate[]) => only(oracle([att('u1', 't1', D)], theta({ estimates })));
    const estimates = [
      est('999.9994', '0.5', '2025-10-01T00:00:00Z'), // valid: rounds to 999.999
      est(null, '0.1', '2025-10-02T00:00:00Z'), // NULL
      est('NaN', '0.1', '2025-10-03T00:00:00Z'),
      est('Infinity', '0.1', '2025-10-04T00:00:00Z'),
      est('-Infinity', '0.1', '2025-10-05T00:00:00Z'),
      est('1000', '0.1', '2025-10-06T00:00:00Z'), // 1000.000 does not fit numeric(6,3)
      est('999.9995', '0.1', '2025-10-07T00:00:00Z'), // rounds to 1000.000 → does not fit
      est('-999.9995', '0.1', '2025-10-08T00:00:00Z'), // rounds to −1000.000 → does not fit
    ];
    expect(pick(estimates)).toMatchObject({ theta_estimate: '999.999', theta_sd: '0.500' });
    // an invalid theta at the same instant does not win the tie with its higher value
    expect(pick([est('0.5', '0.2', '2025-11-01T00:00:00Z'), est('1000', '0.1', '2025-11-01T00:00:00Z')])).toMatchObject({
      theta_estimate: '0.500',
      theta_sd: '0.200',
    });
    // only invalid estimates, no mirt → NULL
    expect(pick(estimates.slice(1))).toMatchObject({ theta_estimate: null, theta_sd: null });
  });

  it('se NULL, negative, non-finite or too large gives theta_sd NULL, theta stays', () => {
    const pick = (se: string | null) => only(oracle([att('u1', 't1', D)], theta({ estimates: [est('0.3', se, '2025-11-01T00:00:00Z')] })));
    expect(pick('-0.1')).toMatchObject({ theta_estimate: '0.300', theta_sd: null });
    expect(pick('-0.0001')).toMatchObject({ theta_estimate: '0.300', theta_sd: null }); // negative even if it rounds to 0
    expect(pick('Infinity')).toMatchObject({ theta_estimate: '0.300', theta_sd: null });
    expect(pick('NaN')).toMatchObject({ theta_estimate: '0.300', theta_sd: null });
    expect(pick('999.9995')).toMatchObject({ theta_estimate: '0.300', theta_sd: null }); // 1000.000 does not fit
    expect(pick('999.9994')).toMatchObject({ theta_estimate: '0.300', theta_sd: '999.999' });
    expect(pick('0')).toMatchObject({ theta_estimate: '0.300', theta_sd: '0.000' });
    expect(pick(null)).toMatchObject({ theta_estimate: '0.300', theta_sd: null });
  });

  it('mirt_ability fallback when (u, t) has no valid estimate up to d', () => {
    const mirtRows = [
      mirt('0.25', '0.05', '2025-10-01T00:00:00Z'),
      mirt('0.35', '-1', '2025-10-15T00:00:00Z'), // latest up to d; negative se → NULL sd
      mirt('9', '0.1', '2025-11-02T00:00:00Z'), // after d
      mirt('NaN', '0.1', '2025-10-20T00:00:00Z'), // invalid → skipped
      mirt('5', '0.1', '2025-10-30T00:00:00Z', 'u2'), // other user
    ];
    const pick = (estimates: OracleEstimate[], m: OracleMirt[] | undefined) =>
      only(oracle([att('u1', 't1', D)], theta({ estimates, mirt: m })));
    // no estimates → mirt 0.35 (2025-10-15 is the latest valid one ≤ d)
    expect(pick([], mirtRows)).toMatchObject({ theta_estimate: '0.350', theta_sd: null });
    // (u1, t1) estimate only after d, or only invalid → still mirt
    expect(pick([est('2', '0.1', '2025-11-02T00:00:00Z'), est('NaN', '0.1', '2025-10-30T00:00:00Z')], mirtRows)).toMatchObject({
      theta_estimate: '0.350',
    });
    // a valid (u1, t1) estimate ≤ d wins over a later mirt row
    expect(pick([est('-0.5', '0.25', '2025-09-01T00:00:00Z')], mirtRows)).toMatchObject({ theta_estimate: '-0.500', theta_sd: '0.250' });
    // mirt table does not exist → NULL
    expect(pick([], undefined)).toMatchObject({ theta_estimate: null, theta_sd: null });
    // mirt rows of other users only → NULL
    expect(pick([], [mirt('5', '0.1', '2025-10-30T00:00:00Z', 'u2')])).toMatchObject({ theta_estimate: null, theta_sd: null });
    // mirt only up to 10-01 → 0.25 / 0.05
    expect(pick([], mirtRows.slice(0, 1))).toMatchObject({ theta_estimate: '0.250', theta_sd: '0.050' });
  });

  it('theta disabled: NULL even when estimates exist', () => {
    const r = only(oracle([att('u1', 't1', D)], opts({ estimates: [est('1', '1', '2025-10-01T00:00:00Z')], mirt: [] })));
    expect(r.theta_estimate).toBeNull();
    expect(r.theta_sd).toBeNull();
  });
});

describe('oracle: improvement, theta mode (§6)', () => {
  // d = 2025-11-01: R = 10-19 … 11-01, P = 10-05 … 10-18
  const D = '2025-11-01T12:00:00Z';
  const P = '2025-10-10T12:00:00Z';
  const RECENT = '2025-10-25T12:00:00Z';
  // n_r = 6 (all correct), one incorrect attempt in P → accuracy formula:
  //   p_r = 1, p_p = 0, sqrt 0 → penalty 1, exposure 6/30 = 0.2 → 0.200
  const six = [...many('u1', 't1', D, 6, 6), att('u1', 't1', P, { correct: false })];
  const mode = (estimates: OracleEstimate[], over: Partial<OracleOptions> = {}) =>
    only(oracle(six, opts({ includeTheta: true, improvementMode: 'theta', estimates, ...over }))).improvement;

  it('with se_recent: (0.5 − 0.2)·0.2·(1 − 1.96·0.1) = 0.04824 → 0.048', () => {
    // θ_prev = 0.2 (se 0.3 is the previous one's; it does not matter), θ_recent = 0.5 with se 0.1
    // exposure 6/30 = 0.2; factor 1 − min(0.5, 0.196) = 0.804; 0.3 · 0.2 · 0.804 = 0.04824 → 0.048
    expect(mode([est('0.2', '0.3', P), est('0.5', '0.1', RECENT), est('5', '0.1', '2025-10-01T00:00:00Z')])).toBe('0.048');
  });

  it('without se_recent the factor is 1; a negative se counts as NULL; a large se is capped at 0.5', () => {
    // 0.3 · 0.2 · 1 = 0.06 → 0.060
    expect(mode([est('0.2', '0.3', P), est('0.5', null, RECENT)])).toBe('0.060');
    expect(mode([est('0.2', '0.3', P), est('0.5', '-0.1', RECENT)])).toBe('0.060');
    // se 0.4: 1.96 · 0.4 = 0.784 → min 0.5 → factor 0.5; 0.3 · 0.2 · 0.5 = 0.03 → 0.030
    expect(mode([est('0.2', '0.3', P), est('0.5', '0.4', RECENT)])).toBe('0.030');
  });

  it('exact rational rounding on a boundary and unrounded thetas', () => {
    // n_r = 10: exposure 1/3; θ diff 0.0045 − 0 → 0.0015 exactly → 0.002
    // (doubles: 0.0045 · (10/30) = 0.0014999999999999998 → 0.001)
    const ten = [...many('u1', 't1', D, 10, 10), att('u1', 't1', P, { correct: false })];
    const r = only(
      oracle(ten, opts({ includeTheta: true, improvementMode: 'theta', estimates: [est('0', null, P), est('0.0045', null, RECENT)] })),
    );
    expect(r.improvement).toBe('0.002');
    // θ as stored, not rounded: n_r = 30 (exposure 1); 0.5006 − 0.5004 = 0.0002 → 0.000
    // (rounded first it would be 0.501 − 0.500 = 0.001)
    const thirty = [...many('u1', 't1', D, 30, 30), att('u1', 't1', P, { correct: false })];
    const r2 = only(
      oracle(
        thirty,
        opts({ includeTheta: true, improvementMode: 'theta', estimates: [est('0.5004', null, P), est('0.5006', null, RECENT)] }),
      ),
    );
    expect(r2.improvement).toBe('0.000');
    expect(r2.theta_estimate).toBe('0.501'); // 0.5006 → 0.501 for the theta column
  });

  it('clamped to ±1', () => {
    // (9 − (−1)) · 0.2 = 2 → 1.000 ; (−9 − 1) · 0.2 = −2 → −1.000
    expect(mode([est('-1', null, P), est('9', null, RECENT)])).toBe('1.000');
    expect(mode([est('1', null, P), est('-9', null, RECENT)])).toBe('-1.000');
  });

  it('latest valid estimate in each half; same-instant tie by highest theta', () => {
    // recent half: 0.4 and 0.5 at the same instant → 0.5; a later NaN is skipped
    // prev half: 0.1 at 10-06 then 0.2 at 10-18 23:00 (d−14, still P) → 0.2
    // 0.3 · 0.2 · 1 = 0.06 → 0.060
    expect(
      mode([
        est('0.1', null, '2025-10-06T00:00:00Z'),
        est('0.2', null, '2025-10-18T23:00:00Z'),
        est('0.4', null, RECENT),
        est('0.5', null, RECENT),
        est('NaN', null, '2025-10-31T00:00:00Z'),
      ]),
    ).toBe('0.060');
  });

  it('falls back to the accuracy formula', () => {
    // n_r = 4 < 5: p_r = 1, p_p = 0, exposure 4/30 → 0.1333… → 0.133
    const four = [...many('u1', 't1', D, 4, 4), att('u1', 't1', P, { correct: false })];
    const e = [est('0.2', null, P), est('0.5', null, RECENT)];
    expect(only(oracle(four, opts({ includeTheta: true, improvementMode: 'theta', estimates: e }))).improvement).toBe('0.133');
    // no θ_prev (the only other estimate is before d−27) → accuracy 0.200
    expect(mode([est('0.2', null, '2025-10-04T23:00:00Z'), est('0.5', null, RECENT)])).toBe('0.200');
    // no θ_recent in d−13…d (only in P) → accuracy 0.200
    expect(mode([est('0.2', null, P), est('0.5', null, '2025-10-18T00:00:00Z')])).toBe('0.200');
    // mirt never serves as θ_recent / θ_prev → accuracy 0.200
    expect(mode([est('0.5', null, RECENT)], { mirt: [mirt('0.2', null, P)] })).toBe('0.200');
    // theta disabled → accuracy 0.200
    expect(
      only(oracle(six, opts({ includeTheta: false, improvementMode: 'theta', estimates: [est('0.2', null, P), est('0.5', null, RECENT)] })))
        .improvement,
    ).toBe('0.200');
  });
});

describe('oracle: agrees with a naive floating-point reading of the formulas away from rounding ties', () => {
  const D = '2025-11-01T12:00:00Z';
  const P = '2025-10-18T12:00:00Z';

  it('accuracy improvement', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 70 }).chain((nR) => fc.tuple(fc.constant(nR), fc.integer({ min: 0, max: nR }))),
        fc.integer({ min: 1, max: 70 }).chain((nP) => fc.tuple(fc.constant(nP), fc.integer({ min: 0, max: nP }))),
        ([nR, cR], [nP, cP]) => {
          const pR = cR / nR;
          const pP = cP / nP;
          const v = (pR - pP) * Math.min(1, nR / 30) * (1 - Math.min(0.5, 1.96 * Math.sqrt((pR * (1 - pR)) / nR)));
          const scaled = Math.abs(v) * 1000;
          fc.pre(Math.abs(scaled - Math.floor(scaled) - 0.5) > 1e-9); // not near a tie: floats decide safely
          const milli = Math.sign(v) * Math.round(scaled);
          const expected = milli === 0 ? '0.000' : (milli / 1000).toFixed(3);
          const rows = oracle([...many('u1', 't1', D, nR, cR), ...many('u1', 't1', P, nP, cP)], opts());
          expect(only(rows).improvement).toBe(expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('mean and median of response times', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 100_000 }), { minLength: 1, maxLength: 12 }), (times) => {
        const sorted = [...times].sort((x, y) => x - y);
        const mid = sorted.length / 2;
        const median = sorted.length % 2 === 1 ? sorted[Math.floor(mid)]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
        const mean = times.reduce((s, x) => s + x, 0) / times.length;
        const r = only(
          oracle(
            times.map((t) => att('u1', 't1', D, { response_time_ms: t })),
            opts(),
          ),
        );
        // non-negative values: Math.round rounds .5 up, i.e. away from zero
        expect(r.avg_time_ms).toBe(Math.round(mean));
        expect(r.rt_median).toBe(Math.round(median));
      }),
      { numRuns: 300 },
    );
  });
});
