/**
 * The CLI: exit codes, the log lines of SPEC §8 verbatim, bad flags and environment values,
 * unreachable databases, and the password never printed. Most calls run `main()` in this
 * process (runMain); what only a process shows runs `node dist/cli.js` (runCli): its exit
 * status for success, a usage error and an unreachable database, and a second process on an
 * embedded database.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, test } from 'vitest';
import { runCli, runMain } from './support/cli.js';
import { pgliteBackend, serverBackend, type Backend } from './support/backends.js';
import { testTempDir } from './support/resources.js';

const server = await serverBackend('cli');
const csv = join(testTempDir('cli'), 'attempts.csv');
writeFileSync(
  csv,
  [
    'student_id,topic_id,completed_at,correct,response_time_ms,hint_used',
    'u1,algebra,2025-10-31T10:00:00Z,true,1000,false',
    'u1,algebra,2025-10-31T11:00:00Z,false,2001,true',
    'u2,"Find Y, any form",2025-11-01T23:59:59Z,,,',
    'u2,geometry,2025-11-02T00:00:00Z,true,10,false',
  ].join('\n') + '\n',
);

describe('usage and configuration errors (no database needed)', () => {
  test('--help and --version exit 0 (the process)', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: aggregate-features-daily/);
    expect(help.stdout).toMatch(/migrate/);
    expect(help.stdout).toMatch(/import-attempts/);
    const version = await runMain(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  test.each([
    [['--bogus'], {}, /unknown option '--bogus'/],
    [['--date', '2025-02-30'], {}, /--date "2025-02-30" is not a calendar date/],
    [['--date', '01/11/2025'], {}, /--date "01\/11\/2025" is not a calendar date/],
    [['--shard', '3/2'], { DATABASE_URL: 'postgres://x@127.0.0.1/db' }, /--shard "3\/2"/],
    [[], { AGG_LOOKBACK_DAYS: '-1' }, /AGG_LOOKBACK_DAYS="-1" is not accepted: use a whole number from 0 to 366/],
    [[], { AGG_LOOKBACK_DAYS: '367' }, /AGG_LOOKBACK_DAYS/],
    [[], { AGG_INCLUDE_THETA: 'maybe' }, /AGG_INCLUDE_THETA="maybe" is not a boolean/],
    [[], { AGG_IMPROVEMENT_MODE: 'vibes' }, /AGG_IMPROVEMENT_MODE="vibes" is not accepted: use one of accuracy, theta/],
    [[], { AGG_IMPROVEMENT_MODE: 'theta' }, /AGG_IMPROVEMENT_MODE=theta needs AGG_INCLUDE_THETA=true/],
    [[], { AGG_TIMEZONE: 'Mars/Olympus_Mons' }, /AGG_TIMEZONE="Mars\/Olympus_Mons" is not a time zone/],
    [[], { LOG_FORMAT: 'xml' }, /LOG_FORMAT="xml"/],
    [[], { DEBUG: 'sometimes' }, /DEBUG="sometimes" is not a boolean/],
    [[], { AGG_SOURCE: 'attempt; drop table x' }, /AGG_SOURCE="attempt; drop table x" is not a valid table name/],
    [[], { AGG_WORK_MEM: 'lots' }, /AGG_WORK_MEM="lots"/],
    [[], {}, /DATABASE_URL is not set/],
    [[], { DATABASE_URL: 'mysql://root:hunter2@localhost/db' }, /DATABASE_URL is not accepted/],
    [[], { DATABASE_URL: 'postgres://root:hunter2@/db' }, /DATABASE_URL is not a valid URL/],
    [[], { DATABASE_URL: 'postgres:///db?user=x' }, /DATABASE_URL/],
    [[], { DATABASE_URL: 'postgres://root:hunter2@host:99999/db' }, /DATABASE_URL/],
    [[], { DATABASE_URL: 'pglite:' }, /pglite: needs a directory/],
  ])('%j %j exits 2 with a one-line message', async (args, env, message) => {
    const result = await runMain(args, env);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/hunter2/);
    expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  test('the process exits 2 on a usage error, with the one-line message and no stack trace', async () => {
    const result = await runCli(['--date', '2025-02-30'], { DATABASE_URL: 'postgres://root:hunter2@127.0.0.1:1/db' });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--date "2025-02-30" is not a calendar date/);
    expect(result.stdout + result.stderr).not.toMatch(/hunter2|\n\s+at /);
  });

  test('an unreachable server exits 4 after retries, without the password (the process)', async () => {
    const result = await runCli([], {
      DATABASE_URL: 'postgresql+psycopg2://svc:s3cr3t-pw@127.0.0.1:1/features',
      AGG_CONNECT_ATTEMPTS: '2',
    });
    expect(result.code).toBe(4);
    expect(result.stderr).toMatch(
      /^\[ERROR\] database unreachable after 2 attempts \(postgresql:\/\/svc:\*\*\*@127\.0\.0\.1:1\/features\)/,
    );
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stdout + result.stderr).not.toMatch(/s3cr3t-pw/);
  });

  test('an unknown host exits 4', async () => {
    const result = await runMain([], { DATABASE_URL: 'postgres://svc:pw@no-such-host.invalid:5432/db', AGG_CONNECT_ATTEMPTS: '1' });
    expect(result.code).toBe(4);
    expect(result.stderr).toMatch(/database unreachable/);
  });
});

describe.runIf(server)('against the PostgreSQL server', () => {
  const backend = server as Backend;
  const env = () => ({ DATABASE_URL: backend.url });

  test('the daily run refuses to start before migrate (exit 2)', async () => {
    const result = await runMain(['--date', '2025-11-01'], env());
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/run `aggregate-features-daily migrate` first/);
  });

  test('migrate, import, dry run, run, re-run, empty window: log lines and exit codes', async () => {
    // A SQLAlchemy-style URL with a driver suffix is accepted.
    const sqlalchemyUrl = backend.url.replace(/^postgres(ql)?:/, 'postgresql+psycopg2:');
    expect((await runMain(['migrate'], { DATABASE_URL: sqlalchemyUrl })).lines).toEqual([
      '[INFO] Applied migrations: 001_features_topic_daily, 002_run_log, 003_source_memory',
    ]);
    expect((await runMain(['migrate'], env())).lines).toEqual(['[INFO] Schema is up to date; nothing to apply.']);
    const missing = await runMain(['--date', '2025-11-01'], env());
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/the attempts source "attempt" does not exist/);

    const imported = await runMain(['import-attempts', csv], env());
    expect(imported.code).toBe(0);
    expect(imported.lines).toEqual([`[INFO] Imported 4 attempts from ${csv} into "attempt"`]);

    const dry = await runMain(['--date', '2025-11-01', '--dry-run'], env());
    expect(dry.code).toBe(0);
    expect(dry.lines[0]).toBe(
      '[INFO] Aggregating features for 2 (user, topic, date) combinations; since=2025-10-25, anchor=2025-11-01, dry_run=True',
    );
    expect(dry.lines[1]).toBe('[INFO] Dry run, nothing written: would_insert=2, would_update=0, unchanged=0, would_delete=0');
    expect(dry.lines[2]).toMatch(/^\[INFO\] Summary: processed=2, failed=0, duration_ms=\d+$/);

    const run = await runMain(['--date', '2025-11-01'], env());
    expect(run.code).toBe(0);
    expect(run.lines[0]).toBe(
      '[INFO] Aggregating features for 2 (user, topic, date) combinations; since=2025-10-25, anchor=2025-11-01, dry_run=False',
    );
    expect(run.lines[1]).toBe('[INFO] Rows: inserted=2, updated=0, unchanged=0, deleted=0');
    expect(run.lines[2]).toMatch(/^\[INFO\] Summary: processed=2, failed=0, duration_ms=\d+$/);

    const again = await runMain(['--date', '2025-11-01', '--dry-run'], env());
    expect(again.lines[1]).toBe('[INFO] Dry run, nothing written: would_insert=0, would_update=0, unchanged=2, would_delete=0');

    const empty = await runMain(['--date', '2024-01-01'], env());
    expect(empty.code).toBe(0);
    expect(empty.lines[0]).toBe('[INFO] No (user_id, topic_id, date) combinations found (lookback=7 days); exiting.');
    expect(empty.lines[1]).toMatch(/^\[INFO\] Summary: processed=0, failed=0, duration_ms=\d+$/);

    const json = await runMain(['--date', '2025-11-01'], { ...env(), LOG_FORMAT: 'json', DEBUG: 'true' });
    expect(json.code).toBe(0);
    const records = json.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.every((r) => typeof r.run_id === 'string' && typeof r.time === 'string' && typeof r.msg === 'string')).toBe(true);
    expect(records.filter((r) => r.level === 'debug')).toHaveLength(2);
    expect(records.at(-1)).toMatchObject({ level: 'info', event: 'run_finished', processed: 2, failed: 0 });

    const debug = await runMain(['--date', '2025-11-01'], { ...env(), DEBUG: '1' });
    expect(
      debug.lines.filter((l) =>
        l.startsWith('[DEBUG] user=u1 topic=algebra date=2025-10-31 attempts=2 correct=1 avg_time_ms=1501 rt_median=1501 hints=1'),
      ),
    ).toHaveLength(1);
  });
});

describe('embedded database', () => {
  let backend: Backend;
  beforeAll(() => {
    backend = pgliteBackend('cli_pglite');
  });

  test('migrate, import and run on pglite:<dir>; a second process on the same directory exits 3', async () => {
    const env = { DATABASE_URL: backend.url };
    expect((await runMain(['migrate'], env)).code).toBe(0);
    expect((await runMain(['import-attempts', csv], env)).code).toBe(0);
    const run = await runMain(['--date', '2025-11-01'], env);
    expect(run.code).toBe(0);
    expect(run.lines[1]).toBe('[INFO] Rows: inserted=2, updated=0, unchanged=0, deleted=0');

    const db = await backend.open(); // holds the directory lock
    try {
      const second = await runCli(['--date', '2025-11-01'], env);
      expect(second.code).toBe(3);
      expect(second.stderr).toMatch(/another process \(pid \d+\) is using the embedded database/);
    } finally {
      await db.close();
    }
    expect((await runMain(['--date', '2025-11-01', '--dry-run'], env)).code).toBe(0);
  });
});

describe('demo', () => {
  test('generates data in an embedded database, runs twice, prints rows, with progress', async () => {
    const backend = pgliteBackend('cli_demo', { empty: true }); // the demo creates the database itself
    const directory = backend.url.slice('pglite:'.length);
    const result = await runMain(['demo', '--dir', directory, '--students', '150', '--days', '30'], {});
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/\[demo\] generating 150 students × 30 days of attempts up to 2025-11-01/);
    expect(result.stdout).toMatch(/\[demo\] {3}\d+ attempts \(30\/30 days, /);
    expect(result.stderr).toMatch(
      /^\[INFO\] Aggregating features for \d+ \(user, topic, date\) combinations; since=2025-10-25, anchor=2025-11-01, dry_run=False$/m,
    );
    expect(result.stderr).toMatch(/^\[INFO\] Rows: inserted=0, updated=[1-9]\d*, unchanged=\d+, deleted=0$/m);
    expect(result.stdout).toMatch(/^user_id +topic_id +date +attempts +correct +avg_time_ms +rt_median +hints/m);
    expect(result.stdout).toMatch(/^student-\d{5} +\S+ +2025-11-01 +\d+/m);
    // The directory is a normal embedded database afterwards.
    const dry = await runMain(['--dry-run', '--date', '2025-11-01'], { DATABASE_URL: backend.url });
    expect(dry.code).toBe(0);
    expect(dry.stderr).toMatch(/would_insert=0, would_update=0, unchanged=\d+, would_delete=0/);

    // It ends with three commands to try next on its directory, each one line that works as
    // printed when pasted into a shell in the project's directory.
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines.at(-4)).toBe("[demo] try next, on this directory (from the project's directory):");
    const commands = lines.slice(-3).map((line) => line.replace(/^ {2}/, ''));
    const [report, explain, query] = commands as [string, string, string];
    expect(report).toBe(`DATABASE_URL=pglite:${directory} node dist/cli.js report --date 2025-11-01`);
    expect(explain).toMatch(
      new RegExp(`^DATABASE_URL=pglite:${directory} node dist/cli\\.js explain --user student-\\d{5} --topic \\S+ --date 2025-11-01$`),
    );
    expect(query).toMatch(new RegExp(`^DATABASE_URL=pglite:${directory} node dist/cli\\.js sql "select .+"$`));
    // One at a time: an embedded directory is open in one process at a time.
    const reported = await shell(report);
    const explained = await shell(explain);
    const queried = await shell(query);
    expect(reported.code).toBe(0);
    expect(reported.stdout).toMatch(/^(OK|WARN|FAIL)\b/m);
    expect(reported.stdout).toMatch(/2025-11-01/);
    expect(explained.code, explained.stderr).toBe(0);
    expect(explained.stdout).toMatch(/The stored row equals a fresh computation\./);
    expect(explained.stdout).toMatch(/improvement/);
    expect(queried.code, queried.stderr).toBe(0);
    expect(queried.stdout).toMatch(/^date +rows +attempts$/m);
    expect(queried.stdout).toMatch(/^2025-11-01 +\d+ +\d+$/m);
  });
});

/** Runs one command line with sh in the project's directory, as a user pastes it. */
function shell(line: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const cwd = fileURLToPath(new URL('..', import.meta.url));
  return new Promise((resolve) => {
    execFile('sh', ['-c', line], { cwd, env: { PATH: process.env.PATH }, timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}
