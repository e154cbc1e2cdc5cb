/**
 * The scenarios of issue 5 against one data set on the server, in an order that leaves each
 * one's starting state to the previous: floor → first runs → EXPLAIN → re-runs → late data →
 * lookback 30/90 → shards → without the index → baseline. Each measurement is repeated and
 * its median reported; what resets the state between repetitions is not timed.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { baselineIndex, measureBaseline, type Baseline } from './baseline.js';
import { addLateAttempts, anchorDay, createCompletedAtIndex, dropCompletedAtIndex, removeLateAttempts, windowFacts } from './dataset.js';
import { explainRun } from './explain.js';
import { measureFloor, type Floor } from './floor.js';
import { bestDailyRead, describeHonest, measureScanFloor, measureWriteFloor, type BestRead } from './honest-floor.js';
import { watchBackends } from './cpu.js';
import { jobApplicationName, jobEnv, runCli, type JobRun } from './job.js';
import type { Options, Size } from './options.js';
import { runHistory } from './history.js';
import { runRanges, runShapes, shapes } from './shapes.js';
import { busyCount } from './quiet.js';
import { addDays, median, repeat } from './stats.js';
import { checkEquivalence, measureVariants, variantsOf, type ComputeSql, type VariantResult } from './variants.js';

/** One measured line of the report. */
export interface Measured {
  readonly size: string;
  readonly scenario: string;
  readonly windowAttempts?: number;
  readonly rows?: number;
  readonly wallMs?: number;
  readonly jobMs?: number;
  readonly floorMs?: number;
  /** The honest floor (honest-floor.ts): the fastest plan of each floor statement plus the unavoidable write or scan, ms. */
  readonly honestFloorMs?: number;
  /** CPU of the work: the job's Node process plus its PostgreSQL backends, ms. */
  readonly cpuMs?: number;
  /** CPU of the floor's backends, ms. */
  readonly floorCpuMs?: number;
  readonly rssMb?: number;
  readonly note?: string;
}

export interface SizeResult {
  readonly size: Size;
  readonly lines: Measured[];
  readonly floor7?: Floor;
  readonly baseline?: Baseline;
  readonly baselineNoIndex?: Baseline;
  readonly first?: Summary;
  readonly rerun?: Summary;
  readonly late?: Summary;
  readonly shards?: { wallMs: number; rssMb: number };
  /** Two shards and the unsharded run, both without parallel workers. */
  readonly serialShards?: { wallMs: number; rssMb: number; unshardedMs: number };
  readonly variants?: VariantResult[];
  readonly equivalence?: { label: string; rows: number; differing: number }[];
}

export interface Summary {
  readonly wallMs: number;
  readonly jobMs: number;
  readonly rows: number;
  readonly rssMb: number;
  /** Median CPU of Node plus the backends, ms (NaN when not measured). */
  readonly cpuMs: number;
  readonly runs: JobRun[];
}

export function summarize(runs: JobRun[]): Summary {
  return {
    wallMs: median(runs.map((r) => r.wallMs)),
    jobMs: median(runs.map((r) => r.jobMs)),
    cpuMs: median(runs.map((r) => r.nodeCpuMs + r.backendCpuMs)),
    rows: runs[0]?.processed ?? 0,
    rssMb: Math.max(...runs.map((r) => r.rssMb)),
    runs,
  };
}

export interface Context {
  readonly options: Options & { readonly cli: string };
  readonly size: Size;
  readonly client: pg.Client;
  /** A second connection that watches the backends' CPU (cpu.ts). */
  readonly monitor: pg.Client;
  readonly database: string;
  readonly databaseUrl: string;
  /** The compute statement of the build being measured, for the variants. */
  readonly computeSql?: ComputeSql;
  readonly log: (line: string) => void;
}

const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

export async function resetTarget(client: pg.Client): Promise<void> {
  await client.query('truncate features_topic_daily, aggregate_features_runs');
}

/** Runs the server scenarios of one size. */
export async function runServerScenarios(ctx: Context): Promise<SizeResult> {
  const { options, client, size, log } = ctx;
  const on = (s: Parameters<typeof options.scenarios.has>[0]) => options.scenarios.has(s);
  const lines: Measured[] = [];
  // Each line notes how many of its timed runs started on a busy machine (see quiet.ts).
  let busyBefore = busyCount();
  const push = (...measured: Measured[]) => {
    const busy = busyCount() - busyBefore;
    busyBefore = busyCount();
    for (const m of measured)
      lines.push(busy === 0 ? m : { ...m, note: `${m.note ? `${m.note}; ` : ''}**${busy} run(s) started on a busy machine**` });
  };
  const window7 = { since: addDays(anchorDay, -7), anchor: anchorDay };
  const facts7 = await windowFacts(client, window7.since, window7.anchor);
  const env7 = jobEnv(ctx.databaseUrl, { lookbackDays: 7, workMem: options.workMem });
  const dateArgs = ['--date', anchorDay];
  const result: { -readonly [K in keyof SizeResult]: SizeResult[K] } = { size, lines };
  const watch = { monitor: ctx.monitor, database: ctx.database };

  await client.query('select count(*) from attempt'); // warm the cache once; every scenario then reads warm pages

  if (on('floor') || on('daily')) {
    const floor = await measureFloor(ctx.databaseUrl, window7.since, window7.anchor, options.workMem, options.reps, watch);
    result.floor7 = floor;
    log(`  floor: (a) ${secs(floor.countMs)}, (b) ${secs(floor.aggregateMs)}, (c) ${secs(floor.countsMs)}`);
    push(
      { size: size.label, scenario: 'floor (a): count(*) of the window', windowAttempts: facts7.window, wallMs: floor.countMs },
      {
        size: size.label,
        scenario: 'floor (b): window GROUP BY, all row aggregates + median',
        windowAttempts: facts7.window,
        wallMs: floor.aggregateMs,
      },
      {
        size: size.label,
        scenario: 'floor (c): answered/correct per day, 27 days + window',
        windowAttempts: facts7.read,
        wallMs: floor.countsMs,
        note: 'attempts read',
      },
      {
        size: size.label,
        scenario: '**floor = (b) + (c)**',
        windowAttempts: facts7.window,
        wallMs: floor.floorMs,
        cpuMs: floor.floorCpuMs,
      },
    );
  }
  const floorMs = result.floor7?.floorMs;
  const floorCpuMs = result.floor7?.floorCpuMs;
  // The read part of the honest floor of lookback 7: the fastest plan of (b) and of (c).
  let best7: BestRead | undefined;
  if (result.floor7 && on('daily')) {
    best7 = await bestDailyRead(
      [{ label: 'default', floor: result.floor7 }],
      ctx.databaseUrl,
      window7.since,
      window7.anchor,
      options.workMem,
      options.reps,
      watch,
    );
    log(`  honest floor, read: ${secs(best7.readMs)} (${best7.plans})`);
  }
  const out = join(options.outDir, `explain-${size.label}.txt`);

  if (on('daily')) {
    await resetTarget(client);
    if (on('explain'))
      writeFileSync(
        out,
        `# first run (empty target)\n\n${await explainRun(client, options.cli, window7, options.workMem, { includeFloor: true })}`,
      );
    const first = summarize(
      await repeat(
        options.reps,
        () => resetTarget(client),
        () => runCli(options.cli, dateArgs, env7, watch),
      ),
    );
    result.first = first;
    const write7 = await measureWriteFloor(ctx.databaseUrl, window7.since, window7.anchor, options.reps);
    log(`  first run: ${secs(first.wallMs)} (${first.rows} rows, ${first.rssMb.toFixed(0)} MB); writing its rows ${secs(write7)}`);
    push({
      size: size.label,
      scenario: 'job: first run, empty target (lookback 7)',
      windowAttempts: facts7.window,
      rows: first.rows,
      wallMs: first.wallMs,
      jobMs: first.jobMs,
      floorMs,
      honestFloorMs: best7 && best7.readMs + write7,
      cpuMs: first.cpuMs,
      floorCpuMs,
      rssMb: first.rssMb,
      note: best7 && describeHonest(best7.readMs, best7.plans, { label: 'write', ms: write7 }),
    });

    await client.query('vacuum analyze features_topic_daily');
    if (on('explain')) {
      writeFileSync(
        out,
        `\n# re-run, no new data (target filled)\n\n${await explainRun(client, options.cli, window7, options.workMem, { includeFloor: false })}`,
        { flag: 'a' },
      );
    }
    const rerun = summarize(
      await repeat(
        options.reps,
        () => Promise.resolve(),
        () => runCli(options.cli, dateArgs, env7, watch),
      ),
    );
    result.rerun = rerun;
    const scan7 = await measureScanFloor(ctx.databaseUrl, window7.since, window7.anchor, options.reps);
    log(`  re-run: ${secs(rerun.wallMs)} (updated ${rerun.runs[0]?.updated}); one scan of the stored rows ${secs(scan7)}`);
    push({
      size: size.label,
      scenario: 'job: re-run, no new data',
      windowAttempts: facts7.window,
      rows: rerun.rows,
      wallMs: rerun.wallMs,
      jobMs: rerun.jobMs,
      floorMs,
      honestFloorMs: best7 && best7.readMs + scan7,
      cpuMs: rerun.cpuMs,
      floorCpuMs,
      rssMb: rerun.rssMb,
      note: `updated ${rerun.runs[0]?.updated ?? 0}${best7 ? `; ${describeHonest(best7.readMs, best7.plans, { label: 'scan', ms: scan7 })}` : ''}`,
    });

    await client.query('drop table if exists bench_snapshot');
    await client.query('create table bench_snapshot as select * from features_topic_daily');
    let lateRows = 0;
    const lateRuns = await repeat(
      options.reps,
      async () => {
        await removeLateAttempts(client, window7.since, window7.anchor);
        await client.query('truncate features_topic_daily');
        await client.query('insert into features_topic_daily select * from bench_snapshot');
        await client.query('vacuum analyze features_topic_daily');
        lateRows = await addLateAttempts(client, window7.since, window7.anchor);
      },
      () => runCli(options.cli, dateArgs, env7, watch),
    );
    const late = summarize(lateRuns);
    result.late = late;
    const l = late.runs[0]!;
    log(`  late re-run: ${secs(late.wallMs)} (${lateRows} late attempts; inserted ${l.inserted}, updated ${l.updated})`);
    push({
      size: size.label,
      scenario: 'job: re-run after 1% late attempts',
      windowAttempts: facts7.window + lateRows,
      rows: late.rows,
      wallMs: late.wallMs,
      jobMs: late.jobMs,
      floorMs,
      cpuMs: late.cpuMs,
      floorCpuMs,
      rssMb: late.rssMb,
      note: `${lateRows} late attempts → inserted ${l.inserted}, updated ${l.updated}, unchanged ${l.unchanged}`,
    });
    await removeLateAttempts(client, window7.since, window7.anchor);
    await client.query('drop table bench_snapshot');
  }

  if (on('lookback')) {
    for (const lookback of [30, 90]) {
      const w = { since: addDays(anchorDay, -lookback), anchor: anchorDay };
      const facts = await windowFacts(client, w.since, w.anchor);
      const floor = await measureFloor(ctx.databaseUrl, w.since, w.anchor, options.workMem, options.reps, watch);
      const env = jobEnv(ctx.databaseUrl, { lookbackDays: lookback, workMem: options.workMem });
      const s = summarize(
        await repeat(
          options.reps,
          () => resetTarget(client),
          () => runCli(options.cli, dateArgs, env, watch),
        ),
      );
      const best = await bestDailyRead(
        [{ label: 'default', floor }],
        ctx.databaseUrl,
        w.since,
        w.anchor,
        options.workMem,
        options.reps,
        watch,
      );
      const write = await measureWriteFloor(ctx.databaseUrl, w.since, w.anchor, options.reps);
      log(`  lookback ${lookback}: ${secs(s.wallMs)} (floor ${secs(floor.floorMs)}, honest ${secs(best.readMs + write)})`);
      push({
        size: size.label,
        scenario: `job: first run, lookback ${lookback}`,
        windowAttempts: facts.window,
        rows: s.rows,
        wallMs: s.wallMs,
        jobMs: s.jobMs,
        floorMs: floor.floorMs,
        honestFloorMs: best.readMs + write,
        cpuMs: s.cpuMs,
        floorCpuMs: floor.floorCpuMs,
        rssMb: s.rssMb,
        note: `floor ${secs(floor.floorMs)}; ${describeHonest(best.readMs, best.plans, { label: 'write', ms: write })}`,
      });
    }
  }

  if (on('shards')) {
    // Two shards side by side, with the server's parallel workers (as the job runs) and without
    // them (PGOPTIONS, read by pg): an unsharded run already keeps both cores busy with parallel
    // workers, so the serial pair shows what sharding itself gains.
    const serial = { ...env7, PGOPTIONS: '-c max_parallel_workers_per_gather=0' };
    const pair = (env: NodeJS.ProcessEnv) =>
      repeat(
        options.reps,
        () => resetTarget(client),
        async () => {
          const cpu = watchBackends(ctx.monitor, { database: ctx.database, applicationName: jobApplicationName });
          const t0 = performance.now();
          const [a, b] = await Promise.all([
            runCli(options.cli, [...dateArgs, '--shard', '1/2'], env),
            runCli(options.cli, [...dateArgs, '--shard', '2/2'], env),
          ]);
          const backendCpuMs = await cpu.stop();
          const stored = Number((await client.query<{ n: string }>('select count(*) as n from features_topic_daily')).rows[0]!.n);
          return {
            wallMs: performance.now() - t0,
            rows: a.processed + b.processed,
            stored,
            rssMb: Math.max(a.rssMb, b.rssMb),
            cpuMs: backendCpuMs + a.nodeCpuMs + b.nodeCpuMs,
            parts: [a.wallMs, b.wallMs],
          };
        },
      );
    const serialFirst = summarize(
      await repeat(
        options.reps,
        () => resetTarget(client),
        () => runCli(options.cli, dateArgs, serial, watch),
      ),
    );
    for (const [label, env, unsharded] of [
      ['', env7, result.first],
      [', no parallel workers', serial, serialFirst],
    ] as const) {
      const runs = await pair(env);
      const wallMs = median(runs.map((r) => r.wallMs));
      const rssMb = Math.max(...runs.map((r) => r.rssMb));
      const cpuMs = median(runs.map((r) => r.cpuMs));
      const r0 = runs[0]!;
      const reference = result.first?.rows;
      const same =
        reference === undefined
          ? ''
          : r0.stored === reference
            ? ', together = the unsharded rows'
            : `, MISMATCH: ${r0.stored} stored vs ${reference} unsharded`;
      if (label === '') result.shards = { wallMs, rssMb };
      else result.serialShards = { wallMs, rssMb, unshardedMs: serialFirst.wallMs };
      log(`  2 shards${label}: ${secs(wallMs)}${same}`);
      if (label !== '') {
        log(`  unsharded${label}: ${secs(serialFirst.wallMs)}`);
        push({
          size: size.label,
          scenario: 'job: first run, no parallel workers (`max_parallel_workers_per_gather=0`)',
          windowAttempts: facts7.window,
          rows: serialFirst.rows,
          wallMs: serialFirst.wallMs,
          jobMs: serialFirst.jobMs,
          floorMs,
          cpuMs: serialFirst.cpuMs,
          floorCpuMs,
          rssMb: serialFirst.rssMb,
        });
      }
      push({
        size: size.label,
        scenario: `job: \`--shard 1/2\` ‖ \`--shard 2/2\`, first run${label}`,
        windowAttempts: facts7.window,
        rows: r0.rows,
        wallMs,
        floorMs,
        cpuMs,
        floorCpuMs,
        rssMb,
        note: `shards ${r0.parts.map(secs).join(' / ')}${unsharded ? `; ${(unsharded.wallMs / wallMs).toFixed(2)}× the unsharded run${label}` : ''}${same}`,
      });
    }
  }

  if (on('noindex')) {
    await dropCompletedAtIndex(client);
    try {
      const floor = await measureFloor(ctx.databaseUrl, window7.since, window7.anchor, options.workMem, options.reps, watch);
      const s = summarize(
        await repeat(
          options.reps,
          () => resetTarget(client),
          () => runCli(options.cli, dateArgs, env7, watch),
        ),
      );
      log(`  without index: ${secs(s.wallMs)}; count(*) of the window ${secs(floor.countMs)}`);
      push({
        size: size.label,
        scenario: 'job: first run **without** attempt(completed_at) index',
        windowAttempts: facts7.window,
        rows: s.rows,
        wallMs: s.wallMs,
        jobMs: s.jobMs,
        floorMs,
        cpuMs: s.cpuMs,
        floorCpuMs,
        rssMb: s.rssMb,
        note: `floor without index ${secs(floor.floorMs)}; count(*) of the window ${secs(floor.countMs)} (with index ${secs(result.floor7?.countMs ?? NaN)})`,
      });
    } finally {
      await createCompletedAtIndex(client);
      await client.query('analyze attempt');
    }
  }

  if (on('history')) {
    push(
      ...(await runHistory(ctx, { floorMs, floorCpuMs }, (title, plan) => writeFileSync(out, `\n# ${title}\n\n${plan}`, { flag: 'a' }))),
    );
  }

  if (on('variants') && ctx.computeSql) {
    const params = [window7.since, window7.anchor, 'UTC', 1, 1];
    const list = variantsOf(ctx.computeSql);
    result.variants = await measureVariants(client, list, params, options.workMem, options.reps, log, watch);
    // The window 2025-10-25 … 11-01 contains Europe's DST end (Sunday 26 October has 25 hours).
    // A correctness check (the tests check the same against the oracle), so only on sizes up to
    // 1M, where the first release's statement takes seconds rather than half a minute.
    if (size.attempts <= 1_000_000)
      result.equivalence = await checkEquivalence(client, ctx.computeSql, [
        { since: window7.since, anchor: anchorDay, timezone: 'Europe/Berlin', shards: 1 },
        { since: window7.since, anchor: anchorDay, timezone: 'America/New_York', shards: 3 },
        { since: window7.since, anchor: anchorDay, timezone: 'UTC', shards: 2 },
        { since: anchorDay, anchor: anchorDay, timezone: 'UTC', shards: 1 },
        { since: addDays(anchorDay, -30), anchor: anchorDay, timezone: 'Asia/Kolkata', shards: 1 },
      ]);
    for (const e of result.equivalence ?? []) log(`  shipped vs first release, ${e.label}: ${e.rows} rows, ${e.differing} differing`);
  }

  if (on('shapes'))
    await runShapes(
      ctx,
      options.shapes.map((n) => shapes[n]!),
      push,
    );
  if (on('ranges'))
    await runRanges(
      ctx,
      options.rangeShapes.map((n) => shapes[n]!),
      options.yearRate,
      push,
    );

  if (on('baseline')) {
    await client.query(baselineIndex.create);
    try {
      result.baseline = await measureBaseline(client, window7.since, window7.anchor, options.baselineBudgetMs, options.workMem);
    } finally {
      await client.query(baselineIndex.drop);
    }
    result.baselineNoIndex = await measureBaseline(
      client,
      window7.since,
      window7.anchor,
      Math.max(2000, options.baselineBudgetMs / 3),
      options.workMem,
    );
    const b = result.baseline;
    const n = result.baselineNoIndex;
    log(
      `  baseline: ${b.perCombinationMs.toFixed(2)} ms per combination → ${secs(b.totalMs)} for ${b.combinations}; without its index ${n.perCombinationMs.toFixed(1)} ms`,
    );
    push(
      {
        size: size.label,
        scenario: 'baseline: per-combination queries, index (student_id, topic_id, completed_at)',
        windowAttempts: facts7.window,
        rows: b.combinations,
        wallMs: b.totalMs,
        floorMs,
        note: `extrapolated from ${b.sampled} combinations: ${b.perCombinationMs.toFixed(2)} ms each + listing ${secs(b.listMs)}`,
      },
      {
        size: size.label,
        scenario: 'baseline: per-combination queries, only the completed_at index',
        windowAttempts: facts7.window,
        rows: n.combinations,
        wallMs: n.totalMs,
        floorMs,
        note: `extrapolated from ${n.sampled} combinations: ${n.perCombinationMs.toFixed(1)} ms each`,
      },
    );
  }
  return result;
}
