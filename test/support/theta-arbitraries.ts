/**
 * fast-check generators of theta histories (SPEC §5) around a scenario's anchor: several
 * estimates per day, estimates after the window and exactly at local midnight, ties at the
 * same instant, NULL/negative/NaN/too large se, NULL/NaN/infinite/out-of-range thetas, values
 * on a rounding boundary, the mirt_ability fallback present or absent, theta and se stored as
 * numeric or double precision, with or without the lookup index.
 */
import fc from 'fast-check';
import type { OracleEstimate, OracleMirt } from '../oracle/oracle.js';
import { anchors, attemptArbitrary, timezones, type Scenario } from './arbitraries.js';

export type NumberType = 'numeric' | 'double precision';

export interface ThetaTablesShape {
  readonly thetaType: NumberType;
  readonly seType: NumberType;
  /** Create the recommended index (the lookup's plan differs without it). */
  readonly index: boolean;
  /** undefined: mirt_ability does not exist. */
  readonly mirt: { readonly thetaType: NumberType; readonly seType: NumberType } | undefined;
}

export interface ThetaScenario extends Scenario {
  readonly improvementMode: 'accuracy' | 'theta';
  readonly tables: ThetaTablesShape;
  readonly estimates: OracleEstimate[];
  /** Rows of mirt_ability; ignored (the table is absent) when tables.mirt is undefined. */
  readonly mirt: OracleMirt[];
}

const dayMs = 86_400_000;

/** A decimal text with up to 6 fractional digits in about ±5. */
const plainDecimal = fc.tuple(fc.integer({ min: -5_000_000, max: 5_000_000 }), fc.integer({ min: 0, max: 6 })).map(([n, scale]) => {
  const negative = n < 0;
  const digits = Math.abs(n)
    .toString()
    .padStart(scale + 1, '0');
  const text = scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  return negative ? `-${text}` : text;
});

export const thetaText: fc.Arbitrary<string | null> = fc.oneof(
  { weight: 10, arbitrary: plainDecimal },
  {
    weight: 3,
    arbitrary: fc.constantFrom('0.0005', '-0.0005', '0.0015', '-1.2345', '1.0005', '2.5', '-0', '0', '999.999', '-999.999', '999.9994'),
  },
  // Doubles whose shortest text rounds differently from a 15-digit double → numeric cast.
  { weight: 1, arbitrary: fc.constantFrom('0.0004999999999999999', '1.0004999999999997', '999.9994999999999', '0.0014999999999999998') },
  { weight: 2, arbitrary: fc.constantFrom(null, 'NaN', 'Infinity', '-Infinity', '1000', '-1000', '999.9995', '-999.9995', '1e6') },
);

export const seText: fc.Arbitrary<string | null> = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0, max: 200_000 }).map((n) => (n / 100_000).toString()) },
  { weight: 2, arbitrary: fc.constantFrom('0', '0.255', '0.2551', '0.25510204', '0.1', '0.0005', '999.9994', '0.0004999999999999999') },
  { weight: 3, arbitrary: fc.constantFrom(null, '-0.1', '-0.0001', 'NaN', 'Infinity', '-Infinity', '999.9995', '1000') },
);

const offsetFormatters = new Map<string, Intl.DateTimeFormat>();

/** The UTC instant (ms) of local midnight starting `date` in `timezone` (zones here have no DST change at midnight). */
export function localMidnightMs(date: string, timezone: string): number {
  let fmt = offsetFormatters.get(timezone);
  if (fmt === undefined) {
    fmt = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    offsetFormatters.set(timezone, fmt);
  }
  const offset = (ms: number) => {
    const parts = fmt.formatToParts(new Date(ms));
    const get = (type: string) => Number(parts.find((x) => x.type === type)?.value);
    return Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second')) - ms;
  };
  const wall = Date.parse(`${date}T00:00:00Z`);
  const first = wall - offset(wall);
  return wall - offset(first);
}

function addDays(date: string, days: number): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + days * dayMs).toISOString().slice(0, 10);
}

/**
 * Instants around the anchor: any time on days −50 … +3; local midnight (in the scenario's
 * zone) of one of those days, or 1 ms either side; and a few fixed instants shared by all
 * estimates (ties across clusters).
 */
export function instantArbitrary(anchor: string, timezone: string): fc.Arbitrary<string> {
  const anchorMs = Date.parse(`${anchor}T00:00:00Z`);
  const fixed = [-30, -16, -14, -13, -5, -1, 0].map((day) => new Date(anchorMs + day * dayMs + 12 * 3_600_000).toISOString());
  return fc.oneof(
    {
      weight: 3,
      arbitrary: fc
        .tuple(fc.integer({ min: -50, max: 3 }), fc.integer({ min: 0, max: dayMs - 1 }))
        .map(([day, ms]) => new Date(anchorMs + day * dayMs + ms).toISOString()),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.integer({ min: -45, max: 3 }), fc.constantFrom(-1, 0, 0, 1))
        .map(([day, delta]) => new Date(localMidnightMs(addDays(anchor, day), timezone) + delta).toISOString()),
    },
    { weight: 1, arbitrary: fc.constantFrom(...fixed) },
  );
}

/** One re-estimation event: 1–3 estimates of one (user, topic) at the same instant (2+ is a tie). */
function clusterArbitrary(anchor: string, timezone: string): fc.Arbitrary<OracleEstimate[]> {
  return fc
    .record({
      user_id: fc.oneof(
        { weight: 8, arbitrary: fc.constantFrom('s1', 's1', 's2', 's3') },
        { weight: 1, arbitrary: fc.constantFrom('s4', "o'neil") },
      ),
      topic_id: fc.oneof(
        { weight: 8, arbitrary: fc.constantFrom('algebra', 'geometry') },
        { weight: 1, arbitrary: fc.constant('Find Y, any form') },
      ),
      updated_at: instantArbitrary(anchor, timezone),
      members: fc.oneof(
        { weight: 6, arbitrary: fc.array(fc.record({ theta: thetaText, se: seText }), { minLength: 1, maxLength: 1 }) },
        { weight: 3, arbitrary: fc.array(fc.record({ theta: thetaText, se: seText }), { minLength: 2, maxLength: 3 }) },
        // Same theta, different se: the se tie-break decides.
        {
          weight: 2,
          arbitrary: fc
            .tuple(thetaText, fc.array(seText, { minLength: 2, maxLength: 3 }))
            .map(([theta, ses]) =>
              ses.map((se, i) => ({ theta: i === 1 && theta !== null && /^-?\d*\.\d+$/.test(theta) ? `${theta}0` : theta, se })),
            ),
        },
      ),
    })
    .map(({ members, ...key }) => members.map((m) => ({ ...key, ...m })));
}

function mirtArbitrary(anchor: string, timezone: string): fc.Arbitrary<OracleMirt> {
  return fc.record({
    user_id: fc.constantFrom('s1', 's2', 's3', 's4'),
    theta: thetaText,
    se: seText,
    fitted_at: instantArbitrary(anchor, timezone),
  });
}

const numberType = fc.constantFrom<NumberType>('numeric', 'double precision');

/**
 * A scenario for theta: zone, anchor and lookback as in arbitraries.ts, and attempts sized
 * explicitly (fast-check's default size would cap arrays at about 10 elements, too few for
 * n_r ≥ 5): sparse ones with up to 60 attempts over many keys, dense ones with 30–300 on
 * s1/s2 × two topics, where the theta improvement applies. Estimates come in clusters.
 */
export const thetaScenarioArbitrary: fc.Arbitrary<ThetaScenario> = fc
  .record({
    timezone: fc.constantFrom(...timezones),
    anchor: fc.constantFrom(...anchors),
    // 13–16 straddles the 14 days up to which the earlier days are read only for the window's pairs (sql/compute.ts).
    lookbackDays: fc.oneof(fc.integer({ min: 0, max: 10 }), fc.constant(7), fc.integer({ min: 13, max: 16 })),
    dense: fc.boolean(),
  })
  .chain(({ dense, ...base }) =>
    fc
      .record({
        attempts: dense
          ? fc.array(attemptArbitrary(base.anchor, true), { minLength: 30, maxLength: 300, size: 'max' })
          : fc.array(attemptArbitrary(base.anchor, false), { maxLength: 60, size: 'max' }),
        improvementMode: fc.constantFrom<'accuracy' | 'theta'>('accuracy', 'theta'),
        tables: fc.record({
          thetaType: numberType,
          seType: numberType,
          index: fc.boolean(),
          mirt: fc.option(fc.record({ thetaType: numberType, seType: numberType }), { nil: undefined }),
        }),
        estimates: fc.array(clusterArbitrary(base.anchor, base.timezone), { maxLength: 40, size: 'max' }).map((c) => c.flat()),
        mirt: fc.array(mirtArbitrary(base.anchor, base.timezone), { maxLength: 12, size: 'max' }),
      })
      .map((theta) => ({ ...base, ...theta })),
  );
