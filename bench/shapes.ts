/**
 * Scenarios `shapes` and `ranges` (issue 14): the daily run on other shapes of data, and
 * backfill / verify over ranges, each beside its floor measured in the same run, and every
 * job's rows checked against the oracle (reference.ts).
 *
 * shapes: per data shape (dataset.ts): floor of lookback 7, first run, re-run (no new data);
 *   floor of lookback 30, first run. The rows of each first run are checked.
 * ranges: per range shape, a backfill of all 36 days on an empty target (checked), the same
 *   backfill again (nothing may change), `verify --from --to` over the 36 days (must find no
 *   drift); then a 365-day backfill of a year generated at `--year-rate` attempts a month,
 *   checked, and extrapolated linearly to the 10M-a-month rate.
 * The range floor is one GROUP BY over the range and the 27 days before it (floor.ts).
 */
import type pg from 'pg';
import { anchorDay, ensureDataset, shapes, windowFacts, yearShape, type Shape } from './dataset.js';
import { measureFloor, measureRangeFloor } from './floor.js';
import { bestDailyRead, bestRangeRead, describeHonest, measureScanFloor, measureWriteFloor } from './honest-floor.js';
import { jobEnv, runCli } from './job.js';
import { computeExpected, countDiffering } from './reference.js';
import { resetTarget, summarize, type Context, type Measured } from './scenarios.js';
import { addDays, repeat } from './stats.js';

const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** The 10M-attempts-a-month rate the issue asks the year backfill at. */
export const targetMonthlyRate = 10_000_000;

/** "rows checked: identical" or a MISMATCH note (which fails the benchmark). */
async function check(client: pg.Client, from: string, to: string, expected: number, stored: number): Promise<string> {
  const differing = await countDiffering(client, from, to);
  return differing === 0 && stored === expected
    ? `rows = oracle (${expected.toLocaleString('en-US')})`
    : `MISMATCH: ${differing} rows differ from the oracle (${stored} stored, ${expected} expected)`;
}

async function storedRows(client: pg.Client, from: string, to: string): Promise<number> {
  const r = await client.query<{ n: string }>('select count(*) as n from features_topic_daily where date between $1::date and $2::date', [
    from,
    to,
  ]);
  return Number(r.rows[0]!.n);
}

async function expectedRows(client: pg.Client, from: string, to: string): Promise<number> {
  const r = await client.query<{ n: string }>('select count(*) as n from bench_expected where date between $1::date and $2::date', [
    from,
    to,
  ]);
  return Number(r.rows[0]!.n);
}

/** Runs the `shapes` scenario for the chosen shapes. */
export async function runShapes(ctx: Context, chosen: Shape[], push: (...m: Measured[]) => void): Promise<void> {
  const { options, client, size, log } = ctx;
  const watch = { monitor: ctx.monitor, database: ctx.database };
  for (const sh of chosen) {
    const info = await ensureDataset(client, size.attempts, options.fresh, sh);
    log(
      `  shape ${sh.name}: ${info.attempts} attempts, ${info.students} students${info.generatedSeconds === undefined ? '' : `, generated in ${info.generatedSeconds.toFixed(1)} s`}`,
    );
    const expected = await computeExpected(client, sh.table, addDays(anchorDay, -(sh.days - 1)), anchorDay);
    log(`  shape ${sh.name}: oracle ${expected} rows`);
    const tag = `shape ${sh.name}`;
    for (const lookback of [7, 30]) {
      const since = addDays(anchorDay, -lookback);
      const facts = await windowFacts(client, since, anchorDay, sh.table);
      const withJit = await measureFloor(ctx.databaseUrl, since, anchorDay, options.workMem, options.reps, watch, sh.table);
      const noJit = await measureFloor(ctx.databaseUrl, since, anchorDay, options.workMem, options.reps, watch, sh.table, { jit: 'off' });
      // The job's lines are divided by the faster of the two floors (the stricter comparison).
      const floor = noJit.floorMs < withJit.floorMs ? noJit : withJit;
      const best = await bestDailyRead(
        [
          { label: 'default', floor: withJit },
          { label: 'jit off', floor: noJit },
        ],
        ctx.databaseUrl,
        since,
        anchorDay,
        options.workMem,
        options.reps,
        watch,
        sh.table,
      );
      const env = jobEnv(ctx.databaseUrl, { lookbackDays: lookback, workMem: options.workMem, source: sh.table });
      const args = ['--date', anchorDay];
      const first = summarize(
        await repeat(
          options.reps,
          () => resetTarget(client),
          () => runCli(options.cli, args, env, watch),
        ),
      );
      const note = await check(
        client,
        since,
        anchorDay,
        await expectedRows(client, since, anchorDay),
        await storedRows(client, since, anchorDay),
      );
      const write = await measureWriteFloor(ctx.databaseUrl, since, anchorDay, options.reps);
      const honest = describeHonest(best.readMs, best.plans, { label: 'write', ms: write });
      log(`  ${tag}, lookback ${lookback}: floor ${secs(floor.floorMs)}, ${honest}, first run ${secs(first.wallMs)}; ${note}`);
      push(
        {
          size: size.label,
          scenario: `${tag}: floor (b) + (c), lookback ${lookback}`,
          windowAttempts: facts.window,
          wallMs: withJit.floorMs,
          cpuMs: withJit.floorCpuMs,
          note: `(b) ${secs(withJit.aggregateMs)}, (c) ${secs(withJit.countsMs)}; ${info.students.toLocaleString('en-US')} students; ${sh.description}`,
        },
        {
          size: size.label,
          scenario: `${tag}: floor (b) + (c), lookback ${lookback}, jit off`,
          windowAttempts: facts.window,
          wallMs: noJit.floorMs,
          cpuMs: noJit.floorCpuMs,
          note: `(b) ${secs(noJit.aggregateMs)}, (c) ${secs(noJit.countsMs)}`,
        },
        {
          size: size.label,
          scenario: `job: first run, lookback ${lookback} — ${tag}`,
          windowAttempts: facts.window,
          rows: first.rows,
          wallMs: first.wallMs,
          jobMs: first.jobMs,
          floorMs: floor.floorMs,
          honestFloorMs: best.readMs + write,
          cpuMs: first.cpuMs,
          floorCpuMs: floor.floorCpuMs,
          rssMb: first.rssMb,
          note: `${note}; ${honest}`,
        },
      );
      if (lookback !== 7) continue;
      const rerun = summarize(
        await repeat(
          options.reps,
          () => Promise.resolve(),
          () => runCli(options.cli, args, env, watch),
        ),
      );
      const updated = rerun.runs.reduce((n, r) => n + r.updated + r.inserted + r.deleted, 0);
      const scan = await measureScanFloor(ctx.databaseUrl, since, anchorDay, options.reps);
      log(`  ${tag}: re-run ${secs(rerun.wallMs)} (${updated} rows written); one scan of the stored rows ${secs(scan)}`);
      push({
        size: size.label,
        scenario: `job: re-run, no new data, lookback 7 — ${tag}`,
        windowAttempts: facts.window,
        rows: rerun.rows,
        wallMs: rerun.wallMs,
        jobMs: rerun.jobMs,
        floorMs: floor.floorMs,
        honestFloorMs: best.readMs + scan,
        cpuMs: rerun.cpuMs,
        floorCpuMs: floor.floorCpuMs,
        rssMb: rerun.rssMb,
        note: `${updated === 0 ? 'nothing rewritten' : `MISMATCH: a re-run with no new data wrote ${updated} rows`}; ${describeHonest(best.readMs, best.plans, { label: 'scan', ms: scan })}`,
      });
    }
  }
}

/** Runs the `ranges` scenario: 36-day backfill, again, range verify, per shape; then the year. */
export async function runRanges(ctx: Context, chosen: Shape[], yearRate: number, push: (...m: Measured[]) => void): Promise<void> {
  const { options, client, size, log } = ctx;
  const watch = { monitor: ctx.monitor, database: ctx.database };
  const range = async (sh: Shape, attempts: number, reps: number, full: boolean, extrapolate?: number) => {
    const info = await ensureDataset(client, attempts, options.fresh, sh);
    const from = addDays(anchorDay, -(sh.days - 1));
    const to = anchorDay;
    const tag = `${sh.days}-day backfill — shape ${sh.name}`;
    log(
      `  ${tag}: ${info.attempts} attempts${info.generatedSeconds === undefined ? '' : `, generated in ${info.generatedSeconds.toFixed(1)} s`}`,
    );
    const expected = await computeExpected(client, sh.table, from, to);
    const facts = await windowFacts(client, from, to, sh.table);
    const withJit = await measureRangeFloor(ctx.databaseUrl, from, to, options.workMem, reps, sh.table, watch);
    const noJit = await measureRangeFloor(ctx.databaseUrl, from, to, options.workMem, reps, sh.table, watch, { jit: 'off' });
    const floor = noJit.ms < withJit.ms ? noJit : withJit;
    const best = await bestRangeRead(
      [
        { label: 'default', ms: withJit.ms },
        { label: 'jit off', ms: noJit.ms },
      ],
      ctx.databaseUrl,
      from,
      to,
      options.workMem,
      reps,
      sh.table,
      watch,
    );
    const env = jobEnv(ctx.databaseUrl, { lookbackDays: 7, workMem: options.workMem, source: sh.table });
    const args = ['backfill', '--from', from, '--to', to];
    const first = summarize(
      await repeat(
        reps,
        () => resetTarget(client),
        () => runCli(options.cli, args, env, watch),
      ),
    );
    const note = await check(client, from, to, expected, await storedRows(client, from, to));
    const write = await measureWriteFloor(ctx.databaseUrl, from, to, reps);
    const honest = describeHonest(best.ms, best.label, { label: 'write', ms: write });
    const scale =
      extrapolate === undefined
        ? ''
        : `; ×${extrapolate.toFixed(1)} to the 10M-a-month rate: job ≈ ${secs(first.wallMs * extrapolate)}, floor ≈ ${secs(floor.ms * extrapolate)} (linear extrapolation, not measured)`;
    log(`  ${tag}: floor ${secs(floor.ms)}, ${honest}, backfill ${secs(first.wallMs)}; ${note}`);
    push(
      {
        size: size.label,
        scenario: `floor: one GROUP BY over ${sh.days} days + 27 before, all aggregates + median — shape ${sh.name}`,
        windowAttempts: facts.read,
        wallMs: withJit.ms,
        cpuMs: withJit.cpuMs,
        note: 'attempts read',
      },
      {
        size: size.label,
        scenario: `floor: the same, jit off — shape ${sh.name}`,
        windowAttempts: facts.read,
        wallMs: noJit.ms,
        cpuMs: noJit.cpuMs,
        note: 'job lines below: × the faster floor',
      },
      {
        size: size.label,
        scenario: `job: ${tag}, empty target`,
        windowAttempts: facts.window,
        rows: first.rows,
        wallMs: first.wallMs,
        jobMs: first.jobMs,
        floorMs: floor.ms,
        honestFloorMs: best.ms + write,
        cpuMs: first.cpuMs,
        floorCpuMs: floor.cpuMs,
        rssMb: first.rssMb,
        note: `${note}; ${honest}${scale}`,
      },
    );
    if (!full) return;
    const scan = await measureScanFloor(ctx.databaseUrl, from, to, reps);
    const honestScan = describeHonest(best.ms, best.label, { label: 'scan', ms: scan });
    const again = summarize(
      await repeat(
        reps,
        () => Promise.resolve(),
        () => runCli(options.cli, args, env, watch),
      ),
    );
    const written = again.runs.reduce((n, r) => n + r.updated + r.inserted + r.deleted, 0);
    log(`  ${tag}, again: ${secs(again.wallMs)} (${written} rows written)`);
    push({
      size: size.label,
      scenario: `job: ${tag}, again (no new data)`,
      windowAttempts: facts.window,
      rows: again.rows,
      wallMs: again.wallMs,
      jobMs: again.jobMs,
      floorMs: floor.ms,
      honestFloorMs: best.ms + scan,
      cpuMs: again.cpuMs,
      floorCpuMs: floor.cpuMs,
      rssMb: again.rssMb,
      note: `${written === 0 ? 'nothing rewritten' : `MISMATCH: ${written} rows written`}; ${honestScan}`,
    });
    // verify exits 1 on drift, which runCli turns into a failure of the benchmark.
    const verify = summarize(
      await repeat(
        reps,
        () => Promise.resolve(),
        () => runCli(options.cli, ['verify', '--from', from, '--to', to], env, watch),
      ),
    );
    log(`  verify ${sh.days} days — shape ${sh.name}: ${secs(verify.wallMs)}`);
    push({
      size: size.label,
      scenario: `job: verify --from --to, ${sh.days} days — shape ${sh.name}`,
      windowAttempts: facts.window,
      wallMs: verify.wallMs,
      floorMs: floor.ms,
      honestFloorMs: best.ms + scan,
      cpuMs: verify.cpuMs,
      floorCpuMs: floor.cpuMs,
      rssMb: verify.rssMb,
      note: `no drift; ${honestScan}`,
    });
  };
  for (const sh of chosen) await range(sh, size.attempts, options.reps, true);
  if (yearRate > 0) {
    const attempts = Math.round((yearRate * 365) / 30.4);
    await range(yearShape, attempts, 1, false, yearRate >= 100_000 ? targetMonthlyRate / yearRate : undefined);
  }
}

export { shapes };
