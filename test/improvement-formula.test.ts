/**
 * The accuracy improvement as the computation evaluates it — in doubles where they cannot round
 * differently, in numeric elsewhere — against the oracle's exact rational arithmetic: every
 * combination of small counts (where exact fractions on a rounding boundary such as 0.0005
 * are common), and generated large ones on both sides of the counts' limit for doubles.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { Session } from '../src/database/db.js';
import { accuracyImprovement, scaledAccuracy } from '../src/sql/compute.js';
import { join, sql, type Sql } from '../src/sql/tag.js';
import { allBackends, withSession } from './support/backends.js';
import { accuracyImprovementMilli, formatMilli } from './oracle/oracle.js';
import { propertyRuns } from './support/property.js';

const backends = await allBackends('improvement-formula');

interface Counts {
  n_r: number;
  c_r: number;
  n_p: number;
  c_p: number;
}

/** The oracle's improvement of `counts`, as numeric(6,3) text, or null. */
function expected({ n_r, c_r, n_p, c_p }: Counts): string | null {
  const milli = accuracyImprovementMilli(n_r, c_r, n_p, c_p);
  return milli === null ? null : formatMilli(milli);
}

/** The computation's improvement of each row of `rows` (a relation of bigint n_r, c_r, n_p, c_p), with `scaled` as h carries it. */
async function improvements(session: Session, rows: Sql): Promise<(Counts & { improvement: string | null })[]> {
  const result = await session.query<Counts & { improvement: string | null }>(sql`
    select h.n_r::float8 as n_r, h.c_r::float8 as c_r, h.n_p::float8 as n_p, h.c_p::float8 as c_p,
           (${accuracyImprovement})::numeric(6,3)::text as improvement
    from (select r.*, ${scaledAccuracy({ nr: sql`r.n_r`, cr: sql`r.c_r`, np: sql`r.n_p`, cp: sql`r.c_p` })} as scaled
          from (${rows}) r) h`);
  return result.rows;
}

const grid = 24;

describe.each(backends)('the accuracy improvement: $name', (backend) => {
  test(`equals the exact fraction for every count up to ${grid} in each half`, async () => {
    const rows = await withSession(backend, (session) =>
      improvements(
        session,
        sql`select n_r::bigint as n_r, c_r::bigint as c_r, n_p::bigint as n_p, c_p::bigint as c_p
            from generate_series(0, ${grid}::int) n_r, generate_series(0, n_r) c_r,
                 generate_series(0, ${grid}::int) n_p, generate_series(0, n_p) c_p`,
      ),
    );
    expect(rows.length).toBe(((grid + 1) * (grid + 2)) ** 2 / 4);
    const differing = rows.filter((row) => row.improvement !== expected(row));
    expect(differing.slice(0, 5)).toEqual([]);
  });

  test('equals the exact fraction for large counts, on both sides of the limit for doubles', async () => {
    const limit = 2 ** 26;
    const count = fc.oneof(
      fc.integer({ min: 1, max: 2_000 }),
      fc.integer({ min: limit - 50, max: limit + 50 }),
      fc.integer({ min: 1, max: 28 * 2_147_483_647 }),
    );
    const half = count.chain((n) => fc.tuple(fc.constant(n), fc.oneof(fc.constant(0), fc.constant(n), fc.integer({ min: 0, max: n }))));
    // Exactly ±0.0005, where doubles give 0.0004999999999999983: rounded away from zero.
    const boundaries: [[number, number], [number, number]][] = [
      [
        [4, 2],
        [136, 67],
      ],
      [
        [4, 2],
        [136, 69],
      ],
      [
        [1, 0],
        [200, 3],
      ],
    ];
    const cases = [...boundaries, ...fc.sample(fc.tuple(half, half), { numRuns: propertyRuns * 50, seed: 20261206 })];
    const values = cases.map(([[n_r, c_r], [n_p, c_p]]) => sql`(${n_r}::bigint, ${c_r}::bigint, ${n_p}::bigint, ${c_p}::bigint)`);
    const rows = await withSession(backend, (session) =>
      improvements(session, sql`select * from (values ${join(values)}) v(n_r, c_r, n_p, c_p)`),
    );
    expect(rows.length).toBe(cases.length);
    expect(rows.slice(0, 3).map((row) => row.improvement)).toEqual(['0.001', '-0.001', '-0.001']);
    expect(rows.filter((row) => row.improvement !== expected(row)).slice(0, 5)).toEqual([]);
  });
});
