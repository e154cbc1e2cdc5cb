/**
 * EXPLAIN (ANALYZE, BUFFERS) of the job's own statements and of the floor's, with the job's
 * session settings. The statements are loaded from the build of the CLI being measured
 * (`<dist>/sql/write.js`), so the plans are of exactly the SQL that ran. Everything runs in a
 * transaction that is rolled back: the target table is left as it was.
 */
import type pg from 'pg';
import { floorStatements } from './floor.js';
import { forcedPlans } from './honest-floor.js';
import { plainBackendOf, rawOf, sqlModule, statementText, symbolicWork } from './statements.js';

const withSource = (sql: string) => sql.replaceAll('{{source}}', '"attempt"');

/**
 * The statements of src/sql/write.ts that a daily run executes: it creates agg_computed with
 * one CREATE TABLE … AS (`stageComputed`), or, in builds before that, creates it empty and
 * fills it with INSERT … SELECT; agg_failed holds combinations that failed.
 */
interface WriteStatements {
  readonly stage: string[];
  readonly fill: string;
  readonly fillTitle: string;
  readonly deleteStale: string;
  readonly upsertComputed: string;
  /** How many parameters upsertComputed has: run timestamp, include_theta, users, topic, date, since, anchor (older builds: the first five). */
  readonly upsertParamCount: number;
}

async function loadStatements(cli: string): Promise<WriteStatements> {
  const m = await sqlModule(cli, 'write.js');
  const raw = await rawOf(cli);
  // Placeholders in the order the bench binds them (see statements.ts; older builds ignore them).
  const backend = await plainBackendOf(cli);
  const work = symbolicWork(raw, backend);
  const onBackend = backend === undefined ? {} : { backend };
  const stored = { since: raw('$1'), anchor: raw('$2'), shard: { count: raw('$3'), index: raw('$4') }, ...onBackend };
  const upsertScope = {
    runTimestamp: raw('$1'),
    includeTheta: raw('$2'),
    users: raw('$3'),
    topic: raw('$4'),
    date: raw('$5'),
    since: raw('$6'),
    anchor: raw('$7'),
    ...(backend === undefined ? {} : { staging: backend.staging }),
  };
  const text = (name: string, argument: unknown = work) => statementText(m, name, argument);

  // Builds with a backend (database/backend.ts) take the staging statements from it.
  const staging = backend?.staging as
    { stageComputed(work: unknown): { text: string }; createInTransaction: readonly { text: string }[] } | undefined;
  const create = text('createComputedTable');
  const failed = staging ? staging.createInTransaction[0]?.text : text('createFailedTable');
  const insert = text('insertComputed');
  const stage = staging ? staging.stageComputed(work).text : text('stageComputed');
  const del = text('deleteStale', stored);
  const upsert = text('upsertComputed', upsertScope);
  if (del === undefined || upsert === undefined || (stage === undefined && (create === undefined || insert === undefined))) {
    throw new Error(
      `${cli}: sql/write.js no longer exports the statements bench/explain.ts knows (createComputedTable, insertComputed, deleteStale, upsertComputed); update it`,
    );
  }
  const highest = Math.max(0, ...(upsert.match(/\$(\d+)/g) ?? []).map((p) => Number(p.slice(1))));
  if (stage !== undefined) {
    return {
      stage: failed === undefined ? [] : [failed],
      fill: stage,
      fillTitle: 'stageComputed (create temporary table agg_computed as computeSelect)',
      deleteStale: del,
      upsertComputed: upsert,
      upsertParamCount: highest,
    };
  }
  return {
    stage: [create!, ...(failed === undefined ? [] : [failed])],
    fill: insert!,
    fillTitle: 'insertComputed (insert into agg_computed computeSelect)',
    deleteStale: del,
    upsertComputed: upsert,
    upsertParamCount: highest,
  };
}

async function explain(client: pg.Client, title: string, sql: string, params: unknown[] = []): Promise<string> {
  const result = await client.query<{ 'QUERY PLAN': string }>(`explain (analyze, buffers) ${sql}`, params);
  return `### ${title}\n\n${result.rows.map((r) => r['QUERY PLAN']).join('\n')}\n`;
}

/**
 * Plans of one daily run against the target as it is now (empty → the first run's plan;
 * filled → the re-run's), plus the floor's (b) and (c).
 */
export async function explainRun(
  client: pg.Client,
  cli: string,
  window: { since: string; anchor: string },
  workMem: string,
  options: { includeFloor: boolean; shard?: { index: number; count: number } },
): Promise<string> {
  const shard = options.shard ?? { index: 1, count: 1 };
  const params = [window.since, window.anchor, 'UTC', shard.count, shard.index];
  const statements = await loadStatements(cli);
  const parts: string[] = [];
  await client.query('begin');
  try {
    if (workMem.toLowerCase() !== 'default') await client.query("select set_config('work_mem', $1, true)", [workMem]);
    const stored = (await client.query<{ n: string }>('select count(*) as n from features_topic_daily')).rows[0]!.n;
    parts.push(`(features_topic_daily holds ${stored} rows; shard ${shard.index}/${shard.count}; work_mem ${workMem})\n`);
    for (const statement of statements.stage) await client.query(withSource(statement), statement.includes('$1') ? params : []);
    parts.push(await explain(client, statements.fillTitle, withSource(statements.fill), params));
    await client.query('analyze agg_computed');
    parts.push(await explain(client, 'deleteStale', statements.deleteStale, [window.since, window.anchor, shard.count, shard.index]));
    parts.push(
      await explain(
        client,
        'upsertComputed',
        statements.upsertComputed,
        [new Date().toISOString(), false, null, null, null, window.since, window.anchor].slice(0, statements.upsertParamCount),
      ),
    );
    if (options.includeFloor) {
      const f = floorStatements(window.since, window.anchor);
      parts.push(await explain(client, 'floor (b): window aggregates with median', f.b));
      parts.push(await explain(client, 'floor (c): answered/correct per day over since−27 … anchor', f.c));
      // The honest floor's forced plans (honest-floor.ts), so the plan that won can be read.
      for (const plan of forcedPlans) {
        const before: [string, string][] = [];
        for (const [name, value] of Object.entries(plan.settings)) {
          const r = await client.query<{ old: string }>('select current_setting($1) as old', [name]);
          before.push([name, r.rows[0]!.old]);
          await client.query('select set_config($1, $2, true)', [name, value]);
        }
        parts.push(await explain(client, `floor (b), ${plan.label}`, f.b));
        parts.push(await explain(client, `floor (c), ${plan.label}`, f.c));
        for (const [name, old] of before) await client.query('select set_config($1, $2, true)', [name, old]);
      }
    }
  } finally {
    await client.query('rollback');
  }
  return parts.join('\n');
}
