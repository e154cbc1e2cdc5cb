/**
 * `backfill` from the command line, as an operator or the Indexed Job runs it: its log lines and
 * progress (plain lines, JSON, a bar on a terminal), exit codes for bad flags, a range in the
 * future and a held lock, and resuming after the process is killed in the middle.
 */
import { spawn } from 'node:child_process';
import { execFile } from 'node:child_process';
import { beforeAll, describe, expect, test } from 'vitest';
import { acquireWriterLock } from '../src/database/lock.js';
import { oracle } from './oracle/oracle.js';
import { byKey } from './support/arbitraries.js';
import { allBackends, withSession } from './support/backends.js';
import { cliPath, runMain } from './support/cli.js';
import { loadAttempts, prepareSchema, readFeatures } from './support/data.js';
import { addDays, history } from './support/history.js';
import { sql } from '../src/sql/tag.js';

const backends = await allBackends('backfill_cli');
const attempts = history({ first: '2025-01-01', days: 60, seed: 7 });

/** Opens the backend, runs `work` on a session, closes it again (a PGlite directory admits one process). */
describe('usage errors (no database needed)', () => {
  const env = { DATABASE_URL: 'postgres://x@127.0.0.1:1/db' };
  test.each([
    [['backfill', '--from', '2025-01-01'], /required option '--to <YYYY-MM-DD>' not specified/],
    [['backfill', '--to', '2025-01-01'], /required option '--from <YYYY-MM-DD>' not specified/],
    [['backfill', '--from', '2025-02-30', '--to', '2025-03-01'], /--from "2025-02-30" is not a calendar date/],
    [['backfill', '--from', '2025-03-02', '--to', '2025-03-01'], /--from 2025-03-02 is after --to 2025-03-01: the range must run forwards/],
    [['backfill', '--from', '2024-01-01', '--to', '2025-01-01'], /has 367 days, more than --max-days 366: split it, or raise --max-days/],
    [['backfill', '--from', '2025-01-01', '--to', '2025-01-31', '--max-days', '30'], /has 31 days, more than --max-days 30/],
    [['backfill', '--from', '2025-01-01', '--to', '2025-01-02', '--max-days', 'lots'], /--max-days "lots" is not accepted/],
    [['backfill', '--from', '2025-01-01', '--to', '2025-01-02', '--shard', '0/2'], /--shard "0\/2" is not accepted/],
    [['backfill', '--from', '2025-01-01', '--to', '2025-01-02', '--progress-interval', '-1'], /--progress-interval "-1" is not accepted/],
    [
      ['backfill', '--from', '2025-01-01', '--to', '2025-01-02', '--chunk-days', '0'],
      /--chunk-days "0" is not accepted: use a whole number from 1 to 366/,
    ],
    [['backfill', '--from', '2025-01-01', '--to', '2025-01-02', '--bogus'], /unknown option '--bogus'/],
  ])('%j exits 2', async (args, message) => {
    const result = await runMain(args, env);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  test('with LOG_FORMAT=json a usage error is a JSON line too', async () => {
    const result = await runMain(['backfill', '--from', '2025-01-01'], { ...env, LOG_FORMAT: 'json' });
    expect(result.code).toBe(2);
    const lines = result.stderr.trim().split('\n');
    for (const line of lines) expect(JSON.parse(line)).toMatchObject({ level: 'error', event: 'message' });
    expect(result.stderr).toMatch(/required option '--to <YYYY-MM-DD>' not specified/);
  });

  test('--help lists the new commands', async () => {
    const help = await runMain(['--help']);
    expect(help.stdout).toMatch(/backfill \[options\]/);
    expect(help.stdout).toMatch(/verify \[options\]/);
    expect(help.stdout).toMatch(/report \[options\]/);
    const backfill = await runMain(['backfill', '--help']);
    expect(backfill.code).toBe(0);
    expect(backfill.stdout).toMatch(/--allow-future/);
    expect(backfill.stdout).toMatch(/--max-days <n>/);
    expect(backfill.stdout).toMatch(/\(default:\s+366\)/);
  });
});

describe.each(backends)('backfill from the command line ($name)', (backend) => {
  const env = () => ({ DATABASE_URL: backend.url });

  beforeAll(async () => {
    await withSession(backend, async (session) => {
      await prepareSchema(session);
      await loadAttempts(session, attempts);
      // The same attempts behind a view that sleeps once per statement, for as long as
      // slow_attempt_pause says: at 0.25 s a chunk takes ≥ 0.25 s, so the process can be killed in
      // the middle of a backfill; at 0 the same command then resumes at full speed.
      await session.query(sql`create table slow_attempt_pause (seconds float8 not null); insert into slow_attempt_pause values (0.25)`);
      await session.query(
        // Materialized, so that a plan that rescans the view (a nested loop over it) sleeps once, not per row.
        sql`create view slow_attempt as with s as materialized (select pg_sleep((select seconds from slow_attempt_pause))) select a.* from attempt a, s`,
      );
    });
  });

  describe('the log and the terminal', () => {
    test('log lines: start, first and last progress with an ETA, ripple, rows, summary; the run log', async () => {
      await withSession(backend, (s) => s.query(sql`truncate features_topic_daily; truncate aggregate_features_runs`));
      const result = await runMain(['backfill', '--from', '2025-02-01', '--to', '2025-02-14', '--chunk-days', '7'], env());
      expect(result.code).toBe(0);
      const truth = oracle(attempts, {
        since: '2025-02-01',
        anchor: '2025-02-14',
        timezone: 'UTC',
        includeTheta: false,
        improvementMode: 'accuracy',
      });
      expect(result.lines[0]).toBe('[INFO] Backfilling 2025-02-01..2025-02-14: 14 days, shard 1/1, each chunk of days in one transaction');
      expect(result.lines[1]).toMatch(/^\[INFO\] Backfill progress: 7\/14 days \(50\.0%\), through 2025-02-07; elapsed \S+, ETA \S+$/);
      expect(result.lines.at(-4)).toMatch(
        /^\[INFO\] Backfill progress: 14\/14 days \(100\.0%\), through 2025-02-14; elapsed \S+, ETA 0ms$/,
      );
      expect(result.lines.at(-3)).toBe('[INFO] Ripple: no stored rows after 2025-02-14; nothing to recompute');
      expect(result.lines.at(-2)).toBe(`[INFO] Rows: inserted=${truth.length}, updated=0, unchanged=0, deleted=0`);
      expect(result.lines.at(-1)).toMatch(new RegExp(`^\\[INFO\\] Summary: processed=${truth.length}, failed=0, duration_ms=\\d+$`));
      await withSession(backend, async (session) => {
        expect(byKey(await readFeatures(session))).toEqual(byKey(truth));
      });

      // A backfill before stored days ripples into them.
      const earlier = await runMain(
        ['backfill', '--from', '2025-01-25', '--to', '2025-01-31', '--progress-interval', '0', '--chunk-days', '2'],
        env(),
      );
      expect(earlier.code).toBe(0);
      expect(earlier.lines.filter((l) => l.includes('Backfill progress'))).toHaveLength(4);
      expect(earlier.lines).toContain('[INFO] Ripple: recomputed improvement of the stored rows on 2025-02-01..2025-02-14: updated=0');
    });

    test('LOG_FORMAT=json: one object per line with level, time, run id, message and fields', async () => {
      const result = await runMain(['backfill', '--from', '2025-02-10', '--to', '2025-02-12'], { ...env(), LOG_FORMAT: 'json' });
      expect(result.code).toBe(0);
      const records = result.stderr
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const runIds = new Set(records.map((r) => r.run_id));
      expect(runIds.size).toBe(1);
      expect(records.every((r) => typeof r.time === 'string' && typeof r.msg === 'string' && r.level === 'info')).toBe(true);
      expect(records.map((r) => r.event)).toEqual([
        'backfill_started',
        'backfill_progress',
        'ripple_finished',
        'rows_written',
        'run_finished',
      ]);
      expect(records[0]).toMatchObject({ from: '2025-02-10', to: '2025-02-12', days: 3, shard: '1/1' });
      expect(records[1]).toMatchObject({ done: 3, total: 3, day: '2025-02-12', eta_ms: 0 });
      const [runId] = [...runIds];
      await withSession(backend, async (session) => {
        const log = await session.query(sql`select command, outcome from aggregate_features_runs where run_id = ${runId}`);
        expect(log.rows).toEqual([{ command: 'backfill', outcome: 'success' }]);
      });
    });

    // Drawing the bar does not depend on the database: on one of them (the server when configured).
    test.runIf(backend === backends.at(-1))('a progress bar on a terminal', async () => {
      // `script` gives the process a pseudo-terminal, as an operator's shell does.
      const output = await new Promise<{ code: number; text: string }>((resolve) => {
        execFile(
          'script',
          ['-qfec', `${process.execPath} ${cliPath} backfill --from 2025-02-01 --to 2025-02-06`, '/dev/null'],
          { env: { PATH: process.env.PATH, ...env() }, timeout: 120_000 },
          (error, stdout) => resolve({ code: error ? Number(error.code) : 0, text: stdout }),
        );
      });
      expect(output.code).toBe(0);
      expect(output.text).toMatch(/backfill \[=+\] 100% \| 6\/6 days \| through 2025-02-06 \| elapsed \S+ \| ETA \S+/);
      expect(output.text).not.toMatch(/Backfill progress:/);
      expect(output.text).toMatch(/\[INFO\] Summary: processed=\d+, failed=0/);
    });
  });

  describe('refusals, a kill and the lock', () => {
    test('refuses a range that ends in the future (exit 2) unless --allow-future', async () => {
      const today = await withSession(
        backend,
        async (s) => (await s.query<{ d: string }>(sql`select (now() at time zone 'UTC')::date::text as d`)).rows[0]!.d,
      );
      const future = addDays(today, 2);
      const refused = await runMain(['backfill', '--from', today, '--to', future], env());
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(
        new RegExp(`--to ${future} is in the future \\(today is \\d{4}-\\d\\d-\\d\\d in UTC\\).*--allow-future`),
      );
      const allowed = await runMain(['backfill', '--from', today, '--to', future, '--allow-future'], env());
      expect(allowed.code).toBe(0);
    });

    test('killed in the middle, the same command resumes: nothing skipped, nothing duplicated', async () => {
      await withSession(backend, (s) => s.query(sql`truncate features_topic_daily; truncate aggregate_features_runs`));
      const from = '2025-01-20';
      const to = '2025-02-18'; // 30 days in chunks of 3, ≥ 2.5 s through the slow view
      const args = [cliPath, 'backfill', '--from', from, '--to', to, '--progress-interval', '0', '--chunk-days', '3'];
      const environment = { PATH: process.env.PATH, ...env(), AGG_SOURCE: 'slow_attempt' };
      const killedAt = await new Promise<number>((resolve, reject) => {
        const child = spawn(process.execPath, args, { env: environment, stdio: ['ignore', 'ignore', 'pipe'] });
        let seen = '';
        let done = 0;
        child.stderr.on('data', (chunk: Buffer) => {
          seen += chunk.toString();
          const match = /Backfill progress: (\d+)\/30/.exec(
            seen
              .split('\n')
              .filter((l) => l.includes('progress'))
              .at(-1) ?? '',
          );
          if (match && Number(match[1]) >= 5 && done === 0) {
            done = Number(match[1]);
            child.kill('SIGKILL');
          }
        });
        child.on('exit', (_code, signal) => (signal === 'SIGKILL' ? resolve(done) : reject(new Error(`not killed: ${seen}`))));
      });
      expect(killedAt).toBeGreaterThanOrEqual(5);

      const partial = await withSession(backend, async (session) => {
        const rows = await readFeatures(session);
        const log = await session.query<{ outcome: string }>(sql`select outcome from aggregate_features_runs where command = 'backfill'`);
        const stamps = await session.query<{ key: string; computed_at: string }>(
          sql`select user_id || topic_id || date as key, computed_at::text as computed_at from features_topic_daily order by 1`,
        );
        return { rows, outcomes: log.rows.map((r) => r.outcome), stamps: stamps.rows };
      });
      const days = new Set(partial.rows.map((r) => r.date));
      expect(days.size).toBeGreaterThanOrEqual(killedAt);
      expect(days.size).toBeLessThan(30); // killed in the middle
      expect([...days].sort()[0]).toBe(from); // the days before the kill, in order
      expect(partial.outcomes).toEqual(['running']); // the killed run never finished
      const truth = oracle(attempts, { since: from, anchor: to, timezone: 'UTC', includeTheta: false, improvementMode: 'accuracy' });
      // Every committed day is whole: exactly the oracle's rows of those days.
      expect(byKey(partial.rows)).toEqual(byKey(truth.filter((r) => days.has(r.date))));

      await withSession(backend, (s) => s.query(sql`update slow_attempt_pause set seconds = 0`));
      const resumed = await runMain(['backfill', '--from', from, '--to', to], { ...env(), AGG_SOURCE: 'slow_attempt' });
      expect(resumed.code).toBe(0);
      expect(resumed.lines.at(-2)).toBe(
        `[INFO] Rows: inserted=${truth.length - partial.rows.length}, updated=0, unchanged=${partial.rows.length}, deleted=0`,
      );
      await withSession(backend, async (session) => {
        expect(byKey(await readFeatures(session))).toEqual(byKey(truth));
        // The days written before the kill were not rewritten.
        const stamps = await session.query<{ key: string; computed_at: string }>(
          sql`select user_id || topic_id || date as key, computed_at::text as computed_at from features_topic_daily order by 1`,
        );
        const before = new Map(partial.stamps.map((s) => [s.key, s.computed_at]));
        expect(stamps.rows.filter((s) => before.has(s.key)).every((s) => before.get(s.key) === s.computed_at)).toBe(true);
        // The killed run's record is closed as abandoned by the run that resumed.
        const log = await session.query<{ outcome: string; error: string | null }>(
          sql`select outcome, error from aggregate_features_runs where command = 'backfill' order by started_at`,
        );
        expect(log.rows).toEqual([
          { outcome: 'failed', error: 'abandoned: the process ended without recording an outcome' },
          { outcome: 'success', error: null },
        ]);
      });
    });

    test.runIf(backend.name === 'postgres')('a held lock on the shard exits 3 and writes nothing; other shards run', async () => {
      const db = await backend.open();
      const holder = await db.connect();
      try {
        const release = await acquireWriterLock(holder, 2, 4);
        const blocked = await runMain(['backfill', '--from', '2025-02-01', '--to', '2025-02-02', '--shard', '2/4'], env());
        expect(blocked.code).toBe(3);
        expect(blocked.stderr).toMatch(/another session holds the write lock for shard 2\/4; nothing was written/);
        const other = await runMain(['backfill', '--from', '2025-02-01', '--to', '2025-02-02', '--shard', '3/4'], env());
        expect(other.code).toBe(0);
        expect(other.lines[0]).toBe('[INFO] Backfilling 2025-02-01..2025-02-02: 2 days, shard 3/4, each chunk of days in one transaction');
        await release();
      } finally {
        holder.release();
        await db.close();
      }
    });
  });
});
