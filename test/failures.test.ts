/**
 * SPEC §7 under bad days: a source view that raises on one row fails only the combinations
 * that row touches; SIGTERM stops a run with nothing written; a backend killed mid-run is
 * retried; a lock held too long ends the run; an empty source deletes nothing; missed nights
 * widen the window.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import type { Database, Session } from '../src/database/db.js';
import { runDaily } from '../src/pipeline/daily.js';
import { lockKeys, shardKey } from '../src/database/lock.js';
import { createEventStream, type RunEvent } from '../src/observe/events.js';
import { oracle, type OracleAttempt } from './oracle/oracle.js';
import { byKey } from './support/arbitraries.js';
import { allBackends, serverBackend, useSession } from './support/backends.js';
import { cliPath, runMain } from './support/cli.js';
import { attempt, insertBusyAttempts, loadAttempts, prepareSchema, readFeatures } from './support/data.js';
import { waitFor } from './support/wait.js';
import { raw, sql } from '../src/sql/tag.js';

const attempts: OracleAttempt[] = [
  attempt('u1', 'algebra', '2025-10-20T10:00:00Z', 1000),
  attempt('u1', 'algebra', '2025-10-30T10:00:00Z', 1200, false),
  attempt('u1', 'geometry', '2025-10-31T10:00:00Z', 900),
  attempt('u2', 'algebra', '2025-10-29T10:00:00Z', 800),
  attempt('u2', 'algebra', '2025-10-30T10:00:00Z', 666), // the malformed row
  attempt('u2', 'algebra', '2025-10-31T10:00:00Z', 700, false),
  attempt('u2', 'geometry', '2025-10-30T10:00:00Z', 500),
  attempt('u3', 'algebra', '2025-10-30T11:00:00Z', 400),
];

const raisingView = `
  create or replace function afd_check(v int) returns int language plpgsql immutable as $$
  begin
    if v = 666 then raise exception 'malformed response_time_ms %', v; end if;
    return v;
  end $$;
  create or replace view attempt_checked as
    select student_id, topic_id, completed_at, correct, afd_check(response_time_ms) as response_time_ms, hint_used
    from attempt`;

const backends = await allBackends('failures');

describe.each(backends)('failure isolation and guards ($name)', (backend) => {
  const t = useSession(backend, async (session) => {
    await prepareSchema(session);
    await t.session.query(raw(raisingView));
  });

  test('a view that raises on one row fails only the combinations that read it', async () => {
    await loadAttempts(t.session, attempts);
    await t.session.query(sql`truncate features_topic_daily`);
    // An old value of a combination that will fail must survive untouched.
    await t.session.query(
      sql`insert into features_topic_daily (user_id, topic_id, date, attempts) values ('u2', 'algebra', '2025-10-30', 42)`,
    );
    const events: RunEvent[] = [];
    const config = loadConfig({ AGG_SOURCE: 'attempt_checked' });
    const result = await runDaily(
      t.session,
      config,
      { date: '2025-11-01' },
      createEventStream((e) => events.push(e)),
    );

    // Only 2025-10-30 reads the bad value: the next day's improvement reads that attempt's
    // correctness, not its response time, so u2/algebra/2025-10-31 is computed exactly.
    const failed = events.filter((e) => e.type === 'combination_failed');
    expect(failed).toEqual([
      { type: 'combination_failed', userId: 'u2', topicId: 'algebra', date: '2025-10-30', error: 'malformed response_time_ms 666' },
    ]);
    expect(result.failed).toBe(1);
    const isFailed = (r: { user_id: string; topic_id: string; date: string }) =>
      r.user_id === 'u2' && r.topic_id === 'algebra' && r.date === '2025-10-30';
    const expected = oracle(attempts, {
      since: '2025-10-25',
      anchor: '2025-11-01',
      timezone: 'UTC',
      includeTheta: false,
      improvementMode: 'accuracy',
    }).filter((r) => !isFailed(r));
    const stored = byKey(await readFeatures(t.session));
    expect(stored.filter((r) => !isFailed(r))).toEqual(byKey(expected));
    expect(stored.find(isFailed)?.attempts).toBe(42);
    const run = await t.session.query<{ outcome: string; failed: number; error: string }>(
      sql`select outcome, failed, error from aggregate_features_runs where run_id = ${result.runId}`,
    );
    // The run log names the failed combinations, for `report`.
    expect(run.rows[0]).toEqual({ outcome: 'failed', failed: 1, error: 'failed: user=u2 topic=algebra date=2025-10-30' });
  });

  test('an empty source for a window with rows deletes nothing and fails; --allow-empty-source wipes', async () => {
    await loadAttempts(t.session, attempts);
    const config = loadConfig({});
    await runDaily(t.session, config, { date: '2025-11-01' }, createEventStream());
    const before = await readFeatures(t.session);
    expect(before.length).toBeGreaterThan(0);
    await loadAttempts(t.session, []);
    await expect(runDaily(t.session, config, { date: '2025-11-01' }, createEventStream())).rejects.toThrow(
      /returned no attempts for 2025-10-25..2025-11-01, but features_topic_daily holds \d+ rows there; nothing was deleted/,
    );
    expect(await readFeatures(t.session)).toEqual(before);
    const wiped = await runDaily(t.session, config, { date: '2025-11-01', allowEmptySource: true }, createEventStream());
    expect(wiped.deleted).toBe(before.length);
    expect(await readFeatures(t.session)).toEqual([]);
  });

  test('missed nights widen the window back to the day after the last success, bounded', async () => {
    await loadAttempts(t.session, attempts);
    await t.session.query(sql`truncate features_topic_daily, aggregate_features_runs`);
    const config = loadConfig({ AGG_LOOKBACK_DAYS: '1' });
    await runDaily(t.session, config, { date: '2025-10-20' }, createEventStream());
    // The last success anchored 2025-10-20; a run for 2025-11-01 would start at 2025-10-31.
    const planned = await t.session.query<{ since: string }>(sql`select ((now() at time zone 'UTC')::date - 1 - 1)::text as since`);
    const events: RunEvent[] = [];
    const result = await runDaily(
      t.session,
      config,
      { maxCatchUpDays: 3650 },
      createEventStream((e) => events.push(e)),
    );
    expect(result.window.requestedSince).toBe(planned.rows[0]!.since);
    expect(result.window.since).toBe('2025-10-21');
    expect(events.some((e) => e.type === 'message' && /widening the window to since=2025-10-21/.test(e.message))).toBe(true);
    const bounded = await runDaily(t.session, config, { maxCatchUpDays: 0 }, createEventStream());
    expect(bounded.window.since).toBe(bounded.window.requestedSince);
  });
});

const server = await serverBackend('failures_cli');

describe.runIf(server)('signals, killed backends and lock timeouts (server)', () => {
  const url = server!.url;
  let db: Database;
  let session: Session;
  beforeAll(async () => {
    db = await server!.open();
    session = await db.connect();
    await prepareSchema(session);
    // Enough attempts that a run takes a while: 3000 students on every other day of 35, 8 attempts a day.
    await insertBusyAttempts(session, 3000, 8);
    await session.query(sql`analyze attempt`);
  });
  afterAll(async () => {
    session?.release();
    await db?.close();
  });

  function startRun(env: Record<string, string>) {
    const child = spawn(process.execPath, [cliPath, '--date', '2025-11-01'], {
      env: { PATH: process.env.PATH, DATABASE_URL: url, ...env },
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const done = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
    const waitForStatement = () =>
      waitFor(
        async () =>
          (
            await session.query<{ pid: number }>(
              sql`select pid from pg_stat_activity where datname = current_database() and query like '%agg_computed%' and state = 'active' and pid <> pg_backend_pid()`,
            )
          ).rows[0]?.pid,
        { what: 'the run to start its statement', intervalMs: 25 },
      );
    return { child, done, waitForStatement, stderr: () => stderr };
  }

  test('SIGTERM during the write rolls back, logs it and exits 1', async () => {
    await session.query(sql`truncate features_topic_daily, aggregate_features_runs`);
    const run = startRun({ AGG_WORK_MEM: '64MB' });
    await run.waitForStatement();
    run.child.kill('SIGTERM');
    expect(await run.done).toBe(1);
    expect(run.stderr()).toMatch(
      /^\[ERROR\] stopped by SIGTERM: the unfinished window was rolled back, nothing of it was written; re-run the job$/m,
    );
    expect((await session.query(sql`select 1 from features_topic_daily`)).rowCount).toBe(0);
    const log = await session.query<{ outcome: string }>(sql`select outcome from aggregate_features_runs`);
    expect(log.rows).toEqual([{ outcome: 'failed' }]);
  });

  test('a backend terminated mid-run is retried and the run succeeds', async () => {
    await session.query(sql`truncate features_topic_daily`);
    const run = startRun({});
    const pid = await run.waitForStatement();
    await session.query(sql`select pg_terminate_backend(${pid})`);
    expect(await run.done).toBe(0);
    // The backend's parallel workers may report the termination first: "terminating
    // background worker "parallel worker" due to administrator command".
    expect(run.stderr()).toMatch(
      /^\[WARN\] Transient failure \((57P01: terminating (connection|background worker "parallel worker") due to administrator command|connection: Connection terminated unexpectedly)\); retrying in \d+ ms \(attempt 2 of 3\)$/m,
    );
    expect(run.stderr()).toMatch(/^\[INFO\] Summary: processed=\d+, failed=0/m);
    const dry = await runMain(['--date', '2025-11-01', '--dry-run'], { DATABASE_URL: url });
    expect(dry.stderr).toMatch(/would_insert=0, would_update=0, unchanged=\d+, would_delete=0/);
  });

  test('an unsharded run and any shard exclude each other; shards of one run do not', async () => {
    const holder = await db.connect();
    try {
      // As an unsharded run holds it: the shared writers key, exclusively.
      await holder.query(sql`select pg_advisory_lock(${lockKeys.namespace}, ${lockKeys.writers})`);
      const shard = await runMain(['--date', '2025-11-01', '--shard', '1/2'], { DATABASE_URL: url });
      expect(shard.code).toBe(3);
      expect(shard.stderr).toMatch(/holds the write lock for shard 1\/2; nothing was written/);
      await holder.query(sql`select pg_advisory_unlock(${lockKeys.namespace}, ${lockKeys.writers})`);
      // As shard 2/2 holds them: writers shared, its own key exclusively.
      await holder.query(
        sql`select pg_advisory_lock_shared(${lockKeys.namespace}, ${lockKeys.writers}), pg_advisory_lock(${lockKeys.namespace}, ${shardKey(2, 2)})`,
      );
      expect((await runMain(['--date', '2025-11-01'], { DATABASE_URL: url })).code).toBe(3);
      expect((await runMain(['--date', '2025-11-01', '--shard', '2/2'], { DATABASE_URL: url })).code).toBe(3);
      expect((await runMain(['--date', '2025-11-01', '--shard', '1/2'], { DATABASE_URL: url })).code).toBe(0);
    } finally {
      await holder.query(sql`select pg_advisory_unlock_all()`);
      holder.release();
    }
  });

  test('a table lock held by someone else ends the run after AGG_LOCK_TIMEOUT_MS, exit 1', async () => {
    const blocker = await db.connect();
    try {
      await blocker.query(sql`begin`);
      // ACCESS EXCLUSIVE (what ALTER TABLE takes) blocks reads too: a re-run that finds nothing
      // to change writes nothing, so a lock that blocks only writes would not stop it.
      await blocker.query(sql`lock table features_topic_daily in access exclusive mode`);
      const result = await runMain(['--date', '2025-11-01'], { DATABASE_URL: url, AGG_LOCK_TIMEOUT_MS: '300' });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/\[ERROR\] run failed: .*lock.* \(SQLSTATE 55P03\); another session held a lock/);
    } finally {
      await blocker.query(sql`rollback`);
      blocker.release();
    }
  });

  test('a first run finds rows stored while it computed: it compares with them, deletes the stale one and corrects the other', async () => {
    await session.query(sql`truncate features_topic_daily`);
    // The table is empty when the run begins, so it expects to insert every row without a comparison.
    const run = startRun({});
    await run.waitForStatement();
    const writer = await db.connect();
    try {
      // Hold the table until the run reaches it (after its computation), then store two rows:
      // one with a key the run computes but wrong values, one with a key it does not compute.
      await writer.query(sql`begin`);
      await writer.query(sql`lock table features_topic_daily in access exclusive mode`);
      await writer.query(sql`insert into features_topic_daily (user_id, topic_id, date, attempts, correct, hints)
        values ('u2', 't2', '2025-11-01', 1, 0, 0), ('u-stale', 't0', '2025-10-31', 1, 1, 0)`);
      await waitFor(
        async () =>
          (
            await session.query(
              sql`select 1 from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and query like '%features_topic_daily%'`,
            )
          ).rowCount,
        { what: 'the run to wait for features_topic_daily' },
      );
      await writer.query(sql`commit`);
    } finally {
      writer.release();
    }
    expect(await run.done).toBe(0);
    expect(run.stderr()).toMatch(/^\[INFO\] Rows: inserted=[1-9]\d*, updated=1, unchanged=0, deleted=1$/m);
    const verify = await runMain(['verify', '--date', '2025-11-01'], { DATABASE_URL: url });
    expect(verify.stdout + verify.stderr).not.toMatch(/u-stale/);
    expect(verify.code).toBe(0);
  });

  test('a re-run whose source did not change writes nothing: a lock that blocks writes does not stop it', async () => {
    expect((await runMain(['--date', '2025-11-01'], { DATABASE_URL: url })).code).toBe(0);
    const blocker = await db.connect();
    try {
      await blocker.query(sql`begin`);
      await blocker.query(sql`lock table features_topic_daily in exclusive mode`);
      const result = await runMain(['--date', '2025-11-01'], { DATABASE_URL: url, AGG_LOCK_TIMEOUT_MS: '300' });
      expect(result.stderr).toMatch(/^\[INFO\] Rows: inserted=0, updated=0, unchanged=[1-9]\d*, deleted=0$/m);
      expect(result.code).toBe(0);
    } finally {
      await blocker.query(sql`rollback`);
      blocker.release();
    }
  });

  test('the CLI prints one [ERROR] line per failed combination and exits 1', async () => {
    const small = await serverBackend('failures_cli_view');
    const env = { DATABASE_URL: small!.url };
    expect((await runMain(['migrate'], env)).code).toBe(0);
    const other = await small!.open();
    const s = await other.connect();
    try {
      await prepareSchema(s);
      await loadAttempts(s, attempts);
      await s.query(raw(raisingView));
    } finally {
      s.release();
      await other.close();
    }
    const result = await runMain(['--date', '2025-11-01'], { ...env, AGG_SOURCE: 'attempt_checked' });
    expect(result.code).toBe(1);
    expect(result.lines.filter((l) => l.startsWith('[ERROR]'))).toEqual([
      '[ERROR] user=u2 topic=algebra date=2025-10-30 error=malformed response_time_ms 666',
    ]);
    expect(result.lines.at(-1)).toMatch(/^\[INFO\] Summary: processed=7, failed=1, duration_ms=\d+$/);
  });
});
