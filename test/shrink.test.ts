/**
 * The shrink guard (SPEC §7): a half-broken source (one student left, the last two days
 * missing) is refused by the real run and the dry run alike, with nothing written; an
 * ordinary correction (one topic of ten removed) goes through; --allow-shrink lets a
 * deliberate shrink through; the empty-source guard is its special case.
 */
import { describe, expect, test } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { JobError } from '../src/errors.js';
import { runDaily, type RunOptions } from '../src/pipeline/daily.js';
import { createEventStream, type RunEvent } from '../src/observe/events.js';
import { allBackends, useSession } from './support/backends.js';
import { runMain } from './support/cli.js';
import { prepareSchema, readFeatures } from './support/data.js';
import { raw, sql } from '../src/sql/tag.js';

// 12 students × 10 topics × 10 days (2025-10-23 … 2025-11-01) × 2 attempts: 240 attempts a day.
const generate = `
  insert into attempt (student_id, topic_id, completed_at, correct, response_time_ms, hint_used)
  select 's' || s, 't' || t, date '2025-10-23' + d + interval '8 hours' + (s * 10 + t + i) * interval '1 minute',
         (s + t + d + i) % 3 > 0, 500 + (s * t * 7 + d + i) % 4000, (s + i) % 5 = 0
  from generate_series(1, 12) s, generate_series(1, 10) t, generate_series(0, 9) d, generate_series(1, 2) i`;

const views = `
  create view attempt_one_student as select * from attempt where student_id = 's1';
  create view attempt_two_days_missing as select * from attempt where completed_at < '2025-10-31T00:00:00Z';
  create view attempt_one_topic_missing as select * from attempt where topic_id <> 't1'`;

/** Runs the library and returns the outcome as the CLI would see it: exit code and message. */
async function outcome(run: () => Promise<unknown>): Promise<{ code: number; message: string | undefined }> {
  try {
    await run();
    return { code: 0, message: undefined };
  } catch (err) {
    if (err instanceof JobError) return { code: err.exitCode, message: err.message };
    throw err;
  }
}

const backends = await allBackends('shrink');

describe.each(backends)('the shrink guard ($name)', (backend) => {
  const t = useSession(backend, async (session) => {
    await prepareSchema(session);
    await session.query(raw(generate));
    await session.query(raw(views));
    await runDaily(session, loadConfig({}), { date: '2025-11-01' }, createEventStream());
  });

  const runs = (source: string, options: Partial<RunOptions> = {}, env: Record<string, string> = {}) => {
    const config = loadConfig({ AGG_SOURCE: source, ...env });
    const real = () => runDaily(t.session, config, { date: '2025-11-01', ...options }, createEventStream());
    const dry = () => runDaily(t.session, config, { date: '2025-11-01', dryRun: true, ...options }, createEventStream());
    return { real, dry };
  };

  test('one student left: every day is refused, by the real run and the dry run alike', async () => {
    const before = await readFeatures(t.session);
    expect(before.length).toBe(12 * 10 * 8);
    const { real, dry } = runs('attempt_one_student');
    const dryOutcome = await outcome(dry);
    const realOutcome = await outcome(real);
    expect(realOutcome).toEqual(dryOutcome);
    expect(realOutcome.code).toBe(1);
    expect(realOutcome.message).toMatch(
      /^the source "attempt_one_student" looks broken: 8 days of 2025-10-25..2025-11-01 lost more than 50% of their stored attempts \(2025-10-25: stored 240, now 20; .*2025-11-01: stored 240, now 20\); nothing was written\. .*--allow-shrink/,
    );
    expect(await readFeatures(t.session)).toEqual(before);
  });

  test('the last two days missing: those two days are named, nothing is written', async () => {
    const before = await readFeatures(t.session);
    const { real, dry } = runs('attempt_two_days_missing');
    const realOutcome = await outcome(real);
    expect(await outcome(dry)).toEqual(realOutcome);
    expect(realOutcome.code).toBe(1);
    expect(realOutcome.message).toMatch(
      /2 days of 2025-10-25..2025-11-01 .*\(2025-10-31: stored 240, now 0; 2025-11-01: stored 240, now 0\)/,
    );
    expect(await readFeatures(t.session)).toEqual(before);
    // A looser threshold does not change the verdict on days that lost everything…
    expect((await outcome(runs('attempt_two_days_missing', {}, { AGG_SHRINK_MAX_DROP: '0.9' }).real)).code).toBe(1);
    // …but days too small to judge are exempt.
    expect((await outcome(runs('attempt_two_days_missing', { dryRun: true }, { AGG_SHRINK_MIN_ATTEMPTS: '241' }).real)).code).toBe(0);
  });

  test('one topic of ten missing is a correction: the real run and the dry run both go through', async () => {
    const before = await readFeatures(t.session);
    const { real, dry } = runs('attempt_one_topic_missing');
    const events: RunEvent[] = [];
    const rehearsal = await runDaily(
      t.session,
      loadConfig({ AGG_SOURCE: 'attempt_one_topic_missing' }),
      { date: '2025-11-01', dryRun: true },
      createEventStream((e) => events.push(e)),
    );
    expect(rehearsal.deleted).toBe(12 * 8);
    expect((await outcome(dry)).code).toBe(0);
    const written = await real();
    expect(written.deleted).toBe(12 * 8);
    expect((await readFeatures(t.session)).length).toBe(before.length - 12 * 8);
    // Back to the full source: the topic returns.
    await runDaily(t.session, loadConfig({}), { date: '2025-11-01' }, createEventStream());
    expect((await readFeatures(t.session)).length).toBe(before.length);
  });

  test('a stricter threshold refuses the one-topic correction; --allow-shrink lets it through', async () => {
    const strict = { AGG_SHRINK_MAX_DROP: '0.05' };
    const refused = await outcome(runs('attempt_one_topic_missing', {}, strict).real);
    expect(refused.code).toBe(1);
    expect(refused.message).toMatch(/lost more than 5% of their stored attempts \(2025-10-25: stored 240, now 216;/);
    const allowed = await runs('attempt_one_topic_missing', { allowShrink: true }, strict).real();
    expect(allowed.deleted).toBe(12 * 8);
    await runDaily(t.session, loadConfig({}), { date: '2025-11-01' }, createEventStream());
  });

  test('an empty source is the special case: refused whatever the thresholds, in both runs', async () => {
    await t.session.query(sql`create or replace view attempt_empty as select * from attempt where false`);
    const tiny = { AGG_SHRINK_MIN_ATTEMPTS: '100000' };
    const { real, dry } = runs('attempt_empty', {}, tiny);
    const realOutcome = await outcome(real);
    expect(await outcome(dry)).toEqual(realOutcome);
    expect(realOutcome.code).toBe(1);
    expect(realOutcome.message).toMatch(
      /returned no attempts for 2025-10-25..2025-11-01, but features_topic_daily holds 960 rows there; nothing was deleted/,
    );
  });
});

describe.each(backends)('the shrink guard from the command line ($name)', (backend) => {
  test('exit 1 for the real run and the dry run, naming the days; --allow-shrink writes', async () => {
    const env = { DATABASE_URL: backend.url, AGG_SOURCE: 'attempt_two_days_missing' };
    const dry = await runMain(['--date', '2025-11-01', '--dry-run'], env);
    const real = await runMain(['--date', '2025-11-01'], env);
    expect(dry.code).toBe(1);
    expect(real.code).toBe(1);
    const refusal = (lines: string[]) => lines.find((l) => l.startsWith('[ERROR]'));
    expect(refusal(real.lines)).toMatch(
      /^\[ERROR\] the source "attempt_two_days_missing" looks broken: 2 days .*2025-10-31: stored 240, now 0; 2025-11-01: stored 240, now 0/,
    );
    expect(refusal(dry.lines)).toEqual(refusal(real.lines));
    const allowed = await runMain(['--date', '2025-11-01', '--allow-shrink'], env);
    expect(allowed.code).toBe(0);
    expect(allowed.stderr).toMatch(/deleted=240/);
  });
});
