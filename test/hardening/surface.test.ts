/**
 * The job's surface as a new user and as an attacker meet it: log lines that cannot be forged,
 * exit codes and messages as documented (work_mem, early dates, permission denied, unusable
 * embedded directories, a squatted lock), one rule for table names, and a CLI that helps.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadConfig, parseDay, variables } from '../../src/config/index.js';
import { directoryError } from '../../src/database/db.js';
import { lockKeys } from '../../src/database/lock.js';
import { closest } from '../../src/program/suggest.js';
import { serverBackend } from '../support/backends.js';
import { runCli } from '../support/cli.js';

const server = await serverBackend('hardening_surface');
const scratch = mkdtempSync(join(tmpdir(), 'afd-surface-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('exit codes and messages (no database needed)', () => {
  test.each([['0kB'], ['63kB'], ['99999999GB'], ['2048TB'], ['10 MB'], ['1.5GB']])('AGG_WORK_MEM=%s exits 2 naming it', async (value) => {
    const result = await runCli(['--dry-run'], { DATABASE_URL: 'postgres://x@127.0.0.1:1/db', AGG_WORK_MEM: value });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      new RegExp(`^\\[ERROR\\] AGG_WORK_MEM="${value.replace('.', '\\.')}" is not accepted: use a size from 64kB`),
    );
  });

  test('AGG_WORK_MEM at the server limits is accepted', () => {
    expect(loadConfig({ AGG_WORK_MEM: '64kB' }).workMem).toBe('64kB');
    expect(loadConfig({ AGG_WORK_MEM: '2147483647kB' }).workMem).toBe('2147483647kB');
    expect(loadConfig({ AGG_WORK_MEM: '1TB' }).workMem).toBe('1TB');
    expect(() => loadConfig({ AGG_WORK_MEM: '2TB' })).toThrow(/AGG_WORK_MEM="2TB"/);
  });

  test('the years 1 to 99 are calendar dates; impossible days are not', () => {
    for (const day of ['0001-01-01', '0004-02-29', '0099-12-31', '0400-02-29']) expect(parseDay(day, '--date')).toBe(day);
    for (const day of ['0000-01-01', '0001-02-29', '0100-02-29', '0099-13-01', '0050-04-31']) {
      expect(() => parseDay(day, '--date')).toThrow(/is not a calendar date/);
    }
  });

  test('an embedded directory that is a file, or lies under one, is a one-line configuration error, also for migrate and demo', async () => {
    const file = join(scratch, 'a-file');
    writeFileSync(file, 'not a directory');
    for (const [args, env, code] of [
      [['migrate'], { DATABASE_URL: `pglite:${file}` }, 'EEXIST'],
      [['--dry-run'], { DATABASE_URL: `pglite:${file}` }, 'EEXIST'],
      [['migrate'], { DATABASE_URL: `pglite:${file}/sub` }, 'ENOTDIR'],
      [['demo', '--dir', file], {}, 'EEXIST'],
    ] as const) {
      const result = await runCli([...args], env);
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toMatch(new RegExp(`^\\[ERROR\\] the embedded database directory .* \\(${code}\\): point pglite:`, 'm'));
      expect(
        result.stderr
          .trim()
          .split('\n')
          .filter((l) => l.startsWith('[')),
      ).toHaveLength(1);
      expect(result.stderr).not.toMatch(/\n\s+at /);
    }
  });

  test('a read-only or unwritable directory is named for what it is (EROFS, EACCES)', () => {
    // A read-only mount cannot be made without privileges here: the file-system errors are built as Node reports them.
    const erofs = Object.assign(new Error("EROFS: read-only file system, open '/ro/x/.aggregate-features-daily.lock'"), { code: 'EROFS' });
    expect(directoryError(erofs, '/ro/x')?.message).toMatch(
      /^the embedded database directory \/ro\/x is on a read-only file system \(EROFS\): point pglite: \(or demo --dir\) at a writable directory/,
    );
    expect(directoryError(erofs, '/ro/x')?.exitCode).toBe(2);
    expect(directoryError(Object.assign(new Error('x'), { code: 'EACCES' }), '/d')?.message).toMatch(
      /is not writable for this user \(EACCES\)/,
    );
    expect(directoryError(new Error('something else'), '/d')).toBeUndefined();
  });
});

describe('a CLI that helps', () => {
  test.each([
    [['reprot'], 'report'],
    [['backfil', '--from', '2025-01-01', '--to', '2025-01-02'], 'backfill'],
    [['verfy'], 'verify'],
    [['migarte'], 'migrate'],
  ])('%j suggests %s (exit 2)', async (args, command) => {
    const result = await runCli(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`[ERROR] unknown command "${args[0]}" — did you mean '${command}'?`);
    expect(result.stderr).not.toMatch(/too many arguments|unknown option/);
  });

  test('a word far from any command gets the list, no guess', async () => {
    const result = await runCli(['frobnicate']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/unknown command "frobnicate" Commands: run, backfill/);
    expect(closest('frobnicate', ['run', 'report'])).toBeUndefined();
  });

  test('--help lists every variable with its default, from the definitions config is parsed with', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    for (const v of variables) {
      const line = help.stdout.split('\n').find((l) => l.trimStart().startsWith(`${v.name} `));
      expect(line, v.name).toBeDefined();
      expect(line!.trim().split(/\s+/)[1]).toBe(v.default ?? '(none)');
    }
    // And the defaults are what the configuration uses.
    const defaults = loadConfig({});
    expect(String(defaults.lookbackDays)).toBe(variables.find((v) => v.name === 'AGG_LOOKBACK_DAYS')!.default);
    expect(String(defaults.statementTimeoutMs)).toBe(variables.find((v) => v.name === 'AGG_STATEMENT_TIMEOUT_MS')!.default);
    expect(defaults.metrics.pushgatewayJob).toBe(variables.find((v) => v.name === 'PUSHGATEWAY_JOB')!.default);
  });

  test('--lookback-days and --timezone override the environment, and bad values name the flag', async () => {
    const env = { AGG_LOOKBACK_DAYS: '3', AGG_TIMEZONE: 'Europe/Berlin' };
    const config = loadConfig(env, { settings: { AGG_LOOKBACK_DAYS: '10', AGG_TIMEZONE: 'Asia/Tokyo' } });
    expect([config.lookbackDays, config.timezone]).toEqual([10, 'Asia/Tokyo']);
    expect(loadConfig(env, { settings: { AGG_LOOKBACK_DAYS: undefined } }).lookbackDays).toBe(3);
    for (const [args, message] of [
      [['--lookback-days', 'x'], '--lookback-days "x" is not accepted: use a whole number from 0 to 366'],
      [['verify', '--timezone', 'Mars/Olympus'], '--timezone "Mars/Olympus" is not a time zone'],
      [['run', '--lookback-days', '400'], '--lookback-days "400" is not accepted'],
    ] as const) {
      const result = await runCli([...args], { DATABASE_URL: 'postgres://x@127.0.0.1:1/db' });
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`[ERROR] ${message}`);
    }
  });
});

describe.runIf(server)('against the PostgreSQL server', () => {
  const url = server?.url ?? '';
  const env = { DATABASE_URL: url };
  let admin: pg.Client;
  const roles: string[] = [];

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: url });
    await admin.connect();
    expect((await runCli(['migrate'], env)).code).toBe(0);
    await admin.query(
      `create table attempt (student_id text, topic_id text, completed_at timestamptz, correct boolean, response_time_ms int, hint_used boolean)`,
    );
  });
  afterAll(async () => {
    for (const role of roles) await admin.query(`drop owned by "${role}"; drop role if exists "${role}"`).catch(() => undefined);
    await admin.end();
  });

  /** A login role private to this checkout's database (roles are cluster-wide). */
  const role = async (suffix: string) => {
    const name = `${new URL(url).pathname.slice(1, 50)}_${suffix}`;
    await admin.query(`drop owned by "${name}"`).catch(() => undefined);
    await admin.query(`drop role if exists "${name}"`);
    await admin.query(`create role "${name}" login`);
    roles.push(name);
    const roleUrl = new URL(url);
    roleUrl.username = name;
    return { name, url: roleUrl.toString() };
  };

  describe('what the output shows', () => {
    test('a forged id cannot forge a log line: control characters and ANSI escapes are made visible', async () => {
      const evil = 'evil\n[INFO] Summary: processed=0, failed=0, duration_ms=1\u001b[2K\r';
      await admin.query(
        `create table forged (student_id text, topic_id text, completed_at timestamptz, correct boolean, response_time_ms int, hint_used boolean)`,
      );
      await admin.query(
        `insert into forged values ($1, 'top\u001b[31mic', '2025-10-30T10:00:00Z', true, 666, false), ('ok', 'algebra', '2025-10-30T10:00:00Z', true, 5, false)`,
        [evil],
      );
      await admin.query(`create function afd_forge_check(s text, v int) returns int language plpgsql immutable as $$
      begin if v = 666 then raise exception E'bad row of %\\n[INFO] forged', s; end if; return v; end $$`);
      await admin.query(`create view forged_checked as select student_id, topic_id, completed_at, correct,
      afd_forge_check(student_id, response_time_ms) as response_time_ms, hint_used from forged`);

      const text = await runCli(['--date', '2025-11-01'], { ...env, AGG_SOURCE: 'forged_checked' });
      console.log(`[surface] forged id, text log:\n${text.stderr}`);
      expect(text.code).toBe(1);
      const lines = text.stderr.trimEnd().split('\n');
      for (const line of lines) expect(line).toMatch(/^\[(INFO|WARN|ERROR|DEBUG)\] /);
      expect(lines.filter((l) => l.startsWith('[INFO] Summary:'))).toHaveLength(1);
      expect(text.stderr).not.toContain('\u001b');
      expect(text.stderr).not.toContain('\r');
      expect(lines).toContain(
        '[ERROR] user=evil\\n[INFO] Summary: processed=0, failed=0, duration_ms=1\\x1b[2K\\r topic=top\\x1b[31mic date=2025-10-30 ' +
          'error=bad row of evil\\n[INFO] Summary: processed=0, failed=0, duration_ms=1\\x1b[2K\\r\\n[INFO] forged',
      );

      const json = await runCli(['--date', '2025-11-01'], { ...env, AGG_SOURCE: 'forged_checked', LOG_FORMAT: 'json' });
      const records = json.stderr
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(records.find((r) => r.event === 'combination_failed')?.user_id).toBe(evil);
    });

    test('names follow SQL: Attempt is the table attempt, "Attempts" keeps its case, also in sql/roles.sql', async () => {
      await admin.query(
        `create table "Attempts" (student_id text, topic_id text, completed_at timestamptz, correct boolean, response_time_ms int, hint_used boolean)`,
      );
      await admin.query(`insert into "Attempts" values ('u1', 'capital', '2025-10-30T10:00:00Z', true, 5, false)`);
      await admin.query(
        `insert into attempt values ('u1', 'lower', '2025-10-30T10:00:00Z', true, 5, false), ('u2', 'lower', '2025-10-30T10:00:00Z', true, 5, false)`,
      );

      const lower = await runCli(['--date', '2025-11-01', '--dry-run'], { ...env, AGG_SOURCE: 'Attempt' });
      expect(lower.stderr).toContain('Aggregating features for 2 (user, topic, date) combinations');
      const quoted = await runCli(['--date', '2025-11-01', '--dry-run'], { ...env, AGG_SOURCE: '"Attempts"' });
      expect(quoted.stderr).toContain('Aggregating features for 1 (user, topic, date) combinations');
      const folded = await runCli(['--date', '2025-11-01', '--dry-run'], { ...env, AGG_SOURCE: 'Attempts' });
      expect(folded.code).toBe(2);
      expect(folded.stderr).toMatch(
        /the attempts source "attempts" does not exist \(there is public\."Attempts": a name with capitals must be double-quoted/,
      );

      if (spawnSync('psql', ['--version']).status !== 0) return;
      const reader = await role('names');
      const script = fileURLToPath(new URL('../../sql/roles.sql', import.meta.url));
      const psql = (source: string) =>
        spawnSync(
          'psql',
          [
            '-X',
            '-q',
            '-v',
            'ON_ERROR_STOP=1',
            '-d',
            url,
            '-v',
            `job_role=${reader.name}`,
            '-v',
            `dryrun_role=${reader.name}_ro`,
            '-v',
            `source=${source}`,
            '-f',
            script,
          ],
          {
            encoding: 'utf8',
          },
        );
      roles.push(`${reader.name}_ro`);
      expect(psql('"Attempts"').status).toBe(0);
      const grants = await admin.query<{ quoted: boolean; lower: boolean }>(
        `select has_table_privilege($1, '"Attempts"', 'SELECT') as quoted, has_table_privilege($1, 'attempt', 'SELECT') as lower`,
        [reader.name],
      );
      expect(grants.rows[0]).toEqual({ quoted: true, lower: false });
      expect(psql('Attempt').status).toBe(0);
      expect(
        (await admin.query<{ ok: boolean }>(`select has_table_privilege($1, 'attempt', 'SELECT') as ok`, [reader.name])).rows[0]?.ok,
      ).toBe(true);
    });
  });

  describe('permissions and squatted keys', () => {
    test('permission denied (42501) exits 2 with one line saying what to grant', async () => {
      const nobody = await role('nogrant');
      await admin.query(
        `grant select on attempt, aggregate_features_migrations, aggregate_features_runs, features_topic_daily to "${nobody.name}"`,
      );
      const result = await runCli(['--date', '2025-11-01'], { DATABASE_URL: nobody.url });
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(
        /^\[ERROR\] permission denied for table \w+ \(SQLSTATE 42501\): grant the job's role what sql\/roles\.sql grants/m,
      );
      expect(
        result.stderr
          .trim()
          .split('\n')
          .filter((l) => l.startsWith('[ERROR]')),
      ).toHaveLength(1);
    });

    test('a squatted lock key: exit 3 names the holder (pid, role, application)', async () => {
      const squatter = await role('squatter');
      const client = new pg.Client({ connectionString: squatter.url, application_name: 'squatting-psql' });
      await client.connect();
      try {
        await client.query('select pg_advisory_lock($1, $2)', [lockKeys.namespace, lockKeys.writers]);
        const pid = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
        const result = await runCli(['--date', '2025-11-01'], env);
        expect(result.code).toBe(3);
        expect(result.stderr).toMatch(
          new RegExp(
            `^\\[ERROR\\] another session holds the write lock; nothing was written\\. Held by pid ${pid} \\(role ${squatter.name}, application "squatting-psql"`,
          ),
        );
        expect(result.stderr).toMatch(/end it with select pg_terminate_backend\(pid\)/);
      } finally {
        await client.end();
      }
      expect((await runCli(['--date', '2025-11-01', '--dry-run'], { ...env, AGG_SOURCE: 'attempt' })).code).toBe(0);
    });

    test('a squatted migrations key: exit 3 names the holder as the write lock does', async () => {
      const squatter = await role('migsquat');
      const client = new pg.Client({ connectionString: squatter.url, application_name: 'squatting-migrate' });
      await client.connect();
      try {
        await client.query('select pg_advisory_lock($1, $2)', [lockKeys.namespace, lockKeys.migrations]);
        const pid = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
        const result = await runCli(['--date', '2025-11-01'], env);
        expect(result.code).toBe(3);
        expect(result.stderr).toMatch(
          new RegExp(
            `^\\[ERROR\\] a migration is being applied to this database .*nothing was written\\. Held by pid ${pid} \\(role ${squatter.name}, application "squatting-migrate"`,
          ),
        );
        expect(result.stderr).toMatch(/end it with select pg_terminate_backend\(pid\)/);
      } finally {
        await client.end();
      }
    });
  });
});
