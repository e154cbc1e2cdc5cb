/**
 * The demo: an embedded database with generated attempts and a theta history derived from
 * them, migrated, aggregated, shown; then late-arriving attempts and a second run that picks
 * them up. Zero setup: README's first command. With AGG_INCLUDE_THETA=true the theta columns
 * are filled from the generated estimates.
 */
import type { Config } from '../config/index.js';
import type { Session } from '../database/db.js';
import { ensureAttemptTable } from './attempt-table.js';
import { formatTable } from '../format.js';
import { sql } from '../sql/tag.js';
import { parseQualifiedName } from '../sql/identifiers.js';
import type { EventStream } from '../observe/events.js';
import { runDaily, type RunResult } from '../pipeline/daily.js';
import { migrate } from '../database/migrate.js';
import {
  analyzeDemoAttempts,
  countFeatureRows,
  createDemoHash,
  dropDemoAttempts,
  createDemoThetaTables,
  indexDemoThetaTables,
  insertDemoAttempts,
  insertDemoEstimates,
  insertDemoMirt,
  insertLateAttempts,
} from '../sql/demo-data.js';

export interface DemoOptions {
  readonly students: number;
  readonly days: number;
  /** The last day with attempts; the job runs with it as the anchor. */
  readonly lastDay: string;
  /** Receives progress lines and the tables the demo prints. */
  readonly print: (line: string) => void;
}

export interface DemoResult {
  readonly attempts: number;
  /** Rows generated in student_topic_theta. */
  readonly estimates: number;
  readonly first: RunResult;
  readonly second: RunResult;
  /** Rows features_topic_daily held before the demo ran (a second demo on the same directory). */
  readonly existingRows: number;
  /** A combination of the anchor day worth explaining (both 14-day halves filled), if any. */
  readonly example: { readonly user: string; readonly topic: string } | undefined;
}

/** Fills the database with demo data (replacing any earlier demo data) and runs the job twice. */
export async function runDemo(session: Session, config: Config, options: DemoOptions, events: EventStream): Promise<DemoResult> {
  options.print(`[demo] creating the schema`);
  await migrate(session);
  const existingRows = (await session.query<{ n: number }>(countFeatureRows)).rows[0]!.n;
  if (existingRows > 0) {
    options.print(
      `[demo] this directory already holds ${existingRows} feature rows from an earlier demo: the attempts are generated again (the same ones) and the job updates those rows`,
    );
  }
  await session.query(dropDemoAttempts);
  await ensureAttemptTable(session, parseQualifiedName('attempt', 'table'));
  await session.query(createDemoHash);
  const demo = { students: options.students, days: options.days, lastDay: options.lastDay, timezone: config.timezone };
  options.print(`[demo] generating ${options.students} students × ${options.days} days of attempts up to ${options.lastDay} …`);
  const t0 = Date.now();
  let attempts = 0;
  // A week per statement, oldest first: PGlite blocks the event loop during a statement, so
  // progress can only be reported between statements.
  for (let to = options.days - 1; to >= 0; to -= 7) {
    const from = Math.max(0, to - 6);
    const inserted = await session.query(insertDemoAttempts(demo, { from, to }));
    attempts += inserted.rowCount ?? 0;
    options.print(
      `[demo]   ${attempts} attempts (${options.days - from}/${options.days} days, ${((Date.now() - t0) / 1000).toFixed(1)} s)`,
    );
  }
  await session.query(analyzeDemoAttempts);
  options.print(`[demo] ${attempts} attempts generated in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const t1 = Date.now();
  await session.query(createDemoThetaTables);
  const estimates = (await session.query(insertDemoEstimates(demo))).rowCount ?? 0;
  const fits = (await session.query(insertDemoMirt(demo))).rowCount ?? 0;
  await session.query(indexDemoThetaTables);
  options.print(
    `[demo] ${estimates} ability estimates in student_topic_theta and ${fits} weekly fits in mirt_ability generated in ${((Date.now() - t1) / 1000).toFixed(1)} s` +
      (config.includeTheta ? '' : ' (set AGG_INCLUDE_THETA=true to fill the theta columns)'),
  );

  options.print(`[demo] running the daily job for anchor ${options.lastDay} (lookback ${config.lookbackDays} days) …`);
  const first = await runDaily(session, config, { date: options.lastDay, allowFuture: true }, events);

  const added = await session.query(insertLateAttempts(demo));
  options.print(`[demo] ${added.rowCount ?? 0} late-arriving attempts added to the last 3 days; running again …`);
  const second = await runDaily(session, config, { date: options.lastDay, allowFuture: true }, events);
  await printSample(session, options);
  return { attempts, estimates, first, second, existingRows, example: await pickExample(session, options.lastDay) };
}

/** The demo's closing lines: what the two runs did, said plainly also when the data already existed. */
export function demoSummary(result: DemoResult): string {
  const { first, second } = result;
  const firstRun =
    result.existingRows === 0
      ? `the first run inserted ${first.inserted} rows`
      : `the data already existed (${result.existingRows} rows from an earlier demo in this directory): the first run inserted ${first.inserted}, ` +
        `updated ${first.updated} (the earlier demo's late attempts are gone from the regenerated data), left ${first.unchanged} unchanged and deleted ${first.deleted}`;
  return `${result.attempts} attempts; ${firstRun}; the re-run after late data updated ${second.updated} and left ${second.unchanged} unchanged.`;
}

/**
 * The commands to try next on the demo's directory, each one line to copy into a shell in the
 * project's directory: the report of the demo's days, `explain` of one of its rows, and `sql`.
 */
export function demoNextCommands(directory: string, lastDay: string, example: DemoResult['example']): string[] {
  const cli = `DATABASE_URL=${shellWord(`pglite:${directory}`)} node dist/cli.js`;
  const commands = [`${cli} report --date ${lastDay}`];
  if (example !== undefined) {
    commands.push(`${cli} explain --user ${shellWord(example.user)} --topic ${shellWord(example.topic)} --date ${lastDay}`);
  }
  commands.push(
    `${cli} sql "select date, count(*) as rows, sum(attempts) as attempts from features_topic_daily group by date order by date desc limit 7"`,
  );
  return commands;
}

/** A word for a POSIX shell: as it is when it holds nothing the shell would interpret, else single-quoted. */
function shellWord(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}

/** The anchor day's busiest combination whose improvement index has both halves, for `explain`. */
async function pickExample(session: Session, lastDay: string): Promise<DemoResult['example']> {
  const picked = await session.query<{ user: string; topic: string }>(sql`
    select user_id as "user", topic_id as topic
    from features_topic_daily
    where date = ${lastDay}::date
    order by improvement is null, attempts desc, user_id, topic_id
    limit 1`);
  return picked.rows[0];
}

async function printSample(session: Session, options: DemoOptions): Promise<void> {
  const sample = await session.query<Record<string, unknown>>(sql`
    select user_id, topic_id, date::text as date, attempts, correct, avg_time_ms, rt_median, hints,
           theta_estimate, theta_sd, improvement
    from features_topic_daily
    where date = ${options.lastDay}::date
    order by user_id, topic_id
    limit 8`);
  options.print('');
  options.print(`features_topic_daily on ${options.lastDay} (first 8 rows):`);
  for (const line of formatTable(sample.rows)) options.print(line);
}
