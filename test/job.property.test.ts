/**
 * The job against the independent oracle on generated data, on PGlite and the server: every
 * row of the window must equal the oracle's, after a first run and after the source changed
 * (late rows, deleted rows), and a re-run with no change must rewrite nothing.
 */
import fc from 'fast-check';
import { describe, expect, test, vi } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { runDaily } from '../src/pipeline/daily.js';
import { createEventStream, type RunEvent } from '../src/observe/events.js';
import { oracle } from './oracle/oracle.js';
import { scenarioArbitrary, byKey, type Scenario } from './support/arbitraries.js';
import { allBackends, useSession } from './support/backends.js';
import { propertyRuns, propertyTimeout } from './support/property.js';
import { loadAttempts, prepareSchema, readFeatures } from './support/data.js';
import { sql } from '../src/sql/tag.js';

const backends = await allBackends('job_property');
const runs = propertyRuns;
// More runs (PROPERTY_RUNS, TEST_NIGHTLY=1) get a time limit to match.
vi.setConfig({ testTimeout: propertyTimeout(runs, 3_000) });

describe.each(backends)('job = oracle on generated data ($name)', (backend) => {
  const t = useSession(backend, prepareSchema);

  async function runAndCompare(scenario: Scenario, attempts: Scenario['attempts']) {
    const config = loadConfig({ AGG_TIMEZONE: scenario.timezone, AGG_LOOKBACK_DAYS: String(scenario.lookbackDays) });
    await loadAttempts(t.session, attempts);
    const events: RunEvent[] = [];
    const result = await runDaily(
      t.session,
      config,
      { date: scenario.anchor, allowEmptySource: true },
      createEventStream((e) => events.push(e)),
    );
    const expected = oracle(attempts, {
      since: result.window.since,
      anchor: scenario.anchor,
      timezone: scenario.timezone,
      includeTheta: false,
      improvementMode: 'accuracy',
    });
    expect(byKey(await readFeatures(t.session))).toEqual(byKey(expected));
    expect(result.combinations).toBe(expected.length);
    return result;
  }

  test(`${runs} scenarios: first run, re-run, changed source`, async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArbitrary, fc.array(fc.nat(), { maxLength: 10 }), async (scenario, dropped) => {
        await t.session.query(sql`truncate features_topic_daily; truncate aggregate_features_runs`);
        const first = await runAndCompare(scenario, scenario.attempts);
        expect(first.inserted).toBe(first.combinations);

        const again = await runAndCompare(scenario, scenario.attempts);
        expect(again).toMatchObject({ inserted: 0, updated: 0, deleted: 0, unchanged: first.combinations });

        // Upstream corrections: some attempts deleted, the rest shifted by a day (late data).
        const changed = scenario.attempts
          .filter((_, i) => !dropped.includes(i))
          .map((a, i) => (i % 3 === 0 ? { ...a, completed_at: new Date(Date.parse(a.completed_at) - 86_400_000).toISOString() } : a));
        await runAndCompare(scenario, changed);
      }),
      { numRuns: runs },
    );
  });
});
