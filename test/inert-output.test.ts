/**
 * Nothing the data says can act on the terminal: a student and a topic whose ids hold a screen
 * clear and a colour (ESC [2J ESC [31m), an OSC title sequence (ESC ]0;… BEL), BEL, DEL, C1
 * controls (U+0085, U+009B), line and paragraph separators (U+2028, U+2029), a CR LF, and the
 * bidirectional controls (U+202E, U+2066, U+2069, U+200F, U+061C) go through every text output —
 * the run's log (with DEBUG lines and a failed combination), backfill's progress, report
 * (checks, recent rows, runs), explain (header and terms), sql, an error message — on PGlite and
 * the server: each prints them written out (`\x1b[2J`, `\u202e`) and no such character raw. The
 * JSON outputs stay valid JSON that gives the ids back exactly, with those characters escaped,
 * and the HTML page holds none of them raw either.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { allBackends, withSession } from './support/backends.js';
import { runMain } from './support/cli.js';
import { attempt, loadAttempts, prepareSchema } from './support/data.js';
import { databaseName, registerRole, testTempDir } from './support/resources.js';
import { sql } from '../src/sql/tag.js';

const student = 'stu\u001b[2J\u001b[31m\u0007\u2028dent';
const topic = 'top\u001b]0;owned\u0007\u202eic\u0085\u2029\u2066x\u2069\u200f\u061c\u009b\u007f\r\nend';
/** What a terminal would act on: every C0 control but the newline that ends a line, DEL, C1, separators, bidi controls. */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const raw = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;
/** The ids as they must be printed. */
const shownStudent = 'stu\\x1b[2J\\x1b[31m\\x07\\u2028dent';
const shownTopic = 'top\\x1b]0;owned\\x07\\u202eic\\x85\\u2029\\u2066x\\u2069\\u200f\\u061c\\x9b\\x7f\\r\\nend';

function expectInert(output: string, what: string): void {
  const found = raw.exec(output);
  expect(found, `${what} prints U+${found?.[0].codePointAt(0)?.toString(16).padStart(4, '0')} raw`).toBeNull();
}

const backends = await allBackends('inert_output');

describe.each(backends)('hostile ids in every output ($name)', (backend) => {
  const env: Record<string, string> = { DATABASE_URL: backend.url, AGG_TIMEZONE: 'UTC', AGG_LOOKBACK_DAYS: '2' };
  const reader = `${databaseName('inert_output')}_reader`.slice(0, 63);
  let admin: pg.Client | undefined;

  beforeAll(async () => {
    await withSession(backend, async (session) => {
      await prepareSchema(session);
      await loadAttempts(session, [
        attempt(student, topic, '2025-03-02T10:00:00Z', 1200, true),
        attempt(student, topic, '2025-03-03T10:00:00Z', 900, false),
        attempt(student, 'plain', '2025-03-03T11:00:00Z', 700, true),
        attempt('other', topic, '2025-03-03T12:00:00Z', 666, true),
      ]);
      // A source that fails one combination, with an error that quotes its ids.
      await session.query(sql`create function afd_hostile_check(s text, t text, v int) returns int language plpgsql immutable as $$
        begin if v = 666 then raise exception 'bad row of % %', s, t; end if; return v; end $$`);
      await session.query(sql`create view failing as select student_id, topic_id, completed_at, correct,
        afd_hostile_check(student_id, topic_id, response_time_ms) as response_time_ms, hint_used from attempt`);
    });
    if (backend.name === 'postgres') {
      // sql switches a superuser's connection to a reader role: this file's own.
      admin = new pg.Client({ connectionString: backend.url });
      await admin.connect();
      await admin.query(`drop role if exists "${reader}"`);
      await admin.query(`create role "${reader}" nologin`);
      registerRole(reader);
      await admin.query(`grant select on all tables in schema public to "${reader}"`);
      env.AGG_SQL_ROLE = reader;
    }
  });
  afterAll(async () => {
    if (admin) {
      await admin.query(`drop owned by "${reader}"`);
      await admin.end();
    }
  });

  test('the run log: DEBUG lines, a failed combination, the summary', async () => {
    const failed = await runMain(['--date', '2025-03-03'], { ...env, AGG_SOURCE: 'failing', DEBUG: 'true' });
    expect(failed.code, failed.stderr).toBe(1);
    expectInert(failed.stdout + failed.stderr, 'the text log');
    expect(failed.stderr).toContain(`[ERROR] user=other topic=${shownTopic} date=2025-03-03 error=bad row of other ${shownTopic}`);
    expect(failed.stderr).toContain(`[DEBUG] user=${shownStudent} topic=${shownTopic} date=2025-03-03`);

    const json = await runMain(['--date', '2025-03-03'], { ...env, AGG_SOURCE: 'failing', LOG_FORMAT: 'json' });
    expectInert(json.stderr, 'the JSON log');
    const records = json.stderr
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(records.find((r) => r.event === 'combination_failed')).toMatchObject({ user_id: 'other', topic_id: topic });

    const ok = await runMain(['--date', '2025-03-03'], env);
    expect(ok.code, ok.stderr).toBe(0);
  });

  test('backfill progress lines', async () => {
    const result = await runMain(['backfill', '--from', '2025-03-01', '--to', '2025-03-03', '--progress-interval', '0'], env);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/Backfill progress: 3\/3 days/);
    expectInert(result.stdout + result.stderr, 'backfill');
  });

  test('report: checks, recent rows, runs; --json and --html', async () => {
    // The last run failed one combination and recorded the error that quotes the topic.
    expect((await runMain(['--date', '2025-03-03'], { ...env, AGG_SOURCE: 'failing' })).code).toBe(1);
    const text = await runMain(['report', '--date', '2025-03-03', '--days', '3', '--width', '400'], env);
    expectInert(text.stdout + text.stderr, 'report');
    expect(text.stdout).toContain(shownStudent);
    expect(text.stdout).toContain(shownTopic);
    const checks = text.stdout.slice(text.stdout.indexOf('Checks'), text.stdout.indexOf('Coverage per day'));
    expect(checks).toContain(`failed: user=other topic=${shownTopic} date=2025-03-03`);

    const html = join(testTempDir('inert-report'), 'report.html');
    const json = await runMain(['report', '--date', '2025-03-03', '--days', '3', '--json', '--html', html], env);
    expectInert(json.stdout, 'report --json');
    expectInert(readFileSync(html, 'utf8'), 'report --html');
    const report = JSON.parse(json.stdout) as { recent_rows: { user_id: string; topic_id: string }[] };
    expect(report.recent_rows.map((r) => [r.user_id, r.topic_id])).toContainEqual([student, topic]);
    // Restore a clean last run for the other tests.
    expect((await runMain(['--date', '2025-03-03'], env)).code).toBe(0);
  });

  test('explain: header and terms; --json', async () => {
    const text = await runMain(['explain', '--user', student, '--topic', topic, '--date', '2025-03-03'], env);
    expect(text.code, text.stderr).toBe(0);
    expectInert(text.stdout + text.stderr, 'explain');
    expect(text.stdout.split('\n')[0]).toBe(`explain user=${shownStudent} topic=${shownTopic} date=2025-03-03 (AGG_TIMEZONE=UTC)`);

    const json = await runMain(['explain', '--user', student, '--topic', topic, '--date', '2025-03-03', '--json'], env);
    expectInert(json.stdout, 'explain --json');
    expect(JSON.parse(json.stdout)).toMatchObject({ user_id: student, topic_id: topic });
  });

  test('sql: values and column names; --json; an error message that quotes a name', async () => {
    const text = await runMain(
      ['sql', `select user_id, topic_id as "${topic.replace(/"/g, '')}" from features_topic_daily order by 1, 2`],
      env,
    );
    expect(text.code, text.stderr).toBe(0);
    expectInert(text.stdout + text.stderr, 'sql');
    expect(text.stdout).toContain(shownStudent);
    expect(text.stdout.split('\n')[0]).toMatch(new RegExp(`^user_id\\s+${shownTopic.replace(/[\\[\]()^$.*+?{}|]/g, '\\$&')}$`));

    const json = await runMain(['sql', '--json', 'select user_id, topic_id from features_topic_daily order by 1, 2'], env);
    expectInert(json.stdout, 'sql --json');
    expect(JSON.parse(json.stdout)).toContainEqual({ user_id: student, topic_id: topic });

    const error = await runMain(['sql', `select * from "${student}"`], env);
    expect(error.code).toBe(2);
    expectInert(error.stdout + error.stderr, 'an error message');
    expect(error.stderr).toContain(`relation "${shownStudent}" does not exist`);
  });
});
