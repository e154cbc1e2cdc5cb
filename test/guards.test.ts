/**
 * Issue 10's remaining guards: runs and migrations exclude each other; a backfill retries a
 * lost connection like the daily run; an embedded lock left by a process with the new
 * process's own pid (pid 1 in containers) is taken over; a mistyped pglite: directory and a
 * daily run for a future day are refused.
 */
import { spawn } from 'node:child_process';
import { existsSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createEventStream } from '../src/observe/events.js';
import { loadConfig } from '../src/config/index.js';
import { type Database, type Session } from '../src/database/db.js';
import { LockHeldError } from '../src/errors.js';
import { runDaily } from '../src/pipeline/daily.js';
import { lockKeys } from '../src/database/lock.js';
import { loadMigrations, migrate } from '../src/database/migrate.js';
import { allBackends, pgliteBackend, serverBackend, useSession } from './support/backends.js';
import { cliPath, runMain } from './support/cli.js';
import { prepareSchema, readFeatures } from './support/data.js';
import { testTempDir } from './support/resources.js';
import { waitFor } from './support/wait.js';
import { sql } from '../src/sql/tag.js';

const generate = (students: number) => sql`
  insert into attempt
  select 'u' || s, 't' || (s + d) % 7, date '2025-11-01' - d + interval '9 hours' + i * interval '1 minute',
         (s + i) % 3 > 0, 1000 + (s * i) % 5000, i % 9 = 0
  from generate_series(1, ${students}::int) s, generate_series(0, 34) d, generate_series(1, 8) i
  where (s + d) % 2 = 0`;

const backends = await allBackends('guards');

describe.each(backends)('refusals ($name)', (backend) => {
  const t = useSession(backend, async (session) => {
    await prepareSchema(session);
    await session.query(generate(20));
  });

  test('a daily run whose --date is after today is refused (exit 2) unless allowFuture', async () => {
    const future = (await t.session.query<{ d: string }>(sql`select ((now() at time zone 'UTC')::date + 2)::text as d`)).rows[0]!.d;
    await expect(runDaily(t.session, loadConfig({}), { date: future }, createEventStream())).rejects.toThrow(
      new RegExp(`^--date ${future} is in the future \\(today is \\d{4}-\\d\\d-\\d\\d in UTC\\): .*use --allow-future if you mean it$`),
    );
    const allowed = await runDaily(t.session, loadConfig({}), { date: future, allowFuture: true }, createEventStream());
    expect(allowed.window.anchor).toBe(future);
  });
});

describe('a pglite: directory that does not exist', () => {
  const missing = join(testTempDir('missing'), 'typo');

  test('is refused (exit 2) by run, dry run, backfill, verify and report, and created by migrate', async () => {
    const env = { DATABASE_URL: `pglite:${missing}` };
    for (const args of [
      ['--date', '2025-11-01'],
      ['--dry-run'],
      ['backfill', '--from', '2025-10-01', '--to', '2025-10-02'],
      ['verify'],
      ['report'],
    ]) {
      const result = await runMain(args, env);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.lines).toEqual([
        `[ERROR] the embedded database directory ${missing} does not exist: check DATABASE_URL=pglite:${missing} (a typo?), or create the database there with \`aggregate-features-daily migrate\``,
      ]);
      expect(existsSync(missing)).toBe(false);
    }
    expect((await runMain(['migrate'], env)).code).toBe(0);
    expect(existsSync(missing)).toBe(true);
  });
});

describe('the embedded directory lock', () => {
  const backend = pgliteBackend('guards_lock');
  const lockFile = join(backend.url.slice('pglite:'.length), '.aggregate-features-daily.lock');
  const open = () => backend.open();

  test('a stale lock with this process’s own pid (an earlier pid 1) is taken over', async () => {
    // As an earlier container's pid 1 left it: the same pid (ours), the same host, another token.
    writeFileSync(lockFile, `${process.pid}\n${hostname()}\nleft-by-an-earlier-process\n`);
    const db = await open();
    await db.close();
    expect(existsSync(lockFile)).toBe(false);
    // The older format, the pid alone.
    writeFileSync(lockFile, `${process.pid}\n`);
    await (await open()).close();
  });

  test('a lock file that names no owner yet is held while new, and taken over once old', async () => {
    // Another process has created it and not yet written its pid (it does right after): taking
    // it for stale let two processes started together both run.
    writeFileSync(lockFile, '');
    await expect(open()).rejects.toThrow(/another process is starting on the embedded database/);
    // Left empty by a process killed in that instant, a minute ago: stale.
    const aMinuteAgo = new Date(Date.now() - 60_000);
    utimesSync(lockFile, aMinuteAgo, aMinuteAgo);
    await (await open()).close();
    expect(existsSync(lockFile)).toBe(false);
  });

  test('a lock this process holds, or a live process holds, is respected (exit 3)', async () => {
    const db = await open();
    try {
      await expect(open()).rejects.toThrow(LockHeldError);
    } finally {
      await db.close();
    }
    writeFileSync(lockFile, `${process.ppid}\n${hostname()}\nanother-live-process\n`);
    await expect(open()).rejects.toThrow(new RegExp(`another process \\(pid ${process.ppid}\\) is using the embedded database`));
    writeFileSync(lockFile, `1\nanother-container\ntoken\n`);
    await expect(open()).rejects.toThrow(
      /another process \(pid 1 on host another-container\) .* if that container is gone, remove the lock file/,
    );
    rmSync(lockFile);
  });
});

const server = await serverBackend('guards_server');
/** 'test' as an int4: the test's own advisory locks, apart from the job's. */
const testLockNamespace = 0x74657374;

describe.runIf(server)('migrations, runs and lost connections (server)', () => {
  let db: Database;
  let session: Session;
  beforeAll(async () => {
    db = await server!.open();
    session = await db.connect();
    await prepareSchema(session);
    await session.query(generate(3000));
    await session.query(sql`analyze attempt`);
  });
  afterAll(async () => {
    session?.release();
    await db?.close();
  });

  test('a run racing a migration: exit 3 while it applies, then the new schema is checked before writing', async () => {
    const migrator = await db.connect();
    const runner = await db.connect();
    try {
      await session.query(sql`truncate features_topic_daily`);
      // A migration of a newer version that lasts until the test lets it finish (it waits for an
      // advisory lock the test holds): meanwhile it holds the migrations key exclusively.
      await session.query(sql`select pg_advisory_lock(${testLockNamespace}, 1)`);
      const newer = [
        ...loadMigrations(),
        { version: 999, name: '999_newer', sql: `select pg_advisory_xact_lock(${testLockNamespace}, 1)`, checksum: 'x' },
      ];
      const migrating = migrate(migrator, newer);
      await waitFor(
        async () =>
          (
            await session.query(
              // This database only: runs of other databases on the same server hold the same key.
              sql`select 1 from pg_locks where locktype = 'advisory' and classid = ${lockKeys.namespace} and objid = ${lockKeys.migrations} and granted and pid <> pg_backend_pid()
                 and database = (select oid from pg_database where datname = current_database())`,
            )
          ).rowCount,
        { what: 'the migration to hold the migrations key', intervalMs: 20 },
      );
      await expect(runDaily(runner, loadConfig({}), { date: '2025-11-01' }, createEventStream())).rejects.toThrow(
        /^a migration is being applied to this database .*nothing was written/,
      );
      await session.query(sql`select pg_advisory_unlock(${testLockNamespace}, 1)`);
      await migrating;
      await expect(runDaily(runner, loadConfig({}), { date: '2025-11-01' }, createEventStream())).rejects.toThrow(
        /has migration 999_newer, which this version of the job does not know/,
      );
      expect(await readFeatures(session)).toEqual([]);
    } finally {
      await session.query(sql`select pg_advisory_unlock_all()`);
      await session.query(sql`delete from aggregate_features_migrations where version = 999`);
      migrator.release();
      runner.release();
    }
  });

  test('a migration waits for a running writer', async () => {
    const writer = await db.connect();
    const migrator = await db.connect();
    try {
      await writer.query(sql`select pg_advisory_lock_shared(${lockKeys.namespace}, ${lockKeys.migrations})`);
      let done = false;
      const migrating = migrate(migrator).then(() => (done = true));
      await waitFor(
        async () =>
          (
            await session.query(
              sql`select 1 from pg_locks where locktype = 'advisory' and classid = ${lockKeys.namespace} and objid = ${lockKeys.migrations} and not granted
                 and database = (select oid from pg_database where datname = current_database())`,
            )
          ).rowCount,
        { what: 'the migration to wait for the writer', intervalMs: 20 },
      );
      expect(done).toBe(false);
      await writer.query(sql`select pg_advisory_unlock_shared(${lockKeys.namespace}, ${lockKeys.migrations})`);
      await migrating;
      expect(done).toBe(true);
    } finally {
      writer.release();
      migrator.release();
    }
  });

  test('a connection killed during a backfill is retried and the backfill succeeds', async () => {
    await session.query(sql`truncate features_topic_daily`);
    const child = spawn(process.execPath, [cliPath, 'backfill', '--from', '2025-10-05', '--to', '2025-11-01'], {
      env: { PATH: process.env.PATH, DATABASE_URL: server!.url },
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const done = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
    let exited = false;
    void done.then(() => (exited = true));
    const pid = await waitFor(
      async () =>
        (
          await session.query<{ pid: number }>(
            sql`select pid from pg_stat_activity where datname = current_database() and query like '%agg_computed%' and state = 'active' and pid <> pg_backend_pid()`,
          )
        ).rows[0]?.pid,
      { what: 'the backfill to run its statement', intervalMs: 10, until: () => exited },
    );
    expect(pid, `the backfill ended before its statement was seen: ${stderr}`).toBeDefined();
    await session.query(sql`select pg_terminate_backend(${pid})`);
    expect(await done, stderr).toBe(0);
    expect(stderr).toMatch(/^\[WARN\] Transient failure \(.*\); retrying in \d+ ms \(attempt 2 of 3\)$/m);
    const verify = await runMain(['verify', '--from', '2025-10-05', '--to', '2025-11-01'], { DATABASE_URL: server!.url });
    expect(verify.code, verify.stderr).toBe(0);
  });
});
