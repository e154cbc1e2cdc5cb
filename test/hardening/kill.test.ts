/**
 * kill -9 at random points (SPEC §7 "Atomicity"): real runs of `node dist/cli.js` over a data
 * set big enough that a run takes a second or more are killed many times, at random moments
 * and at chosen phases (computing, deleting stale rows, upserting, just after the commit),
 * each way of killing on a window that is empty and on one that already holds the rows of
 * other attempts. `npm test` kills 12 times on the server (every way × both windows) and 3
 * times on PGlite; the nightly size (TEST_NIGHTLY=1) 36 and 9 times. After every kill each day of the window must hold exactly its rows from before
 * the run or exactly those the run computes (the oracle's), no day mixed; rows outside the
 * window are untouched; and a clean re-run converges to the oracle exactly.
 *
 * On the server the phase of each kill is read from pg_stat_activity just before the kill; one
 * kill in six is made certain to land inside the write transaction: the test holds a SHARE lock
 * on the table, so the run waits at its first write (the delete of stale rows, or the insert
 * into a window that held none) until it is killed there.
 * On PGlite (a smaller loop) the phase is read from the log lines the run printed, the killed
 * process leaves its directory lock file behind, and the next run must take it over.
 * Every wait is for a condition with a deadline (test/support/wait.ts); the only fixed delays
 * are the random kill moments themselves.
 */
import { sessionOf } from '../../src/database/db.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { oracle, type OracleAttempt } from '../oracle/oracle.js';
import { pgliteBackend, serverBackend, type Backend } from '../support/backends.js';
import { runCli, runMain } from '../support/cli.js';
import { nightly } from '../support/property.js';
import { waitFor } from '../support/wait.js';
import { raw, sql } from '../../src/sql/tag.js';
import {
  byDay,
  daysOf,
  deriveChangedAttemptsSql,
  generateAttemptsSql,
  readAttempts,
  readRows,
  randomPause,
  serverClient,
  snapshotOutside,
  spawnCli,
  testApplicationName,
  withDb,
  type Queryable,
  type Spawned,
} from '../support/hardening.js';

const anchor = '2025-11-04';
const since = '2025-10-28'; // anchor − 7 (AGG_LOOKBACK_DAYS=7)
const previousAnchor = '2025-10-27'; // a run before the loop fills the 8 days before the window
const windowDays = daysOf(since, anchor);
const range = { since, anchor };
const dataStart = '2025-10-01'; // 35 days of attempts: the window plus the 27 days its improvement index reads

type Label = 'empty' | 'S0' | 'S1';
const sources: Record<Exclude<Label, 'empty'>, string> = { S0: 'attempt_s0', S1: 'attempt_s1' };

interface KillRecord {
  backend: string;
  mode: 'fresh' | 'populated';
  strategy: string;
  phase: string;
  killed: boolean;
  afterMs: number;
  windowState: string;
  runLog: string;
  lingerMs: number;
}

const report: KillRecord[] = [];

afterAll(() => {
  if (report.length === 0) return;
  const count = (pick: (r: KillRecord) => string) =>
    report.reduce<Record<string, number>>((acc, r) => ({ ...acc, [pick(r)]: (acc[pick(r)] ?? 0) + 1 }), {});
  const killed = report.filter((r) => r.killed);
  console.log(
    '[kill -9 report] ' +
      JSON.stringify(
        {
          attempts: report.length,
          kills: killed.length,
          byBackend: count((r) => `${r.backend}${r.killed ? '' : ' (finished first)'}`),
          byPhase: count((r) => `${r.backend}: ${r.phase}`),
          windowAfterKill: count((r) => `${r.backend}: ${r.windowState}`),
          runLogAfterKill: count((r) => `${r.backend}: ${r.runLog}`),
          maxOrphanBackendMs: Math.max(0, ...report.map((r) => r.lingerMs)),
          rowsLost: 0,
        },
        null,
        1,
      ),
  );
});

/** The oracle's rows of the window for each source, per day; 'empty' is a window without rows. */
async function expectedPerDay(db: Queryable): Promise<Record<Label, Map<string, string>>> {
  const expected = async (table: string) => {
    const attempts: OracleAttempt[] = await readAttempts(db, table);
    const rows = oracle(attempts, { since, anchor, timezone: 'UTC', includeTheta: false, improvementMode: 'accuracy' });
    const days = byDay(rows, windowDays);
    for (const [day, text] of days) expect(text, `source ${table} has rows on ${day}`).not.toBe('');
    return days;
  };
  return { empty: byDay([], windowDays), S0: await expected(sources.S0), S1: await expected(sources.S1) };
}

/**
 * Classifies each day of the window as holding the rows from before the run, those of the
 * run's source, or neither (which fails the test: a torn day or lost rows).
 */
function classifyDays(
  actual: Map<string, string>,
  before: Map<string, Label>,
  target: Label,
  expected: Record<Label, Map<string, string>>,
): { perDay: Map<string, Label>; summary: string } {
  const perDay = new Map<string, Label>();
  const kinds = new Set<string>();
  for (const day of windowDays) {
    const beforeLabel = before.get(day)!;
    const text = actual.get(day)!;
    if (text === expected[target].get(day)) {
      perDay.set(day, target);
      kinds.add(text === expected[beforeLabel].get(day) ? 'unchanged' : 'new');
    } else if (text === expected[beforeLabel].get(day)) {
      perDay.set(day, beforeLabel);
      kinds.add('old');
    } else {
      const rows = text === '' ? 0 : text.split('\n').length;
      throw new Error(
        `day ${day} holds neither its rows from before the run (${beforeLabel}) nor the run's (${target}): ${rows} rows, ` +
          `expected ${expected[beforeLabel].get(day)!.split('\n').length} or ${expected[target].get(day)!.split('\n').length}`,
      );
    }
  }
  const summary = kinds.has('new') && kinds.has('old') ? 'days mixed (each whole)' : kinds.has('new') ? 'all new' : 'all old';
  return { perDay, summary };
}

function uniform(state: Map<string, Label>): Label | undefined {
  const labels = new Set(state.values());
  return labels.size === 1 ? [...labels][0] : undefined;
}

const runEnv = (backend: Backend, label: Exclude<Label, 'empty'>) => ({
  DATABASE_URL: backend.url,
  AGG_SOURCE: sources[label],
  AGG_LOOKBACK_DAYS: '7',
  AGG_TIMEZONE: 'UTC',
});

/** A run to its end, which must succeed (in this process: it only sets the window up or checks convergence). */
async function cleanRun(backend: Backend, label: Exclude<Label, 'empty'>, date = anchor): Promise<void> {
  const result = await runMain(['--date', date], runEnv(backend, label));
  expect(result.code, result.stderr).toBe(0);
}

/**
 * A run to its end as a process of its own, like the runs that are killed, which must succeed;
 * returns how long it took, start-up included: the range of the random kill moments.
 */
async function timedProcessRun(backend: Backend, label: Exclude<Label, 'empty'>): Promise<number> {
  const started = Date.now();
  const result = await runCli(['--date', anchor], runEnv(backend, label));
  expect(result.code, result.stderr).toBe(0);
  return Date.now() - started;
}

// ---------------------------------------------------------------------------------------------
// The server: 12 kills (36 nightly), phase read from pg_stat_activity.

const serverKills = nightly ? 36 : 12;
const pgliteKills = nightly ? 9 : 3;

const server = await serverBackend('hardening_kill');

/** The phases of a run, in order, recognised by the statement its backend runs. */
const phases: { label: string; order: number; pattern: RegExp }[] = [
  { label: 'run log: finish', order: 8, pattern: /update aggregate_features_runs|pg_advisory_unlock/i },
  { label: 'commit', order: 7, pattern: /^\s*commit/i },
  { label: 'write: upsert', order: 6, pattern: /insert into features_topic_daily/i },
  { label: 'write: delete stale', order: 5, pattern: /delete from features_topic_daily/i },
  { label: 'run log: start', order: 3, pattern: /insert into aggregate_features_runs/i },
  { label: 'compute', order: 4, pattern: /^\s*begin|agg_computed|agg_failed/i },
  { label: 'checks', order: 1, pattern: /aggregate_features_migrations|to_regclass|where false/i },
  { label: 'settings, lock, window', order: 2, pattern: /set_config|advisory_lock|aggregate_features_runs|::date/i },
];

interface Observation {
  label: string;
  order: number;
  backends: number;
}

/** What the job's backends are doing now (the test's own connections excluded). */
async function observe(client: pg.Client): Promise<Observation> {
  const result = await client.query<{ state: string | null; query: string | null }>(
    `select state, query from pg_stat_activity
     where datname = current_database() and pid <> pg_backend_pid()
       and backend_type = 'client backend' and application_name <> $1`,
    [testApplicationName],
  );
  let best: Observation = { label: 'startup (not connected)', order: 0, backends: result.rows.length };
  for (const row of result.rows) {
    const phase = phases.find((p) => p.pattern.test(row.query ?? ''));
    if (phase === undefined) continue;
    const between = row.state === 'idle in transaction';
    const order = phase.order + (between ? 0.5 : 0);
    if (order >= best.order) best = { label: between ? `after ${phase.label}` : phase.label, order, backends: result.rows.length };
  }
  if (best.order === 0 && result.rows.length > 0) best = { ...best, label: 'connected, idle' };
  return best;
}

/** Waits until the job has no backend left (a killed client's backend finishes its statement first). */
async function waitForBackendsGone(client: pg.Client): Promise<number> {
  const started = Date.now();
  await waitFor(async () => (await observe(client)).backends === 0, { what: 'the killed run to have no backend left', intervalMs: 20 });
  return Date.now() - started;
}

/** Whether a backend of the job waits for a lock in its first write (held by the test): a delete or an insert. */
async function waitsInFirstWrite(client: pg.Client): Promise<boolean> {
  const result = await client.query<{ n: number }>(
    `select count(*)::int as n from pg_stat_activity
     where datname = current_database() and application_name <> $1 and backend_type = 'client backend'
       and wait_event_type = 'Lock' and query ~* '(delete from|insert into) features_topic_daily'`,
    [testApplicationName],
  );
  return result.rows[0]!.n > 0;
}

describe.runIf(server)('kill -9 on the PostgreSQL server', () => {
  const backend = server!;
  let client: pg.Client;
  let expected: Record<Label, Map<string, string>>;
  let outside: string[];
  let cleanRunMs = 0;

  beforeAll(async () => {
    expect((await runMain(['migrate'], { DATABASE_URL: backend.url })).code).toBe(0);
    client = await serverClient(backend.url);
    await client.query(generateAttemptsSql(sources.S0, { rows: 300_000, students: 200, topics: 8, days: 35, start: dataStart }));
    await client.query(deriveChangedAttemptsSql(sources.S0, sources.S1, { days: 35, start: dataStart }));
    expected = await expectedPerDay(sessionOf(client));
    // Rows outside the window, which no run of the loop may touch.
    await cleanRun(backend, 'S0', previousAnchor);
    outside = await snapshotOutside(sessionOf(client), range);
    expect(outside.length).toBeGreaterThan(1000);
    // A clean run, timed: the random kills are spread over its duration.
    cleanRunMs = await timedProcessRun(backend, 'S0');
    expect(byDay(await readRows(sessionOf(client), range), windowDays)).toEqual(expected.S0);
  });

  afterAll(async () => {
    await client?.end();
  });

  test(`${serverKills} kills at random points and in every phase: each day old or new, nothing lost, then convergence`, async () => {
    // 'write: first write' is made certain by a lock the test holds; the phases of the
    // others are whatever pg_stat_activity shows just before the kill.
    const strategies = ['random', 'compute', 'write: first write', 'write: upsert', 'random', 'committed'] as const;
    const targetOrder: Record<string, number> = { compute: 4, 'write: upsert': 6 };
    let state = new Map<string, Label>(windowDays.map((d) => [d, 'S0']));
    let kills = 0;
    let attempts = 0;
    const runIds = async () =>
      new Set((await client.query<{ run_id: string }>('select run_id from aggregate_features_runs')).rows.map((r) => r.run_id));

    while (kills < serverKills) {
      expect(attempts, 'too many runs finished before they could be killed').toBeLessThan(serverKills * 2);
      // Every way of killing on both kinds of window: the six ways on a fresh window, then on a populated one, and again.
      const mode = Math.floor(attempts / strategies.length) % 2 === 0 ? 'fresh' : 'populated';
      const strategy = strategies[attempts % strategies.length]!;
      attempts++;

      // Prepare the window: empty, or holding the rows of one source (then the run switches source).
      if (mode === 'fresh') {
        await client.query('delete from features_topic_daily where date between $1::date and $2::date', [since, anchor]);
        state = new Map(windowDays.map((d) => [d, 'empty']));
      } else if (uniform(state) === undefined || uniform(state) === 'empty') {
        await cleanRun(backend, 'S0');
        state = new Map(windowDays.map((d) => [d, 'S0']));
      }
      const current = uniform(state);
      const target: Exclude<Label, 'empty'> = current === 'S0' ? 'S1' : current === 'S1' ? 'S0' : attempts % 4 < 2 ? 'S1' : 'S0';
      expect(classifyDays(byDay(await readRows(sessionOf(client), range), windowDays), state, target, expected).summary).toBe('all old');

      // Start the run and kill it.
      const seenRunIds = await runIds();
      // SHARE on the table (compatible with the run's reads, not with its writes): the run
      // waits at its first write (the delete of stale rows, or the insert into a window that
      // held none: a run deletes only what its comparison found stale), inside its transaction.
      const blocker = strategy === 'write: first write' ? await serverClient(backend.url) : undefined;
      await blocker?.query('begin; lock table features_topic_daily in share mode');
      const run: Spawned = spawnCli(['--date', anchor], runEnv(backend, target));
      let exited = false;
      void run.done.then(() => (exited = true));
      const until = () => exited;
      let observation: Observation = { label: 'startup (not connected)', order: 0, backends: 0 };
      if (strategy === 'random') {
        await randomPause(Math.random() * cleanRunMs * 1.1);
        if (!exited) observation = await observe(client);
      } else if (strategy === 'committed') {
        // The run prints its Rows: line right after COMMIT: kill it there (run log not yet finished).
        await waitFor(() => /\[INFO\] Rows:/.test(run.stderr()), { what: "the run's Rows: line", intervalMs: 1, until });
        observation = { label: 'just after commit', order: 7.5, backends: 1 };
      } else if (blocker) {
        await waitFor(() => waitsInFirstWrite(client), { what: 'the run to wait at its first write', until });
        observation = { label: 'write: first write (waiting for the lock the test holds)', order: 5, backends: 1 };
      } else {
        await waitFor(
          async () => {
            observation = await observe(client);
            return observation.order >= targetOrder[strategy]!;
          },
          { what: `the run to reach ${strategy}`, intervalMs: 2, until },
        );
      }
      const killed = !exited && run.child.kill('SIGKILL');
      const outcome = await run.done;
      if (blocker) {
        await blocker.query('rollback');
        await blocker.end();
      }
      const wasKilled = killed && outcome.signal === 'SIGKILL';
      if (!wasKilled) expect(outcome.code, outcome.stderr).toBe(0);
      const lingerMs = await waitForBackendsGone(client);

      // Check: every day old or new, nothing outside the window touched, the run log honest.
      const rows = await readRows(sessionOf(client), range);
      const { perDay, summary } = classifyDays(byDay(rows, windowDays), state, target, expected);
      expect(await snapshotOutside(sessionOf(client), range)).toEqual(outside);
      const log = await client.query<{ run_id: string; outcome: string }>('select run_id, outcome from aggregate_features_runs');
      const fresh = log.rows.filter((r) => !seenRunIds.has(r.run_id));
      expect(fresh.length).toBeLessThanOrEqual(1);
      const runLog = fresh.length === 0 ? 'no record' : `record ${fresh[0]!.outcome}`;
      if (!wasKilled) expect(runLog).toBe('record success');
      // A record that says success means the window was committed.
      if (runLog === 'record success') expect(summary).not.toBe('all old');
      state = perDay;
      if (wasKilled) kills++;
      report.push({
        backend: 'postgres',
        mode,
        strategy,
        phase: wasKilled ? observation.label : 'finished before the kill',
        killed: wasKilled,
        afterMs: outcome.ms,
        windowState: summary,
        runLog,
        lingerMs,
      });
    }

    // The kills hit the write itself, not only the computation before it: every kill of the
    // 'write: first write' strategy (the run waits there until killed) and every 'committed' one.
    const inWrite = report.filter((r) => r.backend === 'postgres' && r.killed && /write|commit/.test(r.phase));
    expect(inWrite.length).toBeGreaterThanOrEqual(serverKills / 4);
    const heldAtFirstWrite = report.filter((r) => r.strategy === 'write: first write');
    expect(heldAtFirstWrite.length).toBeGreaterThan(0);
    expect(heldAtFirstWrite.every((r) => r.killed)).toBe(true);

    // A clean re-run converges exactly, for either source; rows outside the window untouched.
    for (const label of ['S1', 'S0'] as const) {
      await cleanRun(backend, label);
      expect(byDay(await readRows(sessionOf(client), range), windowDays)).toEqual(expected[label]);
    }
    expect(await snapshotOutside(sessionOf(client), range)).toEqual(outside);
    const log = await client.query<{ outcome: string; n: number }>(
      'select outcome, count(*)::int as n from aggregate_features_runs group by outcome order by outcome',
    );
    console.log(`[kill -9 report] server run log after the loop: ${JSON.stringify(log.rows)}`);
  });
});

// ---------------------------------------------------------------------------------------------
// PGlite: 3 kills (9 nightly); the killed process leaves a stale directory lock that the next run takes over.

describe('kill -9 on PGlite', () => {
  const backend = pgliteBackend('hardening_kill');
  const directory = backend.url.slice('pglite:'.length);
  const lockFile = join(directory, '.aggregate-features-daily.lock');
  let expected: Record<Label, Map<string, string>>;
  let outside: string[];
  let cleanRunMs = 0;

  beforeAll(async () => {
    expect((await runMain(['migrate'], { DATABASE_URL: backend.url })).code).toBe(0);
    expected = await withDb(backend, async (db) => {
      await db.query(raw(generateAttemptsSql(sources.S0, { rows: 40_000, students: 80, topics: 6, days: 35, start: dataStart })));
      await db.query(raw(deriveChangedAttemptsSql(sources.S0, sources.S1, { days: 35, start: dataStart })));
      return expectedPerDay(db);
    });
    await cleanRun(backend, 'S0', previousAnchor);
    cleanRunMs = await timedProcessRun(backend, 'S0');
    outside = await withDb(backend, async (db) => {
      expect(byDay(await readRows(db, range), windowDays)).toEqual(expected.S0);
      return snapshotOutside(db, range);
    });
    expect(outside.length).toBeGreaterThan(500);
  });

  test(`${pgliteKills} kills: each day old or new, the stale lock taken over by the next run, then convergence`, async () => {
    const strategies = ['write', 'random', 'committed'] as const;
    let state = new Map<string, Label>(windowDays.map((d) => [d, 'S0']));
    let kills = 0;
    let attempts = 0;
    while (kills < pgliteKills) {
      expect(attempts).toBeLessThan(pgliteKills * 3);
      const mode = attempts % 2 === 0 ? 'populated' : 'fresh';
      const strategy = strategies[attempts % strategies.length]!;
      attempts++;
      if (mode === 'fresh') {
        await withDb(backend, (db) =>
          db.query(sql`delete from features_topic_daily where date between ${since}::date and ${anchor}::date`),
        );
        state = new Map(windowDays.map((d) => [d, 'empty']));
      } else if (uniform(state) === undefined || uniform(state) === 'empty') {
        await cleanRun(backend, 'S0');
        state = new Map(windowDays.map((d) => [d, 'S0']));
      }
      const current = uniform(state);
      const target: Exclude<Label, 'empty'> = current === 'S0' ? 'S1' : current === 'S1' ? 'S0' : 'S1';

      const run = spawnCli(['--date', anchor], runEnv(backend, target));
      let exited = false;
      void run.done.then(() => (exited = true));
      if (strategy === 'random') {
        await randomPause(300 + Math.random() * Math.max(0, cleanRunMs - 300));
      } else {
        // PGlite prints "Aggregating …" after computing, before deleting and upserting; "Rows:" after COMMIT.
        const line = strategy === 'write' ? /\[INFO\] Aggregating/ : /\[INFO\] Rows:/;
        await waitFor(() => line.test(run.stderr()), { what: `the log line ${line}`, intervalMs: 1, until: () => exited });
      }
      const printed = run.stderr();
      const phase = /\[INFO\] Rows:/.test(printed)
        ? 'after commit'
        : /\[INFO\] Aggregating/.test(printed)
          ? 'write (delete stale, upsert, commit)'
          : existsSync(lockFile)
            ? 'open, check, compute'
            : 'startup (before the directory lock)';
      const killed = !exited && run.child.kill('SIGKILL');
      const outcome = await run.done;
      const wasKilled = killed && outcome.signal === 'SIGKILL';
      if (!wasKilled) expect(outcome.code, outcome.stderr).toBe(0);

      // The killed process's lock file is left behind, naming a dead process …
      if (wasKilled && existsSync(lockFile)) expect(readFileSync(lockFile, 'utf8').split('\n')[0]).toBe(String(run.pid));
      // … and the next run takes it over (a dry run: it writes nothing, so the state stays as the kill left it).
      const dry = await runMain(['--date', anchor, '--dry-run'], runEnv(backend, target));
      expect(dry.code, dry.stderr).toBe(0);
      expect(existsSync(lockFile)).toBe(false);

      const { perDay, summary, runLog } = await withDb(backend, async (db) => {
        const classified = classifyDays(byDay(await readRows(db, range), windowDays), state, target, expected);
        expect(await snapshotOutside(db, range)).toEqual(outside);
        const last = await db.query<{ outcome: string }>(sql`select outcome from aggregate_features_runs order by started_at desc limit 1`);
        return { ...classified, runLog: `last record ${last.rows[0]?.outcome ?? 'none'}` };
      });
      state = perDay;
      if (wasKilled) kills++;
      report.push({
        backend: 'pglite',
        mode,
        strategy,
        phase: wasKilled ? phase : 'finished before the kill',
        killed: wasKilled,
        afterMs: outcome.ms,
        windowState: summary,
        runLog,
        lingerMs: 0,
      });
    }

    // A kill that left a lock file: the next real run (not a dry run) takes it over too. The
    // run is killed as soon as its lock file names it: it has the directory, and opening the
    // database and computing are still ahead of it.
    const run = spawnCli(['--date', anchor], runEnv(backend, 'S1'));
    const lockedBy = () => {
      try {
        return readFileSync(lockFile, 'utf8').split('\n')[0]!.trim(); // the holder's pid is the first line
      } catch {
        return ''; // not there yet
      }
    };
    await waitFor(() => lockedBy() === String(run.pid), { what: "the run's directory lock file" });
    run.child.kill('SIGKILL');
    expect((await run.done).signal).toBe('SIGKILL');
    expect(readFileSync(lockFile, 'utf8').split('\n')[0]).toBe(String(run.pid));
    await cleanRun(backend, 'S1');
    expect(existsSync(lockFile)).toBe(false);
    report.push({
      backend: 'pglite',
      mode: 'populated',
      strategy: 'after the lock file',
      phase: 'open, check, compute',
      killed: true,
      afterMs: 0,
      windowState: 'then a normal run took the lock over',
      runLog: '-',
      lingerMs: 0,
    });

    await withDb(backend, async (db) => {
      expect(byDay(await readRows(db, range), windowDays)).toEqual(expected.S1);
    });
    await cleanRun(backend, 'S0');
    await withDb(backend, async (db) => {
      expect(byDay(await readRows(db, range), windowDays)).toEqual(expected.S0);
      expect(await snapshotOutside(db, range)).toEqual(outside);
    });
  });
});
