/**
 * The Citus scenario: the same data set and daily run on a Citus cluster (BENCH_CITUS_URL, a
 * coordinator database the benchmark may overwrite; CITUS_TEST_URL when that is unset), next
 * to the plain server, with the rows checked equal. The size's attempts are copied from the
 * server's data set (rows with a NULL student_id left out: the job ignores them and a
 * distributed table cannot store them; late attempts left out) into the cluster, `attempt`
 * distributed by student_id and the job's own `migrate --distribute`, and into a database of
 * its own on the server (`afd_bench_<size>_plain`, dropped afterwards), so that the two
 * databases hold exactly the same rows and the size's database is only read. Measured, each
 * repeated: the first run on an empty target, a re-run with no new data, the dry run and
 * verify, on the cluster and on the plain server.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type pg from 'pg';
import { anchorDay } from './dataset.js';
import { jobEnv, runCli, type JobRun } from './job.js';
import type { Options, Size } from './options.js';
import type { Measured } from './scenarios.js';
import { connect, databaseUrl, dropDatabase, ensureDatabase } from './server.js';
import { addDays, repeat, median } from './stats.js';

/** The cluster to measure, or undefined (the scenario is then skipped). */
export function citusBenchUrl(env: NodeJS.ProcessEnv): string | undefined {
  return env.BENCH_CITUS_URL || env.CITUS_TEST_URL || undefined;
}

/** Copies the server's attempts (whole seconds: no late attempts; a student set) into another database's table. */
async function copyAttempts(serverUrl: string, citusUrl: string): Promise<void> {
  const out = `\\copy (select * from attempt where student_id is not null and extract(microseconds from completed_at)::bigint % 1000000 = 0) to stdout`;
  const into = '\\copy attempt from stdin';
  await new Promise<void>((resolve, reject) => {
    const child = spawn(
      'bash',
      ['-o', 'pipefail', '-c', 'psql -X -q -v ON_ERROR_STOP=1 -d "$FROM" -c "$OUT" | psql -X -q -v ON_ERROR_STOP=1 -d "$TO" -c "$IN"'],
      {
        env: { ...process.env, FROM: serverUrl, TO: citusUrl, OUT: out, IN: into },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`copying the attempts to Citus failed (${code}): ${stderr.trim()}`)),
    );
  });
}

const ticksPerSecond = 100; // getconf CLK_TCK on Linux

/** utime, stime, cutime, cstime and the parent of a process, in ms; undefined when it is gone. */
function statOf(pid: number): { own: number; children: number; parent: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ms = (i: number) => (Number(fields[i]) * 1000) / ticksPerSecond;
    return { own: ms(11) + ms(12), children: ms(13) + ms(14), parent: Number(fields[1]) };
  } catch {
    return undefined;
  }
}

/**
 * The CPU of a whole cluster so far, in ms: each node's postmaster, its running children, and
 * the children that have exited (their time is added to the postmaster's when it reaps them).
 * The difference over a run is the run's CPU on every node (the coordinator's backend and the
 * workers' shard queries; their backends exit when the run disconnects), plus the little the
 * cluster's own background processes use meanwhile. Only meaningful for a cluster nobody else
 * uses.
 */
function clusterCpuMs(postmasters: readonly number[]): number {
  const all = new Set(postmasters);
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const stat = statOf(pid);
    if (stat === undefined) continue;
    if (all.has(pid)) total += stat.own + stat.children;
    else if (all.has(stat.parent)) total += stat.own;
  }
  return total;
}

/** The postmaster of each node: the coordinator of `client` and its workers. */
async function postmastersOf(client: pg.Client, url: string): Promise<number[]> {
  const pidOf = async (c: pg.Client) => {
    const dir = (await c.query<{ d: string }>("select current_setting('data_directory') as d")).rows[0]!.d;
    return Number(readFileSync(`${dir}/postmaster.pid`, 'utf8').split('\n')[0]);
  };
  const pids = [await pidOf(client)];
  const workers = await client.query<{ host: string; port: number }>(
    'select nodename as host, nodeport as port from pg_dist_node where groupid <> 0',
  );
  for (const w of workers.rows) {
    const u = new URL(url);
    u.hostname = w.host;
    u.port = String(w.port);
    const worker = await connect(u.toString());
    try {
      pids.push(await pidOf(worker));
    } finally {
      await worker.end();
    }
  }
  return pids;
}

/** A checksum of every stored row (count and a sum of row hashes), the same on both databases when the rows are. */
const checksum = `
select count(*)::bigint::text as rows,
       coalesce(sum(hashtextextended(concat_ws('|', user_id, topic_id, date, attempts, correct, avg_time_ms, rt_median, hints,
                                               theta_estimate, theta_sd, improvement, last_seen_at), 0)::numeric), 0)::text as sum
from features_topic_daily`;

async function sumOf(client: pg.Client): Promise<string> {
  await client.query("set timezone = 'UTC'");
  const row = (await client.query<{ rows: string; sum: string }>(checksum)).rows[0]!;
  return `${row.rows}:${row.sum}`;
}

/** Measures the job on the cluster and on the server for one size; lines for the results table. */
export async function measureCitus(ctx: {
  options: Options & { cli: string };
  size: Size;
  server: string;
  databaseUrl: string;
  citusUrl: string;
  log: (line: string) => void;
}): Promise<Measured[]> {
  const { options, size, log } = ctx;
  const plainName = `afd_bench_${size.label.toLowerCase()}_plain`;
  const plainUrl = databaseUrl(ctx.server, plainName);
  await dropDatabase(ctx.server, plainName);
  await ensureDatabase(ctx.server, plainName);
  const client = await connect(plainUrl);
  const monitor = await connect(plainUrl);
  const citus = await connect(ctx.citusUrl);
  try {
    const shards = (await citus.query<{ n: string }>("select current_setting('citus.shard_count') as n")).rows[0]!.n;
    const workers = (await citus.query<{ n: string }>('select count(*)::text as n from pg_dist_node where groupid <> 0')).rows[0]!.n;
    log(`  citus: copying the attempts to the cluster (${workers} workers, ${shards} shards per table) …`);
    await citus.query(
      'drop table if exists attempt, features_topic_daily, aggregate_features_runs, aggregate_features_migrations, aggregate_features_source_days, aggregate_features_definition, aggregate_features_computed, aggregate_features_failed cascade',
    );
    for (const target of [citus, client]) {
      await target.query(`create table attempt (student_id text, topic_id text, completed_at timestamptz not null, correct boolean,
                                                response_time_ms integer, hint_used boolean)`);
    }
    await citus.query(`select create_distributed_table('attempt', 'student_id')`);
    const t0 = performance.now();
    await copyAttempts(ctx.databaseUrl, ctx.citusUrl);
    log(`  citus: copied to the cluster in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    await copyAttempts(ctx.databaseUrl, plainUrl);
    for (const target of [citus, client]) {
      await target.query('create index attempt_completed_at_idx on attempt (completed_at)');
      await target.query('vacuum analyze attempt');
    }
    const env = jobEnv(ctx.citusUrl, { lookbackDays: 7, workMem: options.workMem });
    const plainEnv = jobEnv(plainUrl, { lookbackDays: 7, workMem: options.workMem });
    await runCli(options.cli, ['migrate', '--distribute'], env);
    await runCli(options.cli, ['migrate'], plainEnv);

    const date = ['--date', anchorDay];
    const lines: Measured[] = [];
    const postmasters = await postmastersOf(citus, ctx.citusUrl);
    const cpuOfCitus = new Map<JobRun, number>();
    /** Runs the CLI; on the cluster also the CPU of every node, on the server the job's backends'. */
    const timed = async (args: string[], e: NodeJS.ProcessEnv): Promise<JobRun> => {
      if (e !== env) return runCli(options.cli, args, e, { monitor, database: plainName });
      const before = clusterCpuMs(postmasters);
      const run = await runCli(options.cli, args, e);
      cpuOfCitus.set(run, clusterCpuMs(postmasters) - before + run.nodeCpuMs);
      return run;
    };
    const measure = async (label: string, run: (env: NodeJS.ProcessEnv) => Promise<JobRun[]>) => {
      for (const [where, e] of [
        ['plain server', plainEnv],
        ['Citus', env],
      ] as const) {
        const runs = await run(e);
        const cpu = runs.map((r) => (e === env ? cpuOfCitus.get(r)! : r.backendCpuMs + r.nodeCpuMs));
        lines.push({
          size: size.label,
          scenario: `Citus scenario, ${where}: ${label}`,
          rows: runs[0]?.processed,
          wallMs: median(runs.map((r) => r.wallMs)),
          jobMs: median(runs.map((r) => r.jobMs)),
          rssMb: median(runs.map((r) => r.rssMb)),
          cpuMs: median(cpu),
          note:
            where === 'Citus'
              ? `coordinator + ${workers} workers on this machine, ${shards} shards; CPU s: every node's processes`
              : 'the same data, one server',
        });
        log(
          `  citus: ${where}: ${label}: ${(median(runs.map((r) => r.wallMs)) / 1000).toFixed(2)} s wall, ${(median(cpu) / 1000).toFixed(2)} s CPU`,
        );
      }
    };
    const truncate = (e: NodeJS.ProcessEnv) => async () => {
      const target = e === env ? citus : client;
      await target.query('truncate features_topic_daily, aggregate_features_runs');
    };
    const nothing = () => Promise.resolve();
    await measure('first run, empty target', (e) => repeat(options.reps, truncate(e), () => timed(date, e)));
    await measure('re-run, no new data', (e) => repeat(options.reps, nothing, () => timed(date, e)));
    await measure('dry run', (e) => repeat(options.reps, nothing, () => timed([...date, '--dry-run'], e)));
    await measure('verify', (e) => repeat(options.reps, nothing, () => timed(['verify', ...date], e)));
    // Last, so that the row check below also covers what a backfill wrote on each.
    const range = ['backfill', '--from', addDays(anchorDay, -35), '--to', anchorDay];
    await measure('backfill of the 36 days, empty target', (e) => repeat(options.reps, truncate(e), () => timed(range, e)));
    const [plainSum, citusSum] = [await sumOf(client), await sumOf(citus)];
    lines.push({
      size: size.label,
      scenario: 'Citus scenario: rows equal to the plain server',
      note: plainSum === citusSum ? `yes (count and row-hash sum ${citusSum})` : `MISMATCH: server ${plainSum}, Citus ${citusSum}`,
    });
    return lines;
  } finally {
    await citus.end();
    await monitor.end();
    await client.end();
    await dropDatabase(ctx.server, plainName);
  }
}
