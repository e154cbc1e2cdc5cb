/**
 * Metrics of writing runs: the exposition text of an outcome, and the CLI pushing to a
 * Pushgateway-compatible receiver started here (a real HTTP server on loopback) and writing a
 * node_exporter textfile: values equal the run's log, last success only on success (and kept
 * across a failure), the textfile merged across commands and written atomically, a push that
 * fails is a warning, and nothing for a dry run.
 */
import { createServer, type Server } from 'node:http';
import { readdirSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { exposition, type RunOutcome } from '../src/observe/metrics.js';
import { allBackends, withSession } from './support/backends.js';
import { runMain } from './support/cli.js';
import { loadAttempts, prepareSchema } from './support/data.js';
import { history } from './support/history.js';
import { testTempDir } from './support/resources.js';
import { sql } from '../src/sql/tag.js';

/** One sample of the text exposition format, parsed here independently of src/. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^(\w+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not an exposition line: ${line}`);
    const labels = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

describe('the exposition of an outcome', () => {
  const base: RunOutcome = {
    command: 'run',
    shard: { index: 2, count: 4 },
    success: true,
    durationMs: 8420,
    finishedAt: 1_762_050_000_000,
    counts: { combinations: 1234, failed: 0, inserted: 10, updated: 20, unchanged: 1204, deleted: 3 },
    window: { startsAt: 1_761_350_400, endsAt: 1_762_041_600 },
  };

  test('a success: every family, labelled with command and shard, HELP and TYPE gauge', async () => {
    const text = await exposition(base);
    expect(text).toMatch(/^# HELP aggregate_features_run_duration_seconds /m);
    expect(text).toMatch(/^# TYPE aggregate_features_rows gauge$/m);
    const samples = parse(text);
    expect(samples.every((s) => s.labels.command === 'run' && s.labels.shard === '2of4')).toBe(true);
    expect(value(samples, 'aggregate_features_run_duration_seconds')).toBe(8.42);
    expect(value(samples, 'aggregate_features_run_success')).toBe(1);
    expect(value(samples, 'aggregate_features_last_success_timestamp_seconds')).toBe(1_762_050_000);
    expect(value(samples, 'aggregate_features_last_run_timestamp_seconds')).toBe(1_762_050_000);
    expect(value(samples, 'aggregate_features_combinations_processed')).toBe(1234);
    expect(value(samples, 'aggregate_features_combinations_failed')).toBe(0);
    expect(value(samples, 'aggregate_features_rows', { result: 'inserted' })).toBe(10);
    expect(value(samples, 'aggregate_features_rows', { result: 'updated' })).toBe(20);
    expect(value(samples, 'aggregate_features_rows', { result: 'unchanged' })).toBe(1204);
    expect(value(samples, 'aggregate_features_rows', { result: 'deleted' })).toBe(3);
    expect(value(samples, 'aggregate_features_window_start_timestamp_seconds')).toBe(1_761_350_400);
    expect(value(samples, 'aggregate_features_window_end_timestamp_seconds')).toBe(1_762_041_600);
    expect(value(samples, 'aggregate_features_held_back_days')).toBe(0);
  });

  test('a failure: no last success, no counts or window it does not have', async () => {
    const samples = parse(
      await exposition({ command: 'run', shard: { index: 1, count: 1 }, success: false, durationMs: 5, finishedAt: 0 }),
    );
    expect(samples.map((s) => s.name).sort()).toEqual([
      'aggregate_features_held_back_days',
      'aggregate_features_last_run_timestamp_seconds',
      'aggregate_features_run_duration_seconds',
      'aggregate_features_run_success',
    ]);
    expect(value(samples, 'aggregate_features_run_success')).toBe(0);
  });

  test('a run that held days back says how many, with the HELP the alert is written against', async () => {
    const text = await exposition({
      command: 'run',
      shard: { index: 1, count: 1 },
      success: false,
      durationMs: 5,
      finishedAt: 0,
      heldBackDays: 2,
    });
    expect(text).toMatch(
      /^# HELP aggregate_features_held_back_days Days the last run refused to publish \(incomplete newest day or shrunk day\)\.$/m,
    );
    expect(value(parse(text), 'aggregate_features_held_back_days')).toBe(2);
  });

  test('a run with failed combinations is not a success', async () => {
    const counts = { ...base.counts!, failed: 2 };
    const samples = parse(await exposition({ ...base, success: false, counts }));
    expect(value(samples, 'aggregate_features_last_success_timestamp_seconds')).toBeUndefined();
    expect(value(samples, 'aggregate_features_combinations_failed')).toBe(2);
  });
});

/** A Pushgateway-compatible receiver: accepts PUT/POST/DELETE /metrics/job/<job>/..., records them. */
interface Push {
  method: string;
  url: string;
  body: string;
  authorization: string | undefined;
}

const backends = await allBackends('metrics');
const attempts = history({ first: '2025-05-01', days: 20, seed: 3 });

describe.each(backends)('the CLI publishes metrics ($name)', (backend) => {
  let server: Server;
  let gateway: string;
  const pushes: Push[] = [];
  let status = 200;
  let directory: string;
  let textfile: string;

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        const ok = /^\/metrics\/job\/[^/]+(\/[^/]+\/[^/]+)*$/.test(req.url ?? '') && ['PUT', 'POST', 'DELETE'].includes(req.method ?? '');
        pushes.push({ method: req.method ?? '', url: req.url ?? '', body, authorization: req.headers.authorization });
        res.statusCode = ok ? status : 400;
        res.end(ok ? '' : 'bad request');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    gateway = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    directory = testTempDir('metrics');
    textfile = join(directory, 'aggregate_features_daily.prom');
    await withSession(backend, async (session) => {
      await prepareSchema(session);
      await loadAttempts(session, attempts);
    });
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  beforeEach(() => {
    pushes.length = 0;
    status = 200;
  });

  const env = (extra: Record<string, string> = {}) => ({
    DATABASE_URL: backend.url,
    PUSHGATEWAY_URL: gateway,
    METRICS_TEXTFILE: textfile,
    ...extra,
  });

  describe('what a run publishes', () => {
    test('a daily run: pushed (POST, grouped by command and shard) and written, equal to its log', async () => {
      const before = Date.now() / 1000;
      const result = await runMain(['--date', '2025-05-15'], env());
      expect(result.code).toBe(0);
      const rows = /Rows: inserted=(\d+), updated=(\d+), unchanged=(\d+), deleted=(\d+)/.exec(result.stderr)!.slice(1).map(Number);
      const processed = Number(/processed=(\d+)/.exec(result.stderr)![1]);
      const duration = Number(/duration_ms=(\d+)/.exec(result.stderr)![1]);

      expect(pushes).toHaveLength(1);
      expect(pushes[0]).toMatchObject({ method: 'POST', url: '/metrics/job/aggregate_features_daily/command/run/shard/1of1' });
      const pushed = parse(pushes[0]!.body);
      const written = parse(readFileSync(textfile, 'utf8'));
      for (const samples of [pushed, written]) {
        const labels = { command: 'run', shard: '1of1' };
        expect(value(samples, 'aggregate_features_rows', { ...labels, result: 'inserted' })).toBe(rows[0]);
        expect(value(samples, 'aggregate_features_rows', { ...labels, result: 'updated' })).toBe(rows[1]);
        expect(value(samples, 'aggregate_features_rows', { ...labels, result: 'unchanged' })).toBe(rows[2]);
        expect(value(samples, 'aggregate_features_rows', { ...labels, result: 'deleted' })).toBe(rows[3]);
        expect(value(samples, 'aggregate_features_combinations_processed', labels)).toBe(processed);
        expect(value(samples, 'aggregate_features_combinations_failed', labels)).toBe(0);
        expect(value(samples, 'aggregate_features_run_duration_seconds', labels)).toBe(duration / 1000);
        expect(value(samples, 'aggregate_features_run_success', labels)).toBe(1);
        const success = value(samples, 'aggregate_features_last_success_timestamp_seconds', labels)!;
        expect(success).toBeGreaterThanOrEqual(Math.floor(before));
        expect(success).toBeLessThanOrEqual(Date.now() / 1000);
        // The window 2025-05-08 .. 2025-05-15 in UTC: from its first midnight to the end of the anchor.
        expect(value(samples, 'aggregate_features_window_start_timestamp_seconds', labels)).toBe(Date.UTC(2025, 4, 8) / 1000);
        expect(value(samples, 'aggregate_features_window_end_timestamp_seconds', labels)).toBe(Date.UTC(2025, 4, 16) / 1000);
      }
      // Written atomically: no temporary file is left beside it.
      expect(readdirSync(directory)).toEqual(['aggregate_features_daily.prom']);
    });

    test('a failed run: success 0, and the last success of before is kept (Pushgateway POST semantics; textfile merge)', async () => {
      const before = parse(readFileSync(textfile, 'utf8'));
      const lastSuccess = value(before, 'aggregate_features_last_success_timestamp_seconds', { command: 'run' });
      expect(lastSuccess).toBeGreaterThan(0);
      // An empty source for a window that holds rows: the guard fails the run (exit 1).
      await withSession(backend, (s) =>
        s.query(sql`alter table attempt rename to attempt_hidden; create table attempt (like attempt_hidden)`),
      );
      try {
        const failed = await runMain(['--date', '2025-05-15'], env());
        expect(failed.code).toBe(1);
        expect(failed.stderr).toMatch(/returned no attempts/);
      } finally {
        await withSession(backend, (s) => s.query(sql`drop table attempt; alter table attempt_hidden rename to attempt`));
      }
      expect(pushes).toHaveLength(1);
      const pushed = parse(pushes[0]!.body);
      expect(value(pushed, 'aggregate_features_run_success')).toBe(0);
      expect(value(pushed, 'aggregate_features_last_success_timestamp_seconds')).toBeUndefined();
      expect(value(pushed, 'aggregate_features_rows', { result: 'inserted' })).toBeUndefined();
      const after = parse(readFileSync(textfile, 'utf8'));
      expect(value(after, 'aggregate_features_run_success', { command: 'run' })).toBe(0);
      expect(value(after, 'aggregate_features_last_success_timestamp_seconds', { command: 'run' })).toBe(lastSuccess);
      expect(value(after, 'aggregate_features_combinations_processed', { command: 'run' })).toBe(
        value(before, 'aggregate_features_combinations_processed', { command: 'run' }),
      );
    });

    test('a sharded backfill: its own group and series, next to the daily run in the textfile', async () => {
      const result = await runMain(['backfill', '--from', '2025-05-01', '--to', '2025-05-05', '--shard', '2/3'], env());
      expect(result.code).toBe(0);
      expect(pushes.map((p) => p.url)).toEqual(['/metrics/job/aggregate_features_daily/command/backfill/shard/2of3']);
      const processed = Number(/processed=(\d+)/.exec(result.stderr)![1]);
      const samples = parse(readFileSync(textfile, 'utf8'));
      const labels = { command: 'backfill', shard: '2of3' };
      expect(value(samples, 'aggregate_features_combinations_processed', labels)).toBe(processed);
      expect(value(samples, 'aggregate_features_ripple_rows_updated', labels)).toBeGreaterThanOrEqual(0);
      expect(value(samples, 'aggregate_features_window_start_timestamp_seconds', labels)).toBe(Date.UTC(2025, 4, 1) / 1000);
      expect(value(samples, 'aggregate_features_window_end_timestamp_seconds', labels)).toBe(Date.UTC(2025, 4, 6) / 1000);
      expect(value(samples, 'aggregate_features_last_success_timestamp_seconds', { command: 'run', shard: '1of1' })).toBeGreaterThan(0);
      // One HELP and TYPE per family, however many series it has.
      const text = readFileSync(textfile, 'utf8');
      expect(text.match(/^# TYPE aggregate_features_run_success gauge$/gm)).toHaveLength(1);
    });
  });

  describe('failed pushes and textfiles, the dry run', () => {
    test('PUSHGATEWAY_JOB names the job; basic auth from the URL, its password never printed', async () => {
      const url = new URL(gateway);
      url.username = 'pusher';
      url.password = 's3cret-push';
      const result = await runMain(['--date', '2025-05-15'], env({ PUSHGATEWAY_URL: url.toString(), PUSHGATEWAY_JOB: 'features_nightly' }));
      expect(result.code).toBe(0);
      expect(pushes[0]).toMatchObject({
        url: '/metrics/job/features_nightly/command/run/shard/1of1',
        authorization: `Basic ${Buffer.from('pusher:s3cret-push').toString('base64')}`,
      });
    });

    test('a push that fails is a warning, never a failed run', async () => {
      status = 500;
      const refused = await runMain(['--date', '2025-05-15'], env({ PUSHGATEWAY_URL: 'http://pusher:s3cret-push@127.0.0.1:1' }));
      expect(refused.code).toBe(0);
      expect(refused.lines).toContainEqual(expect.stringMatching(/^\[WARN\] could not push metrics to the Pushgateway: .*ECONNREFUSED/));
      expect(refused.stdout + refused.stderr).not.toMatch(/s3cret-push/);
      const broken = await runMain(['--date', '2025-05-15'], env());
      expect(broken.code).toBe(0);
      expect(broken.lines).toContain('[WARN] could not push metrics to the Pushgateway: push failed with status 500, ');
      expect(broken.lines.at(-2)).toMatch(/^\[INFO\] Summary: processed=\d+, failed=0/);
    });

    test('a textfile that cannot be written is a warning too', async () => {
      // The directory is node_exporter's and must exist: the job does not create it.
      const missing = join(directory, 'no-such-dir', 'x.prom');
      const result = await runMain(['--date', '2025-05-15'], env({ METRICS_TEXTFILE: missing }));
      expect(result.code).toBe(0);
      const warning = result.lines.find((l) => l.startsWith('[WARN] could not write the metrics textfile'));
      expect(warning).toContain(`could not write the metrics textfile ${missing}: ENOENT`);
    });

    test('a dry run publishes nothing', async () => {
      const mtime = readFileSync(textfile, 'utf8');
      const result = await runMain(['--date', '2025-05-15', '--dry-run'], env());
      expect(result.code).toBe(0);
      expect(pushes).toHaveLength(0);
      expect(readFileSync(textfile, 'utf8')).toBe(mtime);
    });
  });
});

describe('metrics configuration errors (exit 2)', () => {
  test.each([
    [{ PUSHGATEWAY_URL: 'ftp://gateway:9091' }, /PUSHGATEWAY_URL is not accepted \(ftp:\/\/gateway:9091\)/],
    [{ PUSHGATEWAY_URL: 'pushgateway:9091' }, /PUSHGATEWAY_URL is not accepted/],
    [{ PUSHGATEWAY_URL: 'http://u:hunter2@' }, /PUSHGATEWAY_URL is not accepted/],
    [{ PUSHGATEWAY_JOB: 'bad job/name' }, /PUSHGATEWAY_JOB="bad job\/name" is not accepted/],
    [
      { METRICS_TEXTFILE: '/var/lib/node_exporter/metrics.txt' },
      /METRICS_TEXTFILE="\/var\/lib\/node_exporter\/metrics.txt" is not accepted: name a \.prom file/,
    ],
  ])('%j', async (extra, message) => {
    const result = await runMain(['--date', '2025-05-15'], { DATABASE_URL: 'postgres://x@127.0.0.1:1/db', ...extra });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/hunter2/);
  });
});
