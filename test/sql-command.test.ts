/**
 * `sql "select …"` from the command line on PGlite and the server: an aligned table, NULLs, JSON,
 * an empty result with its header; statements that write, several statements and a way out of
 * the read-only transaction are refused with exit 2 and nothing changes.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { allBackends, withSession } from './support/backends.js';
import { runMain } from './support/cli.js';
import { loadAttempts, prepareSchema } from './support/data.js';
import { history } from './support/history.js';

const backends = await allBackends('sql_command');

describe.each(backends)('sql ($name)', (backend) => {
  const env = { DATABASE_URL: backend.url };
  const attempts = history({ first: '2025-03-01', days: 3, seed: 2 });
  const attemptCount = () =>
    withSession(backend, async (s) => (await s.query<{ n: number }>('select count(*)::int as n from attempt')).rows[0]!.n);

  beforeAll(async () => {
    await withSession(backend, async (session) => {
      await prepareSchema(session);
      await loadAttempts(session, attempts);
    });
    expect(await attemptCount()).toBe(attempts.length);
  });

  test("the README's checks: an aligned table with the row count", async () => {
    const result = await runMain(
      [
        'sql',
        "select student_id, count(*)::int as attempts, null::text as nothing from attempt where student_id in ('s1', 's2') group by 1 order by 1",
      ],
      env,
    );
    expect(result.code).toBe(0);
    const truth = await withSession(
      backend,
      async (s) => (await s.query<{ n: number }>("select count(*)::int as n from attempt where student_id = 's1'")).rows[0]!.n,
    );
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^student_id\s+attempts\s+nothing$/);
    expect(lines[1]).toMatch(/^-{10} {2}-{8} {2}-{7}$/);
    expect(lines[2]).toMatch(new RegExp(`^s1\\s+${truth}\\s+NULL$`));
    expect(lines[2]!.indexOf(String(truth))).toBe(lines[0]!.indexOf('attempts'));
    expect(lines.at(-1)).toBe('(2 rows)');
  });

  test('--json, and an empty result keeps its header', async () => {
    const json = await runMain(['sql', '--json', 'select 1 as one, 2 as one'], env);
    expect(JSON.parse(json.stdout)).toEqual([{ one: 1, one_2: 2 }]);
    const empty = await runMain(['sql', 'select user_id, date from features_topic_daily where false'], env);
    expect(empty.stdout.split('\n').slice(0, 3)).toEqual(['user_id  date', '-------  ----', '(0 rows)']);
  });

  test.each([
    ['delete from attempt', /sql runs read-only statements only: cannot execute DELETE in a read-only transaction/],
    ['select 1; delete from attempt', /sql runs one statement at a time/],
    ['set transaction read write', /sql runs read-only statements only/],
    ['create table x (a int)', /sql runs read-only statements only/],
    ['select nosuch from attempt', /sql: column "nosuch" does not exist \(SQLSTATE 42703\)/],
    ['  ', /sql needs a statement/],
    ['select $1', /sql takes no parameters/],
  ])('%j is refused with exit 2', async (statement, message) => {
    const result = await runMain(['sql', statement], env);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    // Nothing changed: every attempt is still there.
    expect(await attemptCount()).toBe(attempts.length);
  });
});
