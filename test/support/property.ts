/**
 * How many generated cases the property tests run against the database. Three sizes:
 * - the default, for `npm test`: enough to exercise every generator's shape on both backends
 *   while the whole suite stays within 5 minutes on a 2-core machine;
 * - nightly (TEST_NIGHTLY=1, `npm run test:nightly`, run once by CI after the suite): fifteen
 *   times the default, the depth that finds rare combinations (the kill and concurrency tests
 *   read `nightly` too, for more kills and races);
 * - PROPERTY_RUNS=N: exactly N (a bug hunt, or a mutation run with PROPERTY_NO_SHRINK=1).
 * Every test derives its counts from `propertyRuns` and its time limit from `propertyTimeout`,
 * so a bigger run never hits the default 300 s limit.
 */

const defaultRuns = 20;
const nightlyRuns = 300;

function fromEnvironment(): number {
  const explicit = process.env.PROPERTY_RUNS;
  if (explicit !== undefined && explicit !== '') {
    const n = Number(explicit);
    if (!Number.isInteger(n) || n < 1) throw new Error(`PROPERTY_RUNS must be a positive integer, not ${JSON.stringify(explicit)}`);
    return n;
  }
  return process.env.TEST_NIGHTLY === '1' ? nightlyRuns : defaultRuns;
}

/** The number of generated cases of the main properties (job = oracle, theta = oracle). */
export const propertyRuns = fromEnvironment();

/** Whether this is the nightly-sized run (TEST_NIGHTLY=1). */
export const nightly = process.env.TEST_NIGHTLY === '1';

/**
 * The time limit of a property test running `runs` cases that take up to `perRunMs` each on a
 * loaded machine (never below vitest's default of this suite, 300 s).
 */
export function propertyTimeout(runs: number, perRunMs: number): number {
  return Math.max(300_000, runs * perRunMs);
}
