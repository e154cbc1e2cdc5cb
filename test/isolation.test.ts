/**
 * Isolation with a bound (SPEC §7): a view that raises computing topic_id fails only that
 * student's combinations that read the bad row, and `failed` equals the rows left
 * unrefreshed; one that raises computing student_id cannot attribute the row to anyone, so
 * every combination of its topic (of every topic, when that cannot be read) that reads its day
 * fails; one that raises on every row of a large source ends quickly, saying the
 * source is broken wholesale, with nothing written.
 */
import { describe, expect, test } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { runDaily } from '../src/pipeline/daily.js';
import { createEventStream, type RunEvent } from '../src/observe/events.js';
import { oracle, type OracleAttempt } from './oracle/oracle.js';
import { byKey } from './support/arbitraries.js';
import { allBackends, useSession } from './support/backends.js';
import { attempt, loadAttempts, prepareSchema, readFeatures } from './support/data.js';
import { raw, sql } from '../src/sql/tag.js';

const attempts: OracleAttempt[] = [
  attempt('u1', 'algebra', '2025-10-20T10:00:00Z', 1000),
  attempt('u1', 'algebra', '2025-10-30T10:00:00Z', 1200, false),
  attempt('u1', 'geometry', '2025-10-31T10:00:00Z', 900),
  attempt('u2', 'algebra', '2025-10-29T10:00:00Z', 800),
  attempt('u2', 'algebra', '2025-10-30T10:30:00Z', 666), // the bad row
  attempt('u2', 'algebra', '2025-10-31T10:00:00Z', 700, false),
  attempt('u2', 'geometry', '2025-10-30T10:00:00Z', 500),
  attempt('u2', 'geometry', '2025-10-26T10:00:00Z', 500),
  attempt('u3', 'algebra', '2025-10-30T11:00:00Z', 400),
];

const views = `
  create or replace function afd_bad_text(v text, rt int) returns text language plpgsql immutable as $$
  begin
    if rt = 666 then raise exception 'malformed key %', v; end if;
    return v;
  end $$;
  create or replace function afd_always(v int) returns int language plpgsql immutable as $$
  begin
    raise exception 'cannot decode response_time_ms %', v;
  end $$;
  create or replace view attempt_bad_topic as
    select student_id, afd_bad_text(topic_id, response_time_ms) as topic_id, completed_at, correct, response_time_ms, hint_used from attempt;
  create or replace view attempt_bad_student as
    select afd_bad_text(student_id, response_time_ms) as student_id, topic_id, completed_at, correct, response_time_ms, hint_used from attempt;
  create or replace function afd_always_text(v text) returns text language plpgsql immutable as $$
  begin
    raise exception 'cannot decode student %', v;
  end $$;
  create or replace view big_unreadable as
    select afd_always_text(student_id) as student_id, topic_id, completed_at, correct, response_time_ms, hint_used from big;
  create or replace view big_broken as
    select student_id, topic_id, completed_at, correct, afd_always(response_time_ms) as response_time_ms, hint_used from big`;

const window = { since: '2025-10-25', anchor: '2025-11-01', timezone: 'UTC', includeTheta: false, improvementMode: 'accuracy' } as const;

const backends = await allBackends('isolation');

describe.each(backends)('isolation with a bound ($name)', (backend) => {
  const t = useSession(backend, async (session) => {
    await prepareSchema(session);
    await loadAttempts(session, attempts);
    await session.query(sql`create table big (like attempt)`);
    await session.query(raw(views));
  });

  test('a view raising on topic_id fails that student’s combinations that read the row; failed = rows left unrefreshed', async () => {
    await t.session.query(sql`truncate features_topic_daily`);
    await runDaily(t.session, loadConfig({}), { date: '2025-11-01' }, createEventStream());
    // Mark every stored row, so the ones left unrefreshed can be counted.
    await t.session.query(sql`update features_topic_daily set hints = hints + 1000`);
    const events: RunEvent[] = [];
    const result = await runDaily(
      t.session,
      loadConfig({ AGG_SOURCE: 'attempt_bad_topic' }),
      { date: '2025-11-01' },
      createEventStream((e) => events.push(e)),
    );
    const failed = events.filter((e) => e.type === 'combination_failed').map((e) => `${e.userId}/${e.topicId}/${e.date}`);
    // 2025-10-30 cannot list its topics: u2's stored rows of that day fail. 2025-10-31 reads
    // the bad row for the improvement index; 2025-10-29 and 2025-10-26 do not.
    expect(failed.sort()).toEqual(['u2/algebra/2025-10-30', 'u2/algebra/2025-10-31', 'u2/geometry/2025-10-30']);
    expect(result.failed).toBe(3);
    const stored = await readFeatures(t.session);
    expect(stored.filter((r) => r.hints >= 1000).length).toBe(result.failed);
    const isFailed = (r: { user_id: string; topic_id: string; date: string }) => failed.includes(`${r.user_id}/${r.topic_id}/${r.date}`);
    expect(byKey(stored.filter((r) => !isFailed(r)))).toEqual(byKey(oracle(attempts, window).filter((r) => !isFailed(r))));
  });

  test('a view raising on student_id: the row could be anyone’s, so every combination of its topic that reads its day fails, the rest is written', async () => {
    await t.session.query(sql`truncate features_topic_daily`);
    await runDaily(t.session, loadConfig({}), { date: '2025-11-01' }, createEventStream());
    await t.session.query(sql`update features_topic_daily set hints = hints + 1000`);
    const events: RunEvent[] = [];
    const result = await runDaily(
      t.session,
      loadConfig({ AGG_SOURCE: 'attempt_bad_student' }),
      { date: '2025-11-01' },
      createEventStream((e) => events.push(e)),
    );
    const failures = events.filter((e) => e.type === 'combination_failed');
    const failed = failures.map((e) => `${e.userId}/${e.topicId}/${e.date}`);
    // The bad row is an algebra attempt of 2025-10-30: algebra on that day and the days after
    // it in the window (their improvement reads it), for every student, stays as stored.
    // The unknown student's own combination is the one of user `*`.
    expect(failed.sort()).toEqual([
      '*/algebra/2025-10-30',
      'u1/algebra/2025-10-30',
      'u2/algebra/2025-10-30',
      'u2/algebra/2025-10-31',
      'u3/algebra/2025-10-30',
    ]);
    for (const f of failures) {
      expect(f.error).toMatch(
        /^the attempt at 2025-10-30 10:30:00\+00 in topic algebra cannot be attributed to a student \(malformed key u2\)$/,
      );
    }
    expect(result.failed).toBe(5);
    const stored = await readFeatures(t.session);
    const marked = stored.filter((r) => r.hints >= 1000).map((r) => `${r.user_id}/${r.topic_id}/${r.date}`);
    expect(marked.sort()).toEqual(failed.filter((f) => !f.startsWith('*/')).sort());
    const isFailed = (r: { user_id: string; topic_id: string; date: string }) => failed.includes(`${r.user_id}/${r.topic_id}/${r.date}`);
    expect(byKey(stored.filter((r) => !isFailed(r)))).toEqual(byKey(oracle(attempts, window).filter((r) => !isFailed(r))));
  });

  test('a view raising on student_id of a row whose topic cannot be read either fails every topic of that day', async () => {
    await t.session.query(sql`create or replace view attempt_bad_both as
      select afd_bad_text(student_id, response_time_ms) as student_id, afd_bad_text(topic_id, response_time_ms) as topic_id,
             completed_at, correct, response_time_ms, hint_used from attempt`);
    await t.session.query(sql`truncate features_topic_daily`);
    const events: RunEvent[] = [];
    const result = await runDaily(
      t.session,
      loadConfig({ AGG_SOURCE: 'attempt_bad_both' }),
      { date: '2025-11-01' },
      createEventStream((e) => events.push(e)),
    );
    const failed = events.filter((e) => e.type === 'combination_failed').map((e) => `${e.userId}/${e.topicId}/${e.date}`);
    // Nothing stored yet: the computed combinations of 2025-10-30 … 11-01 that read that day.
    expect(failed.sort()).toEqual([
      '*/*/2025-10-30',
      'u1/algebra/2025-10-30',
      'u1/geometry/2025-10-31',
      'u2/algebra/2025-10-31',
      'u2/geometry/2025-10-30',
      'u3/algebra/2025-10-30',
    ]);
    expect(result.failed).toBe(6);
    const stored = await readFeatures(t.session);
    const isFailed = (r: { user_id: string; topic_id: string; date: string }) => failed.includes(`${r.user_id}/${r.topic_id}/${r.date}`);
    expect(stored.some(isFailed)).toBe(false);
    expect(byKey(stored)).toEqual(
      byKey(oracle(attempts, window).filter((r) => !isFailed(r) && !(r.user_id === 'u2' && r.date === '2025-10-30'))),
    );
  });

  test('every row raising on a large source ends, bounded, as broken wholesale', async () => {
    const students = backend.name === 'postgres' ? 20_000 : 2_000;
    await t.session.query(
      sql`insert into big
       select 's' || s, 't' || (s + d) % 10, date '2025-10-25' + d + interval '7 hours' + (s % 600) * interval '1 minute',
              (s + d) % 3 > 0, 100 + (s * 7 + d) % 3000, false
       from generate_series(1, ${students}::int) s, generate_series(0, 7) d, generate_series(1, 8) i`,
    );
    await t.session.query(sql`analyze big`);
    const rows = (await t.session.query<{ n: number }>(sql`select count(*)::int as n from big`)).rows[0]!.n;
    await t.session.query(sql`truncate features_topic_daily`);
    let started = Date.now();
    await runDaily(t.session, loadConfig({ AGG_SOURCE: 'big' }), { date: '2025-11-01', dryRun: true }, createEventStream());
    const normalMs = Date.now() - started;
    started = Date.now();
    await expect(
      runDaily(t.session, loadConfig({ AGG_SOURCE: 'big_broken' }), { date: '2025-11-01' }, createEventStream()),
    ).rejects.toThrow(
      /^the source "big_broken" is broken wholesale: every one of the 16 students it probed \(spread over the window's \d+\) fails, so most of them do, e\.g\. cannot decode response_time_ms \d+; nothing of 2025-10-25..2025-11-01 was written/,
    );
    const brokenMs = Date.now() - started;
    console.log(`[${backend.name}] every row raising, ${rows} attempts: ${brokenMs} ms; a normal (dry) run: ${normalMs} ms`);
    expect(await readFeatures(t.session)).toEqual([]);
    started = Date.now();
    await expect(
      runDaily(t.session, loadConfig({ AGG_SOURCE: 'big_unreadable' }), { date: '2025-11-01' }, createEventStream()),
    ).rejects.toThrow(
      /^the source "big_unreadable" is broken wholesale: the student_id of every one of the 16 attempts it probed \(spread over the window\) cannot be read, e\.g\. cannot decode student s\d+; nothing of 2025-10-25..2025-11-01 was written/,
    );
    console.log(`[${backend.name}] every student_id raising, ${rows} attempts: ${Date.now() - started} ms`);
    expect(await readFeatures(t.session)).toEqual([]);
    // With fewer students than it probes, the narrowing runs and the time budget bounds it.
    await t.session.query(
      sql`create or replace view big_broken_few as select * from big_broken where student_id in ('s1', 's2', 's3', 's4')`,
    );
    await expect(
      runDaily(
        t.session,
        loadConfig({ AGG_SOURCE: 'big_broken_few', AGG_ISOLATION_BUDGET_MS: '0' }),
        { date: '2025-11-01' },
        createEventStream(),
      ),
    ).rejects.toThrow(/is broken wholesale: narrowing the failures down took longer than 0 ms \(AGG_ISOLATION_BUDGET_MS\)/);
  });
});
