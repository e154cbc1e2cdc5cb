/**
 * The source contract (SPEC §7): a source whose completed_at is a `timestamp without time
 * zone` is refused (exit 2) unless AGG_SOURCE_TIMEZONE names its zone, and then gives the
 * same rows as the timestamptz source; columns of the wrong type are refused naming them.
 */
import { describe, expect, test } from 'vitest';
import { createEventStream } from '../src/observe/events.js';
import { loadConfig } from '../src/config/index.js';
import { ConfigError } from '../src/errors.js';
import { runDaily } from '../src/pipeline/daily.js';
import { runVerify } from '../src/pipeline/verify.js';
import { allBackends, useSession } from './support/backends.js';
import { runMain } from './support/cli.js';
import { prepareSchema, readFeatures } from './support/data.js';
import { raw, sql } from '../src/sql/tag.js';

// Attempts around local midnights in New York, so a wrong zone moves them to other days.
const generate = `
  insert into attempt (student_id, topic_id, completed_at, correct, response_time_ms, hint_used)
  select 's' || s, 't' || (s + d) % 3, timestamptz '2025-10-20T03:30:00Z' + d * interval '1 day' + i * interval '50 minutes',
         (s + d + i) % 3 > 0, 300 + (s * 37 + d * 11 + i) % 2000, i % 4 = 0
  from generate_series(1, 6) s, generate_series(0, 12) d, generate_series(0, 3) i`;

const views = `
  create view attempt_local as
    select student_id, topic_id, (completed_at at time zone 'America/New_York') as completed_at, correct, response_time_ms, hint_used
    from attempt;
  create view attempt_text_correct as
    select student_id, topic_id, completed_at, correct::text as correct, response_time_ms, hint_used from attempt;
  create view attempt_numeric_time as
    select student_id, topic_id, completed_at, correct, response_time_ms::numeric as response_time_ms, hint_used from attempt;
  create view attempt_no_hint as
    select student_id, topic_id, completed_at, correct, response_time_ms from attempt;
  create view attempt_uuid_ids as
    select md5(student_id)::uuid as student_id, topic_id, completed_at, correct, response_time_ms::smallint as response_time_ms, hint_used
    from attempt;
  create view attempt_uuid_text as
    select md5(student_id)::uuid::text as student_id, topic_id, completed_at, correct, response_time_ms, hint_used from attempt;
  create view attempt_integer_ids as
    select (substr(student_id, 2)::bigint * 1000003) as student_id, substr(topic_id, 2)::int as topic_id,
           completed_at, correct, response_time_ms, hint_used
    from attempt;
  create view attempt_integer_text as
    select (substr(student_id, 2)::bigint * 1000003)::text as student_id, substr(topic_id, 2)::int::text as topic_id,
           completed_at, correct, response_time_ms, hint_used
    from attempt;
  create view attempt_char_ids as
    select (student_id || '  ')::char(8) as student_id, topic_id::varchar(10) as topic_id, completed_at, correct, response_time_ms, hint_used
    from attempt`;

const backends = await allBackends('source_contract');

describe.each(backends)('the source contract ($name)', (backend) => {
  const t = useSession(backend, async (session) => {
    await prepareSchema(session);
    await session.query(raw(generate));
    await session.query(raw(views));
  });
  const zone = { AGG_TIMEZONE: 'America/New_York' };

  const refusal = async (env: Record<string, string>) => {
    try {
      await runDaily(t.session, loadConfig(env), { date: '2025-11-01', dryRun: true }, createEventStream());
    } catch (err) {
      if (err instanceof ConfigError) return err.message;
      throw err;
    }
    return undefined;
  };

  test('a timestamp completed_at is refused with exit 2, saying what to do', async () => {
    expect(await refusal({ ...zone, AGG_SOURCE: 'attempt_local' })).toMatch(
      /^the attempts source "attempt_local" has completed_at of type timestamp without time zone, which names no instant without a zone .*: make it timestamptz in a view .* or set AGG_SOURCE_TIMEZONE to the zone its values are written in$/,
    );
  });

  test('with AGG_SOURCE_TIMEZONE it gives exactly the rows of the timestamptz source', async () => {
    await t.session.query(sql`truncate features_topic_daily`);
    await runDaily(t.session, loadConfig(zone), { date: '2025-11-01' }, createEventStream());
    const expected = await readFeatures(t.session);
    expect(expected.length).toBeGreaterThan(0);
    const config = loadConfig({ ...zone, AGG_SOURCE: 'attempt_local', AGG_SOURCE_TIMEZONE: 'America/New_York' });
    const result = await runDaily(t.session, config, { date: '2025-11-01' }, createEventStream());
    expect(result.inserted + result.updated + result.deleted).toBe(0);
    expect(result.unchanged).toBe(expected.length);
    expect((await runVerify(t.session, config, { date: '2025-11-01' }, createEventStream())).drift).toBe(false);
    // The wrong zone is a different set of days: verify sees the drift.
    const wrong = loadConfig({ ...zone, AGG_SOURCE: 'attempt_local', AGG_SOURCE_TIMEZONE: 'UTC' });
    expect((await runVerify(t.session, wrong, { date: '2025-11-01' }, createEventStream())).drift).toBe(true);
  });

  test('columns of the wrong type, or missing, are named', async () => {
    expect(await refusal({ AGG_SOURCE: 'attempt_text_correct' })).toMatch(
      /^the attempts source "attempt_text_correct" has correct of type text, but it must be boolean: cast it in a view \(correct::boolean as correct\)/,
    );
    expect(await refusal({ AGG_SOURCE: 'attempt_numeric_time' })).toMatch(
      /has response_time_ms of type numeric, but it must be an integer type/,
    );
    expect(await refusal({ AGG_SOURCE: 'attempt_no_hint' })).toMatch(
      /^the attempts source "attempt_no_hint" lacks the column hint_used: it needs/,
    );
    // uuid ids and a smallint response time are within the contract (in the zone the stored rows were computed in).
    expect(await refusal({ ...zone, AGG_SOURCE: 'attempt_uuid_ids' })).toBeUndefined();
  });

  const rowsOf = async (source: string, shards = 1) => {
    await t.session.query(sql`truncate features_topic_daily, aggregate_features_runs`);
    const config = loadConfig({ AGG_SOURCE: source, AGG_LOOKBACK_DAYS: '12' });
    for (let index = 1; index <= shards; index++)
      await runDaily(t.session, config, { date: '2025-11-01', shard: { index, count: shards } }, createEventStream());
    return readFeatures(t.session);
  };

  test('uuid and integer ids, grouped in their own type, give exactly the rows of their text form', async () => {
    const uuidRows = await rowsOf('attempt_uuid_text');
    expect(uuidRows.length).toBeGreaterThan(0);
    expect(await rowsOf('attempt_uuid_ids')).toEqual(uuidRows);
    expect(await rowsOf('attempt_uuid_ids', 2)).toEqual(uuidRows);
    const integerRows = await rowsOf('attempt_integer_text');
    expect(integerRows.length).toBe(uuidRows.length);
    expect(await rowsOf('attempt_integer_ids')).toEqual(integerRows);
    expect(await rowsOf('attempt_integer_ids', 3)).toEqual(integerRows);
    // char(n) is compared as its text (trailing blanks dropped), varchar as it is.
    expect((await rowsOf('attempt_char_ids')).map((r) => r.user_id)).toEqual((await rowsOf('attempt')).map((r) => r.user_id));
  });
});

describe.each(backends)('the source contract from the command line ($name)', (backend) => {
  test('the CLI exits 2 with one line', async () => {
    const result = await runMain(['--date', '2025-11-01'], { DATABASE_URL: backend.url, AGG_SOURCE: 'attempt_local' });
    expect(result.code).toBe(2);
    expect(result.lines).toEqual([
      expect.stringMatching(/^\[ERROR\] the attempts source "attempt_local" has completed_at of type timestamp without time zone/),
    ]);
  });
});
