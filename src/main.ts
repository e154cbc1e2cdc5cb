/**
 * The command line, as a function: parses arguments, calls the library, maps results to exit codes, and
 * closes the database in `finally`. The only place that writes to the console or exits.
 */
import { randomUUID } from 'node:crypto';
import { Command, CommanderError, Option } from 'commander';
import { loadConfig, parseDay, type Config, type Flags } from './config.js';
import { openDatabase, type Database, type Session } from './db.js';
import { runDemo } from './demo.js';
import { ConfigError, ExitCode, JobError, isConnectionError, messageOf, sqlState } from './errors.js';
import { importAttempts } from './import-attempts.js';
import { runDaily, type Shard } from './job.js';
import { createLogger, type Emit, type Level } from './log.js';
import { migrate } from './migrate.js';
import { createRedactor } from './redact.js';
import { withRunRetries } from './retry.js';
import { jobVersion } from './version.js';

interface Io {
  readonly env: Record<string, string | undefined>;
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** Aborted when the process is asked to stop (SIGTERM, SIGINT). */
  readonly signal?: AbortSignal;
}

function parseShard(value: string): Shard {
  const match = /^(\d+)\/(\d+)$/.exec(value);
  const index = Number(match?.[1]);
  const count = Number(match?.[2]);
  if (!match || count < 1 || count > 1024 || index < 1 || index > count) {
    throw new ConfigError(`--shard ${JSON.stringify(value)} is not accepted: use i/N with 1 ≤ i ≤ N ≤ 1024, e.g. 1/4`);
  }
  return { index, count };
}

/** Runs the CLI with the given arguments; resolves to the exit code. */
export async function main(argv: string[], io: Io): Promise<number> {
  const redact = createRedactor([io.env.DATABASE_URL]);
  const runId = randomUUID();
  let format: 'text' | 'json' = io.env.LOG_FORMAT?.trim().toLowerCase() === 'json' ? 'json' : 'text';
  const emit: Emit = (event) =>
    createLogger({ format, runId, redact, sink: (line: string, _level: Level) => io.stderr(line + '\n') })(event);
  const fail = (message: string) => emit({ type: 'message', level: 'error', message });

  let db: Database | undefined;
  let session: Session | undefined;
  const withConfig = (flags: Flags = {}): Config => {
    const config = loadConfig(io.env, flags);
    format = config.logFormat;
    return config;
  };
  /** Opens the configured database. */
  const openDb = async (config: Config): Promise<Database> => {
    if (config.database === undefined) {
      throw new ConfigError(
        'DATABASE_URL is not set: set it to postgres://user:password@host:5432/database, or to pglite:<directory> for the embedded database',
      );
    }
    db = await openDatabase(config.database, { connectAttempts: config.connectAttempts, connectTimeoutMs: config.connectTimeoutMs });
    const opened = db;
    io.signal?.addEventListener('abort', () => void opened.interrupt(), { once: true });
    return db;
  };
  /** Opens the configured database and the one session a command works on. */
  const open = async (config: Config): Promise<Session> => {
    session = await (await openDb(config)).connect();
    return session;
  };

  const program = new Command('aggregate-features-daily')
    .description('Keeps features_topic_daily exact: per (student, topic, day) practice features computed inside PostgreSQL.')
    .version(jobVersion, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });

  let exitCode: number = ExitCode.ok;

  program
    .command('run', { isDefault: true })
    .description('run the daily job for the window ending at --date (default: yesterday in AGG_TIMEZONE)')
    .option('--date <YYYY-MM-DD>', 'anchor day (the last day of the window)')
    .option('--dry-run', 'compute and compare, write nothing; report would-insert/update/delete counts')
    .option('--shard <i/N>', 'process only shard i of N (students split by a stable hash of user_id)')
    .option('--allow-empty-source', "let a run whose source has no attempts in the window delete the window's rows")
    .addOption(new Option('--max-catch-up-days <n>', 'widen the window by at most n days to cover missed runs').default('30'))
    .action(async (opts: { date?: string; dryRun?: boolean; shard?: string; allowEmptySource?: boolean; maxCatchUpDays: string }) => {
      const config = withConfig({ date: opts.date, dryRun: opts.dryRun });
      const maxCatchUpDays = Number(opts.maxCatchUpDays);
      if (!/^\d+$/.test(opts.maxCatchUpDays) || maxCatchUpDays > 366) {
        throw new ConfigError(
          `--max-catch-up-days ${JSON.stringify(opts.maxCatchUpDays)} is not accepted: use a whole number from 0 to 366`,
        );
      }
      const shard = opts.shard === undefined ? undefined : parseShard(opts.shard);
      const database = await openDb(config);
      const result = await withRunRetries(database, config.runAttempts, emit, io.signal, (runSession) =>
        runDaily(
          runSession,
          config,
          {
            date: opts.date,
            dryRun: opts.dryRun ?? false,
            shard,
            allowEmptySource: opts.allowEmptySource ?? false,
            maxCatchUpDays,
            runId,
            signal: io.signal,
          },
          emit,
        ),
      );
      if (result.failed > 0) exitCode = ExitCode.failed;
    });

  program
    .command('migrate')
    .description("create or upgrade the job's tables (adopts an existing features_topic_daily without losing rows)")
    .action(async () => {
      const config = withConfig();
      const applied = await migrate(await open(config));
      emit({
        type: 'message',
        level: 'info',
        message: applied.length === 0 ? 'Schema is up to date; nothing to apply.' : `Applied migrations: ${applied.join(', ')}`,
        fields: { applied },
      });
    });

  program
    .command('demo')
    .description('generate realistic attempts in an embedded database, run the job, show the result')
    .option('--dir <directory>', 'embedded database directory', './.data/demo')
    .option('--students <n>', 'number of students', '2500')
    .option('--days <n>', 'days of history', '35')
    .option('--date <YYYY-MM-DD>', "last day of the generated history (the run's anchor)", '2025-11-01')
    .action(async (opts: { dir: string; students: string; days: string; date: string }) => {
      const config = loadConfig({ ...io.env, DATABASE_URL: `pglite:${opts.dir}` });
      format = config.logFormat;
      const students = Number(opts.students);
      const days = Number(opts.days);
      if (!Number.isInteger(students) || students < 1 || students > 100_000)
        throw new ConfigError('--students must be a whole number from 1 to 100000');
      if (!Number.isInteger(days) || days < 1 || days > 400) throw new ConfigError('--days must be a whole number from 1 to 400');
      parseDay(opts.date, '--date');
      io.stdout(`[demo] opening the embedded database in ${opts.dir} …\n`);
      const result = await runDemo(
        await open(config),
        config,
        { students, days, lastDay: opts.date, print: (line) => io.stdout(line + '\n') },
        emit,
      );
      io.stdout(
        `\n[demo] done: ${result.attempts} attempts; first run inserted ${result.first.inserted} rows, the re-run after late data updated ${result.second.updated} and left ${result.second.unchanged} unchanged.\n` +
          `[demo] query it yourself: DATABASE_URL=pglite:${opts.dir} node dist/cli.js --dry-run --date ${opts.date}\n`,
      );
    });

  program
    .command('import-attempts')
    .description('load a CSV (student_id,topic_id,completed_at,correct,response_time_ms,hint_used) into the attempts table')
    .argument('<file>', 'CSV file with a header line')
    .option('--replace', 'empty the table first (in the same transaction)')
    .action(async (file: string, opts: { replace?: boolean }) => {
      const config = withConfig();
      const table = config.source;
      const rows = await importAttempts(await open(config), { file, table, replace: opts.replace ?? false });
      emit({ type: 'message', level: 'info', message: `Imported ${rows} attempts from ${file} into ${table.sql}`, fields: { rows } });
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    exitCode = exitCodeOf(err);
    if (err instanceof CommanderError) {
      // Commander has already printed its message (or the help / version).
    } else if (io.signal?.aborted && !(err instanceof JobError && err.exitCode !== ExitCode.failed)) {
      exitCode = ExitCode.failed;
      fail(`stopped by ${String(io.signal.reason)}: the unfinished window was rolled back, nothing of it was written; re-run the job`);
    } else {
      fail(describeError(err));
    }
  } finally {
    session?.release();
    if (db) await db.close().catch(() => undefined);
  }
  return exitCode;
}

function exitCodeOf(err: unknown): number {
  if (err instanceof CommanderError) {
    return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help'
      ? ExitCode.ok
      : ExitCode.usage;
  }
  if (err instanceof JobError) return err.exitCode;
  if (sqlState(err) === '42501') return ExitCode.usage;
  if (isConnectionError(err)) return ExitCode.unreachable;
  return ExitCode.failed;
}

function describeError(err: unknown): string {
  if (err instanceof JobError) return err.message;
  if (isConnectionError(err))
    return `lost the database connection: ${messageOf(err) || 'connection error'}; nothing of the unfinished window was committed, re-run the job`;
  const state = sqlState(err);
  if (state === '42501') {
    return `${messageOf(err)} (SQLSTATE 42501): grant the job's role what sql/roles.sql grants (docs/security.md); nothing was written`;
  }
  const hint =
    state === '57014'
      ? '; the statement ran longer than AGG_STATEMENT_TIMEOUT_MS'
      : state === '55P03'
        ? '; another session held a lock on the table longer than AGG_LOCK_TIMEOUT_MS'
        : '';
  return `run failed: ${messageOf(err)}${state ? ` (SQLSTATE ${state})` : ''}${hint}; nothing of the unfinished work was committed`;
}
