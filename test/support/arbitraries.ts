/**
 * fast-check generators of attempts that hit the edges SPEC.md cares about: NULL and empty
 * keys, NULL/negative/zero response times, even counts with .5 medians, instants a
 * millisecond either side of local midnight (also in zones with DST or odd offsets), attempts
 * after the anchor and far before the window.
 */
import fc from 'fast-check';
import type { OracleAttempt } from '../oracle/oracle.js';

export const timezones = ['UTC', 'America/New_York', 'Asia/Kolkata', 'Pacific/Chatham', 'Europe/Berlin'] as const;

/** Anchors near DST changes (US 2025-03-09 / 2025-11-02, EU 2025-03-30 / 2025-10-26) and plain days. */
export const anchors = ['2025-03-10', '2025-11-03', '2025-03-31', '2025-10-27', '2025-06-15', '2024-02-29'] as const;

const dayMs = 86_400_000;
// UTC times of day that are local midnight in one of the zones above (±1 ms is added below).
const midnights = [0, 4, 5, 22, 23].map((h) => h * 3_600_000).concat([18.5 * 3_600_000, 10.25 * 3_600_000, 11.25 * 3_600_000]);

export interface Scenario {
  readonly timezone: string;
  readonly anchor: string;
  readonly lookbackDays: number;
  readonly attempts: OracleAttempt[];
}

export function attemptArbitrary(anchor: string, dense = false): fc.Arbitrary<OracleAttempt> {
  const anchorMs = Date.parse(`${anchor}T00:00:00Z`);
  const timeOfDay = fc.oneof(
    fc.integer({ min: 0, max: dayMs - 1 }),
    fc.tuple(fc.constantFrom(...midnights), fc.constantFrom(-1, 0, 1)).map(([m, d]) => (m + d + dayMs) % dayMs),
  );
  return fc.record({
    student_id: dense
      ? fc.constantFrom('s1', 's1', 's1', 's2')
      : fc.oneof(
          { weight: 12, arbitrary: fc.constantFrom('s1', 's2', 's3') },
          { weight: 1, arbitrary: fc.constantFrom(null, '', 'ß-ünï', "o'neil") },
        ),
    topic_id: fc.oneof(
      { weight: 12, arbitrary: fc.constantFrom('algebra', 'geometry') },
      { weight: 1, arbitrary: fc.constantFrom(null, '', 'Find Y, any form') },
    ),
    completed_at: fc
      .tuple(fc.integer({ min: -45, max: 2 }), timeOfDay)
      .map(([day, ms]) => new Date(anchorMs + day * dayMs + ms).toISOString()),
    correct: fc.oneof({ weight: 8, arbitrary: fc.boolean() }, { weight: 1, arbitrary: fc.constant(null) }),
    response_time_ms: fc.oneof(
      { weight: 6, arbitrary: fc.integer({ min: 0, max: 20 }).map((n) => n * 500 + 1) },
      { weight: 3, arbitrary: fc.integer({ min: 0, max: 100_000 }) },
      { weight: 1, arbitrary: fc.constantFrom(null, -1, 0, -1000, 2_147_483_647) },
    ),
    hint_used: fc.oneof({ weight: 8, arbitrary: fc.boolean() }, { weight: 1, arbitrary: fc.constant(null) }),
  });
}

/**
 * A whole scenario: zone, anchor, lookback and attempts around the window. Sparse ones (0–120
 * attempts over many keys and 48 days) exercise keys, days and NULLs; dense ones (up to 400
 * attempts on few keys within the 28 days the index reads) give exposures near 1 and
 * penalties below the ½ cap, where every term of the improvement index shows in 3 decimals.
 */
export const scenarioArbitrary: fc.Arbitrary<Scenario> = fc
  .record({
    timezone: fc.constantFrom(...timezones),
    anchor: fc.constantFrom(...anchors),
    // 13–16 straddles the 14 days up to which the earlier days are read only for the window's pairs (sql/compute.ts).
    lookbackDays: fc.oneof(fc.integer({ min: 0, max: 10 }), fc.constant(7), fc.integer({ min: 13, max: 16 })),
    dense: fc.boolean(),
  })
  .chain(({ dense, ...base }) =>
    fc
      .array(attemptArbitrary(base.anchor, dense), { maxLength: dense ? 400 : 120, size: 'max' })
      .map((attempts) => ({ ...base, attempts })),
  );

/** Sorts rows the same way on both sides of a comparison. */
export function byKey<T extends { user_id: string; topic_id: string; date: string }>(rows: T[]): T[] {
  const key = (r: T) => JSON.stringify([r.user_id, r.topic_id, r.date]);
  return [...rows].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}
