/**
 * One writer at a time (SPEC §7): two runs started at the same moment on the server, again
 * and again: exactly one writes, the other exits 3 with the message and writes nothing (no
 * run-log record, no computed_at of its own). A dry run works while a writer holds the lock.
 * Two shards run side by side and together write exactly what one unsharded run writes (and
 * the oracle). On PGlite a second process on the same directory exits 3.
 *
 * Runs that must be processes of their own (the racing pairs, the writer and the dry run
 * beside it, the shards, the second process on PGlite) are; the runs that only set the data up
 * or check it afterwards call main() in this process.
 *
 * Where two processes must overlap, the test makes them: on the server it holds a SHARE lock
 * on features_topic_daily, so a writer waits at its first write, inside its transaction, until
 * the test lets it go; on PGlite it stops the first process (SIGSTOP) once its lock file names
 * it. Every wait is for a condition with a deadline (test/support/wait.ts), never a sleep.
 */
import { raw, sql } from '../../src/sql/tag.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { oracle, type OracleRow } from '../oracle/oracle.js';
import { pgliteBackend, serverBackend, type Backend } from '../support/backends.js';
import { runCli, runMain } from '../support/cli.js';
import { nightly } from '../support/property.js';
import { waitFor } from '../support/wait.js';
import { sessionOf } from '../../src/database/db.js';
import {
  deriveChangedAttemptsSql,
  generateAttemptsSql,
  readAttempts,
  readRows,
  rowText,
  serverClient,
  sortRows,
  spawnCli,
  testApplicationName,
  withDb,
  type Queryable,
} from '../support/hardening.js';

const anchor = '2025-11-04';
const since = '2025-10-28';
const range = { since, anchor };
const lockMessage = /^\[ERROR\] another session holds the write lock/m;
const sources = { S0: 'attempt_s0', S1: 'attempt_s1' } as const;
type Source = keyof typeof sources;

const env = (backend: Backend, source: Source) => ({
  DATABASE_URL: backend.url,
  AGG_SOURCE: sources[source],
  AGG_LOOKBACK_DAYS: '7',
  AGG_TIMEZONE: 'UTC',
});

const tally = { simultaneousPairs: 0, oneWriterOneExit3: 0, lockHeldByTest: 0, dryRunsBesideWriter: 0, shardPairs: 0, pglitePairs: 0 };
afterAll(() => console.log(`[concurrency report] ${JSON.stringify(tally)}`));

async function expectedRows(db: Queryable): Promise<Record<Source, string[]>> {
  const rows = async (table: string) =>
    sortRows(
      oracle(await readAttempts(db, table), { since, anchor, timezone: 'UTC', includeTheta: false, improvementMode: 'accuracy' }),
    ).map(rowText);
  return { S0: await rows(sources.S0), S1: await rows(sources.S1) };
}

const texts = (rows: OracleRow[]) => sortRows(rows).map(rowText);

interface RunRecord {
  run_id: string;
  shard: string;
  outcome: string;
  started_at: string;
  finished_at: string | null;
  inserted: number | null;
  updated: number | null;
  deleted: number | null;
  combinations: number | null;
}

async function runLog(db: Queryable): Promise<RunRecord[]> {
  return (
    await db.query<RunRecord>(
      sql`select run_id, shard, outcome, started_at::text as started_at, finished_at::text as finished_at,
              inserted, updated, deleted, combinations
       from aggregate_features_runs order by started_at`,
    )
  ).rows;
}

/** The job's backends waiting for a lock in their first write, a delete or an insert (a lock the test holds). */
async function waitingWriters(client: pg.Client): Promise<number> {
  const result = await client.query<{ n: number }>(
    `select count(*)::int as n from pg_stat_activity
     where datname = current_database() and application_name <> $1 and backend_type = 'client backend'
       and wait_event_type = 'Lock' and query ~* '(delete from|insert into) features_topic_daily'`,
    [testApplicationName],
  );
  return result.rows[0]!.n;
}

/**
 * Holds SHARE on features_topic_daily (compatible with reads, not with writes) while `work`
 * runs: every writer started meanwhile waits at its first write, inside its transaction.
 */
async function holdingWrites<T>(url: string, work: () => Promise<T>): Promise<T> {
  const blocker = await serverClient(url);
  try {
    await blocker.query('begin; lock table features_topic_daily in share mode');
    return await work();
  } finally {
    await blocker.query('rollback').catch(() => undefined);
    await blocker.end();
  }
}

const server = await serverBackend('hardening_concurrency');
// Rounds of two runs started together: 3 on the server and 1 on PGlite; 12 and 4 at the nightly size (TEST_NIGHTLY=1).
const pairRounds = nightly ? 12 : 3;
const pglitePairSources: readonly Source[] = nightly ? ['S1', 'S0', 'S1', 'S0'] : ['S1'];
const times = (n: number) => (n === 1 ? 'once' : `${n} times`);

describe.runIf(server)('concurrent runs on the PostgreSQL server', () => {
  const backend = server!;
  let client: pg.Client;
  let db: Queryable;
  let expected: Record<Source, string[]>;

  beforeAll(async () => {
    expect((await runMain(['migrate'], { DATABASE_URL: backend.url })).code).toBe(0);
    client = await serverClient(backend.url);
    db = sessionOf(client);
    await client.query(generateAttemptsSql(sources.S0, { rows: 200_000, students: 150, topics: 8, days: 35, start: '2025-10-01' }));
    await client.query(deriveChangedAttemptsSql(sources.S0, sources.S1, { days: 35, start: '2025-10-01' }));
    expected = await expectedRows(db);
  });

  afterAll(async () => {
    await client?.end();
  });

  describe('racing runs and the lock', () => {
    test(`two runs started together, ${times(pairRounds)}: exactly one writes, the other exits 3 and writes nothing`, async () => {
      let rounds = 0;
      let sequential = 0;
      while (rounds < pairRounds) {
        expect(sequential, 'the two runs kept missing each other').toBeLessThan(4);
        const source: Source = rounds % 2 === 0 ? 'S1' : 'S0'; // every round changes rows, so the writer's computed_at shows
        const before = await runLog(db);
        const roundStart = (await client.query<{ now: string }>('select clock_timestamp()::text as now')).rows[0]!.now;
        const [a, b] = await Promise.all([
          spawnCli(['--date', anchor], env(backend, source)).done,
          spawnCli(['--date', anchor], env(backend, source)).done,
        ]);
        tally.simultaneousPairs++;
        const after = await runLog(db);
        const added = after.filter((r) => !before.some((x) => x.run_id === r.run_id));
        const codes = [a.code, b.code].sort();
        if (codes[0] === 0 && codes[1] === 0) {
          // They did not overlap at all (one finished before the other started): not this test's case.
          expect(added).toHaveLength(2);
          expect(added[1]!.started_at >= added[0]!.finished_at!).toBe(true);
          sequential++;
          continue;
        }
        rounds++;
        tally.oneWriterOneExit3++;
        expect(codes, a.stderr + b.stderr).toEqual([0, 3]);
        const loser = a.code === 3 ? a : b;
        expect(loser.stderr).toMatch(lockMessage);
        expect(loser.stderr.trim().split('\n')).toHaveLength(1);
        expect(loser.stdout).toBe('');
        // Only the writer left a record, and only the writer's timestamp is on the rows it changed.
        expect(added).toHaveLength(1);
        expect(added[0]).toMatchObject({ outcome: 'success', shard: '1/1' });
        const stamps = await client.query<{ computed_at: string; n: number }>(
          `select computed_at::text as computed_at, count(*)::int as n from features_topic_daily
         where computed_at >= $1::timestamptz group by 1`,
          [roundStart],
        );
        // A writer that changed nothing (the source is as an earlier round left it) stamps no row.
        const changed = added[0]!.inserted! + added[0]!.updated!;
        expect(stamps.rows.map((r) => r.computed_at)).toEqual(changed > 0 ? [added[0]!.started_at] : []);
        if (changed > 0) expect(stamps.rows[0]!.n).toBe(changed);
        expect(texts(await readRows(db, range))).toEqual(expected[source]);
      }
    });

    test('while the lock is held (here by the test itself): a run exits 3 at once, writing nothing; a dry run succeeds', async () => {
      const holder = await serverClient(backend.url);
      try {
        // The job's key: namespace 'afd1' as an int4, key 1 for an unsharded writer (src/database/lock.ts).
        expect((await holder.query<{ ok: boolean }>('select pg_try_advisory_lock($1, 1) as ok', [0x61666431])).rows[0]!.ok).toBe(true);
        const before = await runLog(db);
        const rowsBefore = texts(await readRows(db, range));
        for (const source of ['S0', 'S1'] as const) {
          const run = await runMain(['--date', anchor], env(backend, source));
          tally.lockHeldByTest++;
          expect(run.code).toBe(3);
          expect(run.stderr).toMatch(lockMessage);
          expect(run.stderr).toMatch(/nothing was written/);
        }
        expect(await runLog(db)).toEqual(before);
        expect(texts(await readRows(db, range))).toEqual(rowsBefore);

        const dry = await runMain(['--date', anchor, '--dry-run'], env(backend, 'S0'));
        tally.dryRunsBesideWriter++;
        expect(dry.code, dry.stderr).toBe(0);
        expect(dry.stderr).toMatch(
          /^\[INFO\] Dry run, nothing written: would_insert=\d+, would_update=\d+, unchanged=\d+, would_delete=\d+$/m,
        );
        expect(await runLog(db)).toEqual(before);
      } finally {
        await holder.end();
      }
      // Released: the next run writes again.
      expect((await runMain(['--date', anchor], env(backend, 'S0'))).code).toBe(0);
      expect(texts(await readRows(db, range))).toEqual(expected.S0);
    });

    test('a dry run while a real writer is in its transaction succeeds and writes nothing', async () => {
      for (let round = 0; round < 2; round++) {
        const source: Source = round === 0 ? 'S1' : 'S0';
        const before = await runLog(db);
        const writer = spawnCli(['--date', anchor], env(backend, source));
        let writerExited = false;
        void writer.done.then(() => (writerExited = true));
        const d = await holdingWrites(backend.url, async () => {
          // The writer holds the job's lock and waits inside its write transaction …
          await waitFor(() => waitingWriters(client), { what: 'the writer to wait at its first write', until: () => writerExited });
          const held = await client.query<{ n: number }>(
            `select count(*)::int as n from pg_locks l join pg_stat_activity a using (pid)
           where l.locktype = 'advisory' and l.classid = $1 and l.objid = 1 and l.granted and a.xact_start is not null
             and a.datname = current_database()`,
            [0x61666431],
          );
          expect(held.rows[0]!.n).toBe(1);
          // … while the dry run runs from start to end.
          const dry = await spawnCli(['--date', anchor, '--dry-run'], env(backend, source)).done;
          expect(writerExited).toBe(false);
          return dry;
        });
        const w = await writer.done;
        tally.dryRunsBesideWriter++;
        expect(d.code, d.stderr).toBe(0);
        expect(d.stderr).toMatch(/Dry run, nothing written/);
        expect(w.code, w.stderr).toBe(0);
        // One new record, the writer's: the dry run added none.
        const added = (await runLog(db)).filter((r) => !before.some((x) => x.run_id === r.run_id));
        expect(added.map((r) => r.outcome)).toEqual(['success']);
        expect(texts(await readRows(db, range))).toEqual(expected[source]);
      }
    });
  });

  describe('shards side by side', () => {
    test('shards 1/2 and 2/2 side by side both succeed and together equal one unsharded run and the oracle', async () => {
      for (const source of ['S1', 'S0'] as const) {
        await client.query('delete from features_topic_daily');
        const before = await runLog(db);
        // Both shards reach their write transaction before either may write: they overlap for certain.
        const shards = ['1/2', '2/2'].map((shard) => spawnCli(['--date', anchor, '--shard', shard], env(backend, source)));
        let exited = 0;
        for (const shard of shards) void shard.done.then(() => exited++);
        await holdingWrites(backend.url, () =>
          waitFor(async () => (await waitingWriters(client)) === 2, {
            what: 'both shards to wait at their first write',
            until: () => exited > 0,
          }),
        );
        const [one, two] = await Promise.all([shards[0]!.done, shards[1]!.done]);
        tally.shardPairs++;
        expect(one.code, one.stderr).toBe(0);
        expect(two.code, two.stderr).toBe(0);
        const shardRecords = (await runLog(db)).filter((r) => !before.some((x) => x.run_id === r.run_id));
        expect(shardRecords.map((r) => r.shard).sort()).toEqual(['1/2', '2/2']);
        expect(shardRecords.every((r) => r.outcome === 'success' && r.inserted! > 0)).toBe(true);
        // They really ran side by side: each started before the other finished.
        const [p, q] = shardRecords;
        expect(p!.started_at < q!.finished_at! && q!.started_at < p!.finished_at!).toBe(true);
        const sharded = texts(await readRows(db, range));
        expect(sharded).toEqual(expected[source]);

        // One unsharded run over the same data finds nothing to change …
        const unshardedOver = await runMain(['--date', anchor], env(backend, source));
        expect(unshardedOver.code).toBe(0);
        expect(unshardedOver.stderr).toMatch(/\[INFO\] Rows: inserted=0, updated=0, unchanged=\d+, deleted=0/);
        // … and written from scratch it writes the same rows, as many as the shards together.
        await client.query('delete from features_topic_daily');
        const unsharded = await runMain(['--date', anchor], env(backend, source));
        expect(unsharded.code).toBe(0);
        expect(texts(await readRows(db, range))).toEqual(sharded);
        const total = (await runLog(db)).at(-1)!;
        expect(total.inserted).toBe(shardRecords[0]!.inserted! + shardRecords[1]!.inserted!);
      }
    });

    test('two runs of the same shard: one exits 3 naming the shard', async () => {
      const [a, b] = await Promise.all([
        spawnCli(['--date', anchor, '--shard', '2/2'], env(backend, 'S1')).done,
        spawnCli(['--date', anchor, '--shard', '2/2'], env(backend, 'S1')).done,
      ]);
      tally.simultaneousPairs++;
      const codes = [a.code, b.code].sort();
      // Both 0 only if they did not overlap at all; the shard's run is short, so allow that, but never two writers at once.
      expect([
        [0, 3],
        [0, 0],
      ]).toContainEqual(codes);
      if (codes[1] === 3) {
        tally.oneWriterOneExit3++;
        expect((a.code === 3 ? a : b).stderr).toMatch(/holds the write lock for shard 2\/2; nothing was written/);
      }
    });
  });
});

describe('two processes on one PGlite directory', () => {
  const backend = pgliteBackend('hardening_concurrency');
  const lockFile = join(backend.url.slice('pglite:'.length), '.aggregate-features-daily.lock');
  let expected: Record<Source, string[]>;
  const embeddedMessage = /^\[ERROR\] another process \(pid \d+\) is using the embedded database .*; wait for it to finish/m;
  // Started together, the second may find the lock file created but its owner not yet written.
  const embeddedOrStartingMessage =
    /^\[ERROR\] another process (\(pid \d+\) is using|is starting on) the embedded database .*; wait for it to finish/m;

  beforeAll(async () => {
    expect((await runMain(['migrate'], { DATABASE_URL: backend.url })).code).toBe(0);
    expected = await withDb(backend, async (db) => {
      await db.query(raw(generateAttemptsSql(sources.S0, { rows: 40_000, students: 80, topics: 6, days: 35, start: '2025-10-01' })));
      await db.query(raw(deriveChangedAttemptsSql(sources.S0, sources.S1, { days: 35, start: '2025-10-01' })));
      return expectedRows(db);
    });
  });

  test('a second process exits 3 while the first holds the directory; the first finishes', async () => {
    const first = spawnCli(['--date', anchor], env(backend, 'S0'));
    let firstExited = false;
    void first.done.then(() => (firstExited = true));
    // The first holds the directory once its lock file names it; stopped there (SIGSTOP), it
    // keeps holding it, however fast or slow the machine, until the test lets it go on.
    const lockedBy = () => {
      try {
        return readFileSync(lockFile, 'utf8').split('\n')[0]!.trim(); // the holder's pid is the first line
      } catch {
        return ''; // not there yet
      }
    };
    await waitFor(() => lockedBy() === String(first.pid), { what: "the first process's lock file", until: () => firstExited });
    expect(first.child.kill('SIGSTOP')).toBe(true);
    let second: Awaited<ReturnType<typeof runCli>>;
    let dry: Awaited<ReturnType<typeof runCli>>;
    try {
      second = await runCli(['--date', anchor], env(backend, 'S1'));
      dry = await runCli(['--date', anchor, '--dry-run'], env(backend, 'S1'));
    } finally {
      first.child.kill('SIGCONT');
    }
    const firstDone = await first.done;
    tally.pglitePairs++;
    expect(second.code).toBe(3);
    expect(second.stderr).toMatch(embeddedMessage);
    expect(second.stderr).toContain(`pid ${first.pid}`);
    // On PGlite even a dry run needs the directory to itself: it waits its turn the same way.
    expect(dry.code).toBe(3);
    expect(firstDone.code, firstDone.stderr).toBe(0);
    expect(existsSync(lockFile)).toBe(false);
    await withDb(backend, async (db) => {
      expect(texts(await readRows(db, range))).toEqual(expected.S0);
      expect((await runLog(db)).map((r) => r.outcome)).toEqual(['success']);
    });
  });

  test(`two processes started together, ${times(pglitePairSources.length)}: one runs, the other exits 3`, async () => {
    for (const source of pglitePairSources) {
      const [a, b] = await Promise.all([
        spawnCli(['--date', anchor], env(backend, source)).done,
        spawnCli(['--date', anchor], env(backend, source)).done,
      ]);
      tally.pglitePairs++;
      expect([a.code, b.code].sort(), a.stderr + b.stderr).toEqual([0, 3]);
      expect((a.code === 3 ? a : b).stderr).toMatch(embeddedOrStartingMessage);
      await withDb(backend, async (db) => {
        expect(texts(await readRows(db, range))).toEqual(expected[source]);
      });
    }
  });
});
