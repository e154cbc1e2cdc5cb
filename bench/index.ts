/**
 * `npm run bench`: the benchmark of issue 5. For each size it generates (or reuses) a
 * deterministic data set in its own database `afd_bench_<size>`, resets the job's tables with
 * the job's own `migrate`, runs the server scenarios (scenarios.ts), PGlite on the smallest
 * size, and writes one report: bench/out/results-<sizes>.md, and BENCHMARKS.md for a full run.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { anchorDay, ensureDataset } from './dataset.js';
import { jobEnv, rssMethod, runCli } from './job.js';
import { parseOptions, type Options, type Size } from './options.js';
import { setMaxQuietWait } from './quiet.js';
import { buildJob, describeSource } from './build.js';
import { citusBenchUrl, measureCitus } from './citus.js';
import { loadComputeSql, type ComputeSql } from './variants.js';
import { measurePglite } from './pglite.js';
import { renderResults, writeResultsIntoDocs, type Machine } from './report.js';
import { runServerScenarios, summarize, type Measured, type SizeResult } from './scenarios.js';
import { connect, databaseUrl, dropDatabase, ensureDatabase, serverFacts, serverUrl } from './server.js';
import { addDays } from './stats.js';

const log = (line: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

async function runSize(
  options: Options & { cli: string },
  size: Size,
  server: string,
  withPglite: boolean,
  computeSql: ComputeSql | undefined,
): Promise<SizeResult> {
  const database = `afd_bench_${size.label.toLowerCase()}`;
  const url = databaseUrl(server, database);
  await ensureDatabase(server, database);
  const client = await connect(url);
  const monitor = await connect(url);
  try {
    log(`${size.label}: data set in ${database} …`);
    const info = await ensureDataset(client, size.attempts, options.fresh);
    log(
      `${size.label}: ${info.attempts} attempts, ${info.students} students, ${info.tableMb} MB${info.generatedSeconds === undefined ? ' (reused)' : `, generated in ${info.generatedSeconds.toFixed(1)} s`}`,
    );
    await client.query(
      'drop table if exists features_topic_daily, aggregate_features_runs, aggregate_features_migrations, aggregate_features_source_days, aggregate_features_definition cascade',
    );
    await runCli(options.cli, ['migrate'], jobEnv(url, { lookbackDays: 7, workMem: options.workMem }));
    const result = await runServerScenarios({ options, size, client, monitor, database, databaseUrl: url, computeSql, log });
    const citusUrl = citusBenchUrl(process.env);
    if (options.scenarios.has('citus')) {
      if (citusUrl) result.lines.push(...(await measureCitus({ options, size, server, databaseUrl: url, citusUrl, log })));
      else log('  citus: skipped (set BENCH_CITUS_URL to a Citus coordinator database the benchmark may overwrite)');
    }
    if (withPglite) {
      const window = { since: addDays(anchorDay, -7), anchor: anchorDay };
      const p = await measurePglite({
        serverDatabaseUrl: url,
        workDir: join(options.outDir, 'pglite'),
        cli: options.cli,
        reps: options.reps,
        window,
        lookbackDays: 7,
        workMem: options.workMem,
        log,
      });
      const first = summarize(p.first);
      const rerun = summarize(p.rerun);
      const late = summarize(p.late);
      const note = 'RSS of Node + embedded PostgreSQL';
      const pglite: Measured[] = [
        {
          size: size.label,
          scenario: 'PGlite: first run, empty target',
          rows: first.rows,
          wallMs: first.wallMs,
          jobMs: first.jobMs,
          rssMb: first.rssMb,
          note: `${note}; import-attempts of the data set ${(p.importMs / 1000).toFixed(1)} s, ${p.importRssMb.toFixed(0)} MB`,
        },
        {
          size: size.label,
          scenario: 'PGlite: re-run, no new data',
          rows: rerun.rows,
          wallMs: rerun.wallMs,
          jobMs: rerun.jobMs,
          rssMb: rerun.rssMb,
          note,
        },
        {
          size: size.label,
          scenario: 'PGlite: re-run after 1% late attempts',
          rows: late.rows,
          wallMs: late.wallMs,
          jobMs: late.jobMs,
          rssMb: late.rssMb,
          note: `${note}; ${p.lateRows} late attempts`,
        },
      ];
      result.lines.push(...pglite);
    }
    return result;
  } finally {
    await monitor.end();
    await client.end();
    if (options.drop) await dropDatabase(server, database);
  }
}

async function main(): Promise<void> {
  const parsed = parseOptions(process.argv.slice(2));
  mkdirSync(parsed.outDir, { recursive: true });
  setMaxQuietWait(parsed.maxQuietWaitMs);
  log(parsed.cli ?? `building the job from ${describeSource(parsed.ref)} …`);
  const cli = parsed.cli ?? (await buildJob({ ref: parsed.ref, outDir: parsed.outDir }));
  const options: Options & { cli: string } = { ...parsed, cli };
  const computeSql = options.scenarios.has('variants') ? await loadComputeSql(cli) : undefined;
  const server = serverUrl(process.env);
  const admin = await connect(databaseUrl(server, 'postgres'));
  const facts = await serverFacts(admin);
  await admin.end();
  const machine: Machine = {
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    cpu: cpus()[0]?.model.trim() ?? 'unknown CPU',
    postgres: facts.version,
    settings: facts.settings,
    node: process.version,
    rssMethod: rssMethod(),
    source: parsed.cli === undefined ? describeSource(parsed.ref) : `the prebuilt ${parsed.cli}`,
  };
  log(`${machine.cores} cores, PostgreSQL ${machine.postgres}, CLI ${resolve(options.cli)}`);
  const results: SizeResult[] = [];
  const smallest = [...options.sizes].sort((a, b) => a.attempts - b.attempts)[0];
  for (const size of [...options.sizes].sort((a, b) => a.attempts - b.attempts)) {
    results.push(await runSize(options, size, server, options.scenarios.has('pglite') && size === smallest, computeSql));
  }
  const command = `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim().replace(/ --$/, '');
  const block = renderResults(results, machine, command, options);
  const name = options.sizes.map((s) => s.label).join('-');
  writeFileSync(join(options.outDir, `results-${name}.md`), block + '\n');
  writeFileSync(
    join(options.outDir, `results-${name}.json`),
    JSON.stringify({ machine, results }, (k, v: unknown) => (k === 'stderr' ? undefined : v), 2),
  );
  process.stdout.write(block + '\n');
  // The benchmark's own correctness checks: a wrong answer fails the run (and CI), however fast.
  const problems = results.flatMap((r) => [
    ...r.lines.filter((m) => m.note?.includes('MISMATCH')).map((m) => `${r.size.label}: ${m.scenario}: ${m.note}`),
    ...(r.variants ?? []).filter((v) => v.differing !== 0).map((v) => `${r.size.label}: variant ${v.name}: ${v.differing} rows differ`),
    ...(r.equivalence ?? []).filter((e) => e.differing !== 0).map((e) => `${r.size.label}: ${e.label}: ${e.differing} rows differ`),
  ]);
  for (const p of problems) log(`FAILED: ${p}`);
  if (problems.length > 0) process.exitCode = 1;
  if (options.writeDocs) {
    writeResultsIntoDocs('BENCHMARKS.md', block);
    log('BENCHMARKS.md updated');
  }
}

await main();
