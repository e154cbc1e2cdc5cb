/**
 * `sql "select …"` from the command line on PGlite and the server: an aligned table, NULLs, JSON,
 * an empty result with its header; statements that write, several statements and a way out of
 * the read-only transaction are refused with exit 2 and nothing changes. Every kind of statement
 * that is not one reading statement is refused before anything is sent (with a database that
 * does not answer, the exit is 2, not 4).
 *
 * On the server the tests connect as a superuser, the administrator's usual connection: `sql`
 * runs the statement as the reader role (AGG_SQL_ROLE, this file's own role here), so reading
 * and writing server files, running programs, importing a large object and signalling another
 * session all fail, a statement past AGG_SQL_TIMEOUT_MS is cancelled, and without a reader role
 * it refuses with exit 2.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { beforeAll, describe, expect, test } from 'vitest';
import { allBackends, withSession } from './support/backends.js';
import { runMain } from './support/cli.js';
import { loadAttempts, prepareSchema } from './support/data.js';
import { history } from './support/history.js';
import { databaseName, registerRole, testTempDir } from './support/resources.js';
import { sql } from '../src/sql/tag.js';

const backends = await allBackends('sql_command');

/** A reader role of this checkout (roles are cluster-wide), SELECT on the tables of `url`'s database (gone with it; the role is dropped at the file's end). */
async function createReader(url: string, name: string): Promise<void> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`drop role if exists "${name}"`);
    await admin.query(`create role "${name}" nologin`);
    registerRole(name);
    await admin.query(`grant select on all tables in schema public to "${name}"`);
  } finally {
    await admin.end();
  }
}

describe.each(backends)('sql ($name)', (backend) => {
  const reader = `${databaseName('sql_command')}_reader`;
  const env: Record<string, string> = { DATABASE_URL: backend.url, AGG_SQL_ROLE: reader };
  const attempts = history({ first: '2025-03-01', days: 3, seed: 2 });
  const attemptCount = () =>
    withSession(backend, async (s) => (await s.query<{ n: number }>(sql`select count(*)::int as n from attempt`)).rows[0]!.n);

  beforeAll(async () => {
    await withSession(backend, async (session) => {
      await prepareSchema(session);
      await loadAttempts(session, attempts);
    });
    if (backend.name === 'postgres') await createReader(backend.url, reader);
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
      async (s) => (await s.query<{ n: number }>(sql`select count(*)::int as n from attempt where student_id = 's1'`)).rows[0]!.n,
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
    ['delete from attempt', /sql runs read-only statements only: .* and "delete" is none; nothing was sent/],
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

// Refused before anything is sent: the database named does not even answer (exit 4 otherwise).
const nowhere = { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/nowhere', AGG_CONNECT_ATTEMPTS: '1' };
test.each([
  ["copy (select 1) to '/tmp/afd-never'", /"copy" is none/],
  ["copy (select 1) to program 'touch /tmp/afd-never'", /"copy" is none/],
  ['COPY attempt TO STDOUT', /"copy" is none/],
  ['update attempt set correct = false', /"update" is none/],
  ['explain analyze delete from attempt', /"delete" is none/],
  ['explain (analyze, format json) insert into attempt default values', /"insert" is none/],
  ['with gone as (delete from attempt returning *) select count(*) from gone', /DELETE writes/],
  ['with x as (select 1) insert into attempt select * from attempt', /INSERT writes/],
  ['select * into copy_of_attempt from attempt', /SELECT … INTO creates a table/],
  ['select * from attempt for update', /FOR UPDATE locks rows/],
  ['select * from attempt for key share', /FOR SHARE locks rows/],
  ['set role none', /"set" is none/],
  ['begin', /"begin" is none/],
  ['do $$ begin perform 1; end $$', /"do" is none/],
  ["select set_config('role', 'postgres', true)", /sql does not run set_config\(\)/],
  ["select \"set_config\"('role', 'postgres', true)", /sql does not run set_config\(\)/],
  ["select query_to_xml('select set_con' || 'fig(''role'', ''postgres'', true)', true, false, '')", /sql does not run query_to_xml\(\)/],
  ["select ts_stat('select 1')", /sql does not run ts_stat\(\)/],
  ["select 'x' as set_config_text", /sql does not run set_config\(\)/],
  ["select U&\"\\0073et_config\"('role', 'postgres', true)", /Unicode escapes/],
  ['select 1; select 2', /one statement at a time/],
  ["select 'unterminated", /ends inside a quoted string/],
  ['select 1 /* unterminated', /ends inside a \/\* comment/],
  ['select $1', /takes no parameters/],
])('%j is refused with exit 2 before anything is sent', async (statement, message) => {
  const result = await runMain(['sql', statement], nowhere);
  expect(result.code, result.stderr).toBe(2);
  expect(result.stderr).toMatch(message);
});

test.each([
  ['select \'insert into x; update -- delete\' as text, $$copy ; into$$ as body, "update" from (select 1 as "update") t -- delete; copy'],
  ['(select 1) union all (values (2))'],
  ['table attempt'],
  ['explain (costs off) select 1'],
  ["select E'it\\'s; delete' as quoted"],
])('%j passes the check (writing words inside strings, names and comments do not count)', async (statement) => {
  const result = await runMain(['sql', statement], nowhere);
  // It went on to connect: the database does not answer.
  expect(result.code, result.stderr).toBe(4);
});

const server = backends.find((b) => b.name === 'postgres');

describe.runIf(server)('sql on a superuser connection to the server', () => {
  const backend = server!;
  const reader = `${databaseName('sql_command')}_reader`;
  const env = { DATABASE_URL: backend.url, AGG_SQL_ROLE: reader, AGG_SQL_TIMEOUT_MS: '300' };
  const dir = testTempDir('sql-side-effects');

  test('runs as the reader role, and still answers ordinary queries', async () => {
    const result = await runMain(
      ['sql', '--json', 'select current_user as who, session_user as login, count(*)::int as n from attempt'],
      env,
    );
    expect(result.code, result.stderr).toBe(0);
    const [row] = JSON.parse(result.stdout) as { who: string; login: string; n: number }[];
    expect(row!.who).toBe(reader);
    expect(row!.n).toBeGreaterThan(0);
  });

  test.each([
    ["select pg_read_file('/etc/hostname')", /permission denied for function pg_read_file/],
    ["select pg_ls_dir('.')", /permission denied for function pg_ls_dir/],
    ["select lo_import('/etc/passwd')", /permission denied for function lo_import/],
    ["select pg_stat_file('/etc/passwd')", /permission denied for function pg_stat_file/],
  ])('%j fails under the reader role (exit 2)', async (statement, message) => {
    const result = await runMain(['sql', statement], env);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stdout).toBe('');
  });

  test('COPY to a file and to a program writes nothing (refused before the server)', async () => {
    const file = join(dir, 'copied');
    const ran = join(dir, 'ran');
    for (const statement of [`copy (select 1) to '${file}'`, `copy (select 1) to program 'touch ${ran}'`]) {
      const result = await runMain(['sql', statement], env);
      expect(result.code, result.stderr).toBe(2);
    }
    expect(existsSync(file)).toBe(false);
    expect(existsSync(ran)).toBe(false);
  });

  test('another session cannot be terminated or cancelled', async () => {
    const other = new pg.Client({ connectionString: backend.url, application_name: 'afd-sql-victim' });
    await other.connect();
    try {
      const pid = (await other.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
      for (const fn of ['pg_terminate_backend', 'pg_cancel_backend']) {
        const result = await runMain(['sql', `select ${fn}(${pid})`], env);
        expect(result.code, result.stderr).toBe(2);
        expect(result.stderr).toMatch(/permission denied to (terminate|cancel) process|must be a (superuser|member)/);
      }
      expect((await other.query<{ one: number }>('select 1 as one')).rows[0]!.one).toBe(1);
    } finally {
      await other.end();
    }
  });

  test('a statement past AGG_SQL_TIMEOUT_MS is cancelled (exit 2)', async () => {
    const started = Date.now();
    const result = await runMain(['sql', 'select pg_sleep(60)'], env);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toMatch(/ran longer than AGG_SQL_TIMEOUT_MS=300 and was cancelled/);
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  test('without a reader role, or with a privileged one, it refuses (exit 2) and says how to set one up', async () => {
    const missing = await runMain(['sql', 'select 1'], { ...env, AGG_SQL_ROLE: `${reader}_missing` });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/is a superuser|can read or write server files/);
    expect(missing.stderr).toMatch(/which does not exist: create it with sql\/roles\.sql/);
    const superuser = (await runMain(['sql', '--json', 'select current_user as me'], env)).stdout;
    expect(superuser).toContain(reader);
    const privileged = await runMain(['sql', 'select 1'], { ...env, AGG_SQL_ROLE: 'pg_read_server_files' });
    expect(privileged.code).toBe(2);
    expect(privileged.stderr).toMatch(/which can do the same/);
  });
});
