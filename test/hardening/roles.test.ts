/**
 * Least privilege (sql/roles.sql, docs/security.md): on a fresh server database, migrated as
 * the owner, the script creates a job role and a dry-run role. The job runs under the job role;
 * the dry run under the dry-run role, also with default_transaction_read_only=on, and without
 * TEMP (PUBLIC's TEMP and CONNECT are revoked here first, so only the script's grants count).
 * The dry-run role's normal run fails clearly, and the job role cannot create tables or touch
 * anything beyond its grants.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { oracle } from '../oracle/oracle.js';
import { serverBackend } from '../support/backends.js';
import { registerRole } from '../support/resources.js';
import { runCli } from '../support/cli.js';
import { generateAttemptsSql, readAttempts, readRows, rowText, serverClient, sortRows } from '../support/hardening.js';
import { sessionOf } from '../../src/database/db.js';

const script = fileURLToPath(new URL('../../sql/roles.sql', import.meta.url));
const psqlAvailable = spawnSync('psql', ['--version']).status === 0;
const server = await serverBackend('hardening_roles');
const anchor = '2025-11-04';
const since = '2025-10-28';

// Roles are cluster-wide: name them after this checkout's database, so checkouts testing side by side do not collide.
const databaseName = server ? new URL(server.url).pathname.slice(1) : 'afd';
const jobRole = `${databaseName.slice(0, 50)}_job`;
const dryRole = `${databaseName.slice(0, 50)}_dryrun`;
const jobPassword = 'job-S3cr3t/pw:x';
const dryPassword = 'dry-S3cr3t@pw';

/** The database URL of `role`, with its password, plus optional URL parameters. */
function urlFor(base: string, role: string, password: string, params: Record<string, string> = {}): string {
  const url = new URL(base);
  url.username = role;
  url.password = password;
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url.toString();
}

function expectNoPassword(output: string): void {
  for (const secret of [jobPassword, dryPassword, encodeURIComponent(jobPassword), encodeURIComponent(dryPassword)]) {
    expect(output).not.toContain(secret);
  }
}

/** Runs sql/roles.sql with psql as the database owner; returns stdout + stderr. */
function applyScript(url: string, variables: Record<string, string>, env: Record<string, string> = {}): string {
  const args = ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-f', script];
  for (const [k, v] of Object.entries(variables)) args.push('-v', `${k}=${v}`);
  return execFileSync('psql', args, { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The SQLSTATE a statement fails with, as `role`; 'ok' if it succeeds. */
async function attempt(client: pg.Client, sql: string): Promise<string> {
  try {
    await client.query(sql);
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? 'error';
  }
}

describe.runIf(server && psqlAvailable)('sql/roles.sql on a fresh server database', () => {
  const backend = server!;
  let admin: pg.Client;
  let expected: string[];
  const env = (url: string) => ({ DATABASE_URL: url, AGG_LOOKBACK_DAYS: '7', AGG_TIMEZONE: 'UTC' });
  let jobUrl: string;
  let dryUrl: string;

  beforeAll(async () => {
    // Migrate as the owner, then the source and the theta tables the job may read.
    expect((await runCli(['migrate'], { DATABASE_URL: backend.url })).code).toBe(0);
    admin = await serverClient(backend.url);
    await admin.query(generateAttemptsSql('attempt', { rows: 20_000, students: 40, topics: 5, days: 35, start: '2025-10-01' }));
    await admin.query(`create table student_topic_theta (user_id text, topic_id text, theta numeric, se numeric, updated_at timestamptz);
                       create table mirt_ability (user_id text, theta numeric, se numeric, fitted_at timestamptz);
                       create table unrelated (x int)`);
    expected = sortRows(
      oracle(await readAttempts(sessionOf(admin), 'attempt'), {
        since,
        anchor,
        timezone: 'UTC',
        includeTheta: false,
        improvementMode: 'accuracy',
      }),
    ).map(rowText);
    // Only the script's grants count: PUBLIC keeps neither TEMP nor CONNECT on this database.
    const db = new URL(backend.url).pathname.slice(1);
    await admin.query(`revoke temporary, connect on database "${db}" from public`);
    // Drop the roles of an earlier run of this checkout (their old database is gone, so they hold nothing).
    for (const role of [jobRole, dryRole]) {
      await admin.query(`drop role if exists "${role}"`);
      registerRole(role); // dropped at the file's end, after its database
    }
    jobUrl = urlFor(backend.url, jobRole, jobPassword);
    dryUrl = urlFor(backend.url, dryRole, dryPassword);
  });

  afterAll(async () => {
    await admin?.end();
  });

  describe('the script and its privileges', () => {
    test('the script refuses to run before migrate or without the source, and applies idempotently', async () => {
      const noSource = spawnSync(
        'psql',
        ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', backend.url, '-v', 'source=no_such_table', '-f', script],
        {
          encoding: 'utf8',
        },
      );
      expect(noSource.status).toBe(3);
      expect(noSource.stderr).toMatch(/the attempts source no_such_table does not exist/);

      const variables = { job_role: jobRole, dryrun_role: dryRole, schema: 'public', source: 'attempt' };
      const first = applyScript(backend.url, variables, { AFD_JOB_PASSWORD: jobPassword, AFD_DRYRUN_PASSWORD: dryPassword });
      expectNoPassword(first);
      const second = applyScript(backend.url, { ...variables, job_password: jobPassword, dryrun_password: dryPassword });
      expect(second).toMatch(new RegExp(`${jobRole}\\s*\\|\\s*t\\s*\\|\\s*f\\s*\\|\\s*t\\s*\\|\\s*t`));
      expect(second).toMatch(new RegExp(`${dryRole}\\s*\\|\\s*f\\s*\\|\\s*f\\s*\\|\\s*f\\s*\\|\\s*t`));
      expect(second).not.toMatch(/WARNING/);

      const roles = await admin.query<{
        rolname: string;
        rolsuper: boolean;
        rolcreatedb: boolean;
        rolcreaterole: boolean;
        rolcanlogin: boolean;
      }>('select rolname, rolsuper, rolcreatedb, rolcreaterole, rolcanlogin from pg_roles where rolname = any($1) order by rolname', [
        [jobRole, dryRole],
      ]);
      expect(roles.rows).toEqual([
        { rolname: dryRole, rolsuper: false, rolcreatedb: false, rolcreaterole: false, rolcanlogin: true },
        { rolname: jobRole, rolsuper: false, rolcreatedb: false, rolcreaterole: false, rolcanlogin: true },
      ]);
    });

    test('exactly the privileges of the design, nothing else', async () => {
      const privileges = async (role: string) =>
        (
          await admin.query<{ object: string; privileges: string }>(
            `select c.relname as object,
                  array_to_string(array(select p from unnest(array['SELECT','INSERT','UPDATE','DELETE','TRUNCATE','REFERENCES','TRIGGER']) p
                                        where has_table_privilege($1, c.oid, p)), ',') as privileges
           from pg_class c join pg_namespace n on n.oid = c.relnamespace
           where n.nspname = 'public' and c.relkind in ('r', 'v', 'p')
           order by c.relname`,
            [role],
          )
        ).rows.filter((r) => r.privileges !== '');
      expect(await privileges(jobRole)).toEqual([
        { object: 'aggregate_features_definition', privileges: 'SELECT,INSERT,UPDATE,DELETE' },
        { object: 'aggregate_features_migrations', privileges: 'SELECT' },
        { object: 'aggregate_features_runs', privileges: 'SELECT,INSERT,UPDATE,DELETE' },
        { object: 'aggregate_features_source_days', privileges: 'SELECT,INSERT,UPDATE,DELETE' },
        { object: 'attempt', privileges: 'SELECT' },
        { object: 'features_topic_daily', privileges: 'SELECT,INSERT,UPDATE,DELETE' },
        { object: 'mirt_ability', privileges: 'SELECT' },
        { object: 'student_topic_theta', privileges: 'SELECT' },
      ]);
      expect(await privileges(dryRole)).toEqual([
        { object: 'aggregate_features_definition', privileges: 'SELECT' },
        { object: 'aggregate_features_migrations', privileges: 'SELECT' },
        { object: 'aggregate_features_runs', privileges: 'SELECT' },
        { object: 'aggregate_features_source_days', privileges: 'SELECT' },
        { object: 'attempt', privileges: 'SELECT' },
        { object: 'features_topic_daily', privileges: 'SELECT' },
        { object: 'mirt_ability', privileges: 'SELECT' },
        { object: 'student_topic_theta', privileges: 'SELECT' },
      ]);
      const db = new URL(backend.url).pathname.slice(1);
      const database = await admin.query<{ role: string; connect: boolean; temp: boolean; create_db: boolean; create_schema: boolean }>(
        `select r as role, has_database_privilege(r, $1, 'CONNECT') as connect, has_database_privilege(r, $1, 'TEMP') as temp,
              has_database_privilege(r, $1, 'CREATE') as create_db, has_schema_privilege(r, 'public', 'CREATE') as create_schema
       from unnest($2::text[]) r order by r`,
        [db, [dryRole, jobRole]],
      );
      expect(database.rows).toEqual([
        { role: dryRole, connect: true, temp: false, create_db: false, create_schema: false },
        { role: jobRole, connect: true, temp: true, create_db: false, create_schema: false },
      ]);
    });
  });

  describe('what each role can do', () => {
    test('the job runs under the job role; the dry run under the dry-run role, also read-only and without TEMP', async () => {
      const dryFirst = await runCli(['--date', anchor, '--dry-run'], env(dryUrl));
      expectNoPassword(dryFirst.stdout + dryFirst.stderr);
      expect(dryFirst.code, dryFirst.stderr).toBe(0);
      expect(dryFirst.stderr).toContain(`would_insert=${expected.length}, would_update=0, unchanged=0, would_delete=0`);

      const run = await runCli(['--date', anchor], env(jobUrl));
      expectNoPassword(run.stdout + run.stderr);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toContain(`Rows: inserted=${expected.length}, updated=0, unchanged=0, deleted=0`);
      expect(sortRows(await readRows(sessionOf(admin), { since, anchor })).map(rowText)).toEqual(expected);

      // Read-only transactions (what a replica or a read-only pooler gives): the dry run still works.
      const readOnly = urlFor(backend.url, dryRole, dryPassword, { options: '-c default_transaction_read_only=on' });
      const dry = await runCli(['--date', anchor, '--dry-run'], env(readOnly));
      expectNoPassword(dry.stdout + dry.stderr);
      expect(dry.code, dry.stderr).toBe(0);
      expect(dry.stderr).toContain(`would_insert=0, would_update=0, unchanged=${expected.length}, would_delete=0`);
      // Without --date it also reads the run log (for the catch-up window): granted too.
      const dryYesterday = await runCli(['--dry-run'], env(readOnly));
      expect(dryYesterday.code, dryYesterday.stderr).toBe(0);
      // And the job role itself can dry-run.
      expect((await runCli(['--date', anchor, '--dry-run'], env(jobUrl))).code).toBe(0);
    });

    test('the dry-run role cannot run the job: a clear permission error, nothing written, no password', async () => {
      const runsBefore = (await admin.query('select * from aggregate_features_runs')).rows;
      const rowsBefore = (await admin.query('select * from features_topic_daily order by 1, 2, 3')).rows;
      await admin.query("update attempt set correct = not correct where completed_at >= '2025-11-04'");
      const denied = await runCli(['--date', anchor], env(dryUrl));
      const readOnly = await runCli(
        ['--date', anchor],
        env(urlFor(backend.url, dryRole, dryPassword, { options: '-c default_transaction_read_only=on' })),
      );
      await admin.query("update attempt set correct = not correct where completed_at >= '2025-11-04'");
      for (const result of [denied, readOnly]) {
        expectNoPassword(result.stdout + result.stderr);
        expect(result.stderr.trim().split('\n')).toHaveLength(1);
        expect(result.stderr).not.toMatch(/\n\s+at /);
      }
      console.log(`[roles report] dry-run role, normal run: exit ${denied.code}: ${denied.stderr.trim()}`);
      console.log(`[roles report] dry-run role, normal run, read-only transaction: exit ${readOnly.code}: ${readOnly.stderr.trim()}`);
      expect(denied.code).toBe(2);
      expect(denied.stderr).toMatch(/^\[ERROR\] .*permission denied for (table|relation) aggregate_features_runs/);
      expect(readOnly.code).toBe(2);
      expect(readOnly.stderr).toMatch(/^\[ERROR\] .*read-only transaction/);
      expect((await admin.query('select * from aggregate_features_runs')).rows).toEqual(runsBefore);
      expect((await admin.query('select * from features_topic_daily order by 1, 2, 3')).rows).toEqual(rowsBefore);
    });

    test('the job role can create temporary tables only; the dry-run role not even those', async () => {
      const job = new pg.Client({ connectionString: jobUrl });
      const dry = new pg.Client({ connectionString: dryUrl });
      await job.connect();
      await dry.connect();
      try {
        const outcomes = {
          createTable: await attempt(job, 'create table job_made (x int)'),
          createTableQualified: await attempt(job, 'create table public.job_made (x int)'),
          createView: await attempt(job, 'create view job_view as select 1'),
          createSchema: await attempt(job, 'create schema job_schema'),
          createFunction: await attempt(job, 'create function public.job_fn() returns int language sql as $$ select 1 $$'),
          alterFeatures: await attempt(job, 'alter table features_topic_daily add column x int'),
          dropFeatures: await attempt(job, 'drop table features_topic_daily'),
          truncateFeatures: await attempt(job, 'truncate features_topic_daily'),
          truncateRunLog: await attempt(job, 'truncate aggregate_features_runs'),
          createIndex: await attempt(job, 'create index on features_topic_daily (hints)'),
          writeSource: await attempt(job, "insert into attempt values ('x', 'y', now(), true, 1, false)"),
          deleteSource: await attempt(job, 'delete from attempt'),
          writeMigrations: await attempt(job, 'delete from aggregate_features_migrations'),
          writeTheta: await attempt(job, 'delete from student_topic_theta'),
          readUnrelated: await attempt(job, 'select * from unrelated'),
          createTempTable: await attempt(job, 'create temporary table scratch as select 1 as x'),
          dryCreateTemp: await attempt(dry, 'create temporary table scratch as select 1 as x'),
          dryWrite: await attempt(dry, 'update features_topic_daily set hints = hints where false'),
          dryInsertRunLog: await attempt(
            dry,
            "insert into aggregate_features_runs (run_id, job_version, command, since, anchor, started_at) values ('x', 'x', 'x', now(), now(), now())",
          ),
          dryCreateTable: await attempt(dry, 'create table dry_made (x int)'),
        };
        expect(outcomes).toEqual({
          createTable: '42501',
          createTableQualified: '42501',
          createView: '42501',
          createSchema: '42501',
          createFunction: '42501',
          alterFeatures: '42501',
          dropFeatures: '42501',
          truncateFeatures: '42501',
          truncateRunLog: '42501',
          createIndex: '42501',
          writeSource: '42501',
          deleteSource: '42501',
          writeMigrations: '42501',
          writeTheta: '42501',
          readUnrelated: '42501',
          createTempTable: 'ok',
          dryCreateTemp: '42501',
          dryWrite: '42501',
          dryInsertRunLog: '42501',
          dryCreateTable: '42501',
        });
      } finally {
        await job.end();
        await dry.end();
      }
    });

    test('sql answers ordinary queries as the job role, the dry-run role, and a superuser switched to the dry-run role', async () => {
      const query = 'select current_user as who, count(*)::int as rows from features_topic_daily';
      const asJob = await runCli(['sql', '--json', query], env(jobUrl));
      const asDry = await runCli(['sql', '--json', query], env(dryUrl));
      const asAdmin = await runCli(['sql', '--json', query], { ...env(backend.url), AGG_SQL_ROLE: dryRole });
      const rows = expected.length;
      expect([asJob, asDry, asAdmin].map((r) => [r.code, JSON.parse(r.stdout || '[]') as unknown])).toEqual([
        [0, [{ who: jobRole, rows }]],
        [0, [{ who: dryRole, rows }]],
        [0, [{ who: dryRole, rows }]],
      ]);
      // The superuser without a reader role by that name: refused, saying how to create one.
      const missing = await runCli(['sql', query], { ...env(backend.url), AGG_SQL_ROLE: `${dryRole}_missing` });
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/does not exist: create it with sql\/roles\.sql/);
      // What the dry-run role cannot see, sql as the superuser cannot either.
      const unrelated = await runCli(['sql', 'select * from unrelated'], { ...env(backend.url), AGG_SQL_ROLE: dryRole });
      expect(unrelated.code).toBe(2);
      expect(unrelated.stderr).toMatch(/permission denied for table unrelated/);
    });

    test('migrate under the job role fails (it is the migrator’s job) and changes nothing', async () => {
      const result = await runCli(['migrate'], env(jobUrl));
      expectNoPassword(result.stdout + result.stderr);
      console.log(`[roles report] job role, migrate: exit ${result.code}: ${result.stderr.trim()}`);
      // Even with nothing to apply, migrate needs CREATE on the schema: a missing grant is exit 2.
      expect(result.code).toBe(2);
    });
  });
});
