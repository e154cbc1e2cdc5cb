/**
 * How the theta lookup scales (docs/theta.md, "Performance"): generates the demo's attempts
 * and theta history for many students on a PostgreSQL server (or reuses them), then prints
 * EXPLAIN ANALYZE timings (3 runs each) of:
 * - the whole computation without theta, with the as-of lookups, and with theta mode;
 * - the theta part alone, over the window's combinations materialised first (the whole
 *   computation is dominated by the attempts aggregate, whose run-to-run noise hides the
 *   lookups): LATERAL lookups, and the window-function alternative that was considered;
 * - the skipped-estimate count;
 * - the lookups without the recommended indexes (BENCH_NO_INDEX=1; slow: a scan per combination).
 *
 *   BENCH_DATABASE_URL=postgres://root@127.0.0.1:5432/afd_bench_theta BENCH_STUDENTS=16000 npx tsx bench/theta-lookup.ts
 *
 * The database must exist; its tables attempt, student_topic_theta and mirt_ability are
 * replaced when BENCH_REGENERATE=1 or when they are missing. BENCH_OLD_ESTIMATES=N adds N
 * older estimates per (user, topic), one every 14 days before its first (long histories).
 * BENCH_PLANS=1 prints the plans.
 */
import pg from 'pg';
import { ensureAttemptTable } from '../src/source/attempt-table.js';
import { parseQualifiedName } from '../src/sql/identifiers.js';
import { plainServer } from '../src/database/backend.js';
import { migrate } from '../src/database/migrate.js';
import { sessionOf } from '../src/database/db.js';
import { computeSelect } from '../src/sql/compute.js';
import {
  createDemoHash,
  createDemoThetaTables,
  indexDemoThetaTables,
  insertDemoAttempts,
  insertDemoEstimates,
  insertDemoMirt,
} from '../src/sql/demo-data.js';
import { ident, raw, sql, type Sql } from '../src/sql/tag.js';
import { skippedEstimatesSelect, startOfDay, thetaColumns, thetaJoins, validTheta } from '../src/sql/theta.js';
import { unsharded, type ThetaPlan, type Work } from '../src/work.js';

const url = process.env.BENCH_DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/afd_bench_theta';
const students = Number(process.env.BENCH_STUDENTS ?? 16000);
const days = 35;
const lastDay = '2025-11-01';
const since = '2025-10-25';
const timezone = 'UTC';
const demo = { students, days, lastDay, timezone };

const source = parseQualifiedName('attempt', 'table');
const estimates = parseQualifiedName('student_topic_theta', 'table');
const mirt = parseQualifiedName('mirt_ability', 'table');

/** The theta plan: as-of lookups, the mirt fallback when `fallback`, θ_prev when `thetaMode`. */
const thetaPlan = (fallback: boolean, thetaMode: boolean): ThetaPlan => ({ estimates, mirt: fallback ? mirt : undefined, thetaMode });

/** The window's work, with `theta` (undefined: disabled). */
const work = (theta: ThetaPlan | undefined): Work => ({
  source: ident(source),
  timezone,
  theta,
  backend: plainServer,
  since,
  anchor: lastDay,
  shard: unsharded,
});

/**
 * The alternative: the as-of estimate by window functions over one timeline per (user,
 * topic) of the window's combinations (at the start of d+1) and all valid estimates before
 * the end of the anchor day, carrying the last estimate forward. No index needed, but it
 * reads and sorts the whole history of every pair in the window.
 */
const windowVariant = sql`
with combos as (select * from combos_bench where day between ${since}::date and ${lastDay}::date),
estimates as (
  select s.user_id::text as user_id, s.topic_id::text as topic_id, s.updated_at as at,
         s.theta::text::numeric as theta_exact,
         case when s.se::text::numeric >= 0 and round(s.se::text::numeric, 3) < 1000 then s.se::text::numeric end as se_exact
  from ${ident(estimates)} s
  where s.updated_at < ((${lastDay}::date + 1)::timestamp at time zone ${timezone}::text) and ${validTheta(sql`s`)}
    and (s.user_id::text, s.topic_id::text) in (select user_id, topic_id from combos)
),
timeline as (
  select user_id, topic_id, at as key, 1 as kind, theta_exact, se_exact, null::date as day from estimates
  union all
  select user_id, topic_id, ${startOfDay(sql`day + 1`, timezone)}, 0, null, null, day from combos
),
carried as (
  select *, count(*) filter (where kind = 1) over (partition by user_id, topic_id
              order by key, kind, theta_exact nulls first, se_exact nulls first rows unbounded preceding) as grp
  from timeline
),
filled as (
  select *, first_value(theta_exact) over g as cur_theta, first_value(se_exact) over g as cur_se
  from carried
  window g as (partition by user_id, topic_id, grp order by key, kind desc)
)
select count(*), sum(round(cur_theta, 3)::numeric(6,3)), sum(round(cur_se, 3)::numeric(6,3))
from filled where kind = 0`;

/** The LATERAL lookups alone, over the materialised combinations. */
function lateralOnly(theta: ThetaPlan): Sql {
  const columns = thetaColumns(theta);
  return sql`select count(*), sum((${columns.estimate})::numeric(6,3)), sum((${columns.sd})::numeric(6,3))${raw(
    theta.thetaMode ? ', sum(prev.theta)' : '',
  )}
from combos_bench h
${thetaJoins(theta, timezone)}
where h.day between ${since}::date and ${lastDay}::date`;
}

async function main(): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query("set work_mem = '256MB'");
    await client.query('set extra_float_digits = 1');
    const present = await client.query<{ n: string | null }>("select to_regclass('student_topic_theta')::text as n");
    if (process.env.BENCH_REGENERATE === '1' || present.rows[0]?.n === null) await generate(client);
    const old = Number(process.env.BENCH_OLD_ESTIMATES ?? 0);
    if (old > 0) {
      // Long histories: older estimates of every (user, topic), one every 14 days before its first.
      await client.query(
        `insert into student_topic_theta (user_id, topic_id, theta, se, updated_at)
         select user_id, topic_id, 0.5 - g * 0.001, 0.3, first_at - g * interval '14 days'
         from (select user_id, topic_id, min(updated_at) as first_at from student_topic_theta group by user_id, topic_id) p,
              generate_series(1, $1::int) g`,
        [old],
      );
      await client.query('vacuum analyze student_topic_theta');
    }
    const counts = await client.query<{ attempts: string; estimates: string; mirt: string }>(
      'select (select count(*) from attempt) as attempts, (select count(*) from student_topic_theta) as estimates, (select count(*) from mirt_ability) as mirt',
    );
    console.log(`data: ${JSON.stringify(counts.rows[0])}`);
    const whole: [string, Sql][] = [
      ['whole computation, no theta', computeSelect(work(undefined))],
      ['whole computation, theta (as-of + mirt)', computeSelect(work(thetaPlan(true, false)))],
      ['whole computation, theta + theta mode', computeSelect(work(thetaPlan(true, true)))],
    ];
    for (const [name, statement] of whole) await explain(client, name, statement);

    // The window's combinations, materialised: what the theta part joins to.
    const compute = computeSelect(work(undefined));
    const cut = compute.text.search(/\nselect h\.user_id/);
    const head = compute.text.slice(0, cut);
    const bound = Math.max(...[...head.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])));
    await client.query('drop table if exists combos_bench');
    // The head's parameters are the statement's first values; since follows them.
    await client.query(`create temporary table combos_bench as ${head}\nselect * from halves where day >= $${bound + 1}::date`, [
      ...compute.values.slice(0, bound),
      since,
    ]);
    await client.query('analyze combos_bench');
    const combos = await client.query<{ n: string }>('select count(*) as n from combos_bench');
    console.log(`\ncombinations in the window: ${combos.rows[0]?.n}`);
    const thetaOnly: [string, Sql][] = [
      ['theta part, LATERAL as-of', lateralOnly(thetaPlan(false, false))],
      ['theta part, LATERAL as-of + mirt', lateralOnly(thetaPlan(true, false))],
      ['theta part, LATERAL as-of + mirt + θ_prev', lateralOnly(thetaPlan(true, true))],
      ['theta part, window functions (as-of only)', windowVariant],
      ['skipped count', skippedEstimatesSelect(sql`combos_bench`, thetaPlan(true, false), { anchor: lastDay, timezone })],
    ];
    for (const [name, statement] of thetaOnly) await explain(client, name, statement);

    if (process.env.BENCH_NO_INDEX === '1') {
      await client.query('begin');
      await client.query('drop index student_topic_theta_user_id_topic_id_updated_at_idx');
      await client.query('drop index mirt_ability_user_id_fitted_at_idx');
      await explain(client, 'theta part, LATERAL, WITHOUT the indexes', lateralOnly(thetaPlan(true, true)), 1);
      await client.query('rollback');
    }
  } finally {
    await client.end();
  }
}

async function generate(client: pg.Client): Promise<void> {
  const t0 = Date.now();
  console.log(`generating ${students} students × ${days} days …`);
  await migrate(sessionOf(client));
  await client.query('drop table if exists attempt');
  await ensureAttemptTable(sessionOf(client), source);
  await client.query(createDemoHash);
  for (let to = days - 1; to >= 0; to -= 7) {
    await client.query(insertDemoAttempts(demo, { from: Math.max(0, to - 6), to }));
  }
  await client.query('analyze attempt');
  await client.query(createDemoThetaTables);
  await client.query(insertDemoEstimates(demo));
  await client.query(insertDemoMirt(demo));
  await client.query(indexDemoThetaTables);
  console.log(`generated in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

async function explain(client: pg.Client, name: string, statement: Sql, times = 3): Promise<void> {
  const runs: number[] = [];
  let plan: string[] = [];
  for (let i = 0; i < times; i++) {
    const result = await client.query<{ 'QUERY PLAN': string }>(sql`explain (analyze, buffers, costs off) ${statement}`);
    plan = result.rows.map((r) => r['QUERY PLAN']);
    const line = plan.find((l) => l.startsWith('Execution Time'));
    runs.push(Number(/([\d.]+) ms/.exec(line ?? '')?.[1]));
  }
  console.log(`\n== ${name}: execution ${runs.map((ms) => `${Math.round(ms)} ms`).join(', ')}`);
  if (process.env.BENCH_PLANS === '1') console.log(plan.join('\n'));
}

await main();
