/**
 * The embedded database (issue 5, scenario 5), on the smallest size only. The same attempts
 * as the server's data set are exported with psql and loaded with the job's own
 * `import-attempts` into a template directory, which is copied afresh for every repetition:
 * first run on an empty target, re-run with no new data, then the late attempts (also
 * imported with `import-attempts`) and a re-run. PGlite's RSS is reported on its own: an idle
 * instance already holds ~700 MB.
 */
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { selectLateAttempts } from './dataset.js';
import { jobEnv, runCli, type JobRun } from './job.js';
import { waitForQuiet } from './quiet.js';
import { psqlCommand } from './server.js';

export interface PgliteResult {
  readonly importMs: number;
  readonly importRssMb: number;
  readonly lateRows: number;
  readonly first: JobRun[];
  readonly rerun: JobRun[];
  readonly late: JobRun[];
}

const csvColumns = `student_id, topic_id,
  to_char(completed_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as completed_at,
  correct, response_time_ms, hint_used`;

function copyOut(query: string, file: string): string {
  return `\\copy (${query.replace(/\s+/g, ' ').trim()}) to '${file}' with (format csv, header)`;
}

export async function measurePglite(options: {
  serverDatabaseUrl: string;
  workDir: string;
  cli: string;
  reps: number;
  window: { since: string; anchor: string };
  lookbackDays: number;
  workMem: string;
  log: (line: string) => void;
}): Promise<PgliteResult> {
  const { workDir, cli, window } = options;
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(workDir, { recursive: true });
  const baseCsv = join(workDir, 'attempts.csv');
  const lateCsv = join(workDir, 'late.csv');
  await psqlCommand(options.serverDatabaseUrl, copyOut(`select ${csvColumns} from attempt order by completed_at`, baseCsv));
  const lateSql = selectLateAttempts.replaceAll('$1::date', `'${window.since}'::date`).replaceAll('$2::date', `'${window.anchor}'::date`);
  await psqlCommand(options.serverDatabaseUrl, copyOut(`select ${csvColumns} from (${lateSql}) late order by completed_at`, lateCsv));

  const template = join(workDir, 'template');
  const env = (dir: string) => jobEnv(`pglite:${dir}`, { lookbackDays: options.lookbackDays, workMem: options.workMem });
  options.log('  pglite: importing the data set with import-attempts …');
  const loaded = await runCli(cli, ['import-attempts', baseCsv], env(template));
  await runCli(cli, ['migrate'], env(template));

  const first: JobRun[] = [];
  const rerun: JobRun[] = [];
  const late: JobRun[] = [];
  const dateArgs = ['--date', window.anchor];
  let lateRows = NaN;
  for (let rep = 0; rep < options.reps; rep++) {
    const dir = join(workDir, 'run');
    rmSync(dir, { recursive: true, force: true });
    cpSync(template, dir, { recursive: true });
    await waitForQuiet();
    first.push(await runCli(cli, dateArgs, env(dir)));
    await waitForQuiet();
    rerun.push(await runCli(cli, dateArgs, env(dir)));
    const imported = await runCli(cli, ['import-attempts', lateCsv], env(dir));
    lateRows = Number(/Imported (\d+) attempts/.exec(imported.stderr)?.[1] ?? NaN);
    await waitForQuiet();
    late.push(await runCli(cli, dateArgs, env(dir)));
    options.log(`  pglite rep ${rep + 1}: first ${ms(first.at(-1)!)}, rerun ${ms(rerun.at(-1)!)}, late ${ms(late.at(-1)!)}`);
  }
  rmSync(join(workDir, 'run'), { recursive: true, force: true });
  return { importMs: loaded.wallMs, importRssMb: loaded.rssMb, lateRows, first, rerun, late };
}

const ms = (run: JobRun) => `${(run.wallMs / 1000).toFixed(2)} s`;
