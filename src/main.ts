/**
 * The command line, as a function: parses arguments, calls the library, maps results to exit codes, and
 * closes the database in `finally`. The only place that writes to the console or exits.
 */
import { randomUUID } from 'node:crypto';
import { Command, CommanderError, Option } from 'commander';
import { checkBackfillRange, defaultMaxDays, runBackfill } from './backfill.js';
import { loadConfig, parseDay, variables, type Config, type Flags } from './config.js';
import { openDatabase, type Database, type Session } from './db.js';
import { demoSummary, runDemo } from './demo.js';
import { explainRow } from './explain.js';
import { formatExplanation } from './explain-text.js';
import { ConfigError, ExitCode, JobError, isConnectionError, messageOf, sqlState } from './errors.js';
import { importAttempts } from './import-attempts.js';
import { runDaily, type Shard } from './job.js';
import { createLogger, type Emit, type Level } from './log.js';
import { publishMetrics, type RunOutcome } from './metrics.js';
import { migrate } from './migrate.js';
import { barProgress, lineProgress, type ProgressTerminal } from './progress.js';
import { maskPasswords, passwordsOf } from './redact.js';
import { collectReport } from './report.js';
import { writeReportPage } from './report/html.js';
import { formatReport } from './report/text.js';
import { withRunRetries } from './retry.js';
import { closest } from './suggest.js';
import { runVerify } from './verify.js';
import { runReadOnly } from './read-only-query.js';
import { formatTable } from './format.js';
import { jobVersion } from './version.js';

interface Io {
  readonly env: Record<string, string | undefined>;
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** Aborted when the process is asked to stop (SIGTERM, SIGINT). */
  readonly signal?: AbortSignal;
  /** The terminal a backfill draws its progress bar on (stderr, when it is a TTY); else progress lines. */
  readonly progressTerminal?: ProgressTerminal | undefined;
  /** The width of the terminal stdout is on, if it is one (report fits its lines to it). */
  readonly columns?: number | undefined;
}

/** A whole-number flag within bounds, or a usage error naming it. */
function wholeNumber(value: string, flag: string, min: number, max: number): number {
  const parsed = Number(value);
  if (!/^\d+$/.test(value) || parsed < min || parsed > max) {
    throw new ConfigError(`${flag} ${JSON.stringify(value)} is not accepted: use a whole number from ${min} to ${max}`);
  }
  return parsed;
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
  // Passwords are masked where they can appear: URLs are only ever printed redacted (config.ts),
  // driver and connection errors go through maskPasswords (here, db.ts, retry.ts). Nothing else
  // is rewritten: a password `0` must not turn `failed=0` into `failed=***`.
  const passwords = [...passwordsOf(io.env.DATABASE_URL), ...passwordsOf(io.env.PUSHGATEWAY_URL)];
  const runId = randomUUID();
  let format: 'text' | 'json' = io.env.LOG_FORMAT?.trim().toLowerCase() === 'json' ? 'json' : 'text';
  const emit: Emit = (event) => createLogger({ format, runId, sink: (line: string, _level: Level) => io.stderr(line + '\n') })(event);
  const fail = (message: string) => emit({ type: 'message', level: 'error', message });

  let db: Database | undefined;
  let session: Session | undefined;
  const withConfig = (flags: Flags = {}): Config => {
    const config = loadConfig(io.env, { ...flags, settings: settingValues() });
    format = config.logFormat;
    return config;
  };
  /** Opens the configured database. */
  const openDb = async (config: Config, options: { create?: boolean } = {}): Promise<Database> => {
    if (config.database === undefined) {
      throw new ConfigError(
        'DATABASE_URL is not set: set it to postgres://user:password@host:5432/database, or to pglite:<directory> for the embedded database',
      );
    }
    db = await openDatabase(config.database, {
      connectAttempts: config.connectAttempts,
      connectTimeoutMs: config.connectTimeoutMs,
      createDirectory: options.create ?? false,
    });
    const opened = db;
    io.signal?.addEventListener('abort', () => void opened.interrupt(), { once: true });
    return db;
  };
  /** Opens the configured database and the one session a command works on. */
  const open = async (config: Config, options: { create?: boolean } = {}): Promise<Session> => {
    session = await (await openDb(config, options)).connect();
    return session;
  };

  const program = new Command('aggregate-features-daily')
    .description('Keeps features_topic_daily exact: per (student, topic, day) practice features computed inside PostgreSQL.')
    .version(jobVersion, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: io.stdout,
      // Usage errors are log lines too: with LOG_FORMAT=json, one JSON object per line.
      writeErr: (text) => {
        if (format !== 'json') return io.stderr(text);
        for (const line of text.split('\n')) if (line.trim() !== '') fail(line.trim());
      },
    });

  // The variables that are also flags (--lookback-days, --timezone) are options of every
  // command, and --help lists every variable with its default: both come from the definitions
  // the configuration is parsed with (config.ts), so they cannot drift from it.
  const settingFlags = variables.flatMap((v) =>
    v.flag === undefined ? [] : [{ name: v.name, option: new Option(`${v.flag} <value>`, `${v.help} (overrides ${v.name})`) }],
  );
  for (const { option } of settingFlags) program.addOption(option);
  const settingValues = () => {
    const given = program.opts<Record<string, string | undefined>>();
    return Object.fromEntries(settingFlags.map(({ name, option }) => [name, given[option.attributeName()]]));
  };
  program.configureHelp({ showGlobalOptions: true });
  program.addHelpText('after', () => environmentHelp());

  let exitCode: number = ExitCode.ok;

  /** Publishes a writing run's metrics where configured; a failure to publish is only a warning. */
  const publish = async (config: Config, outcome: RunOutcome) => {
    if (config.metrics.pushgatewayUrl === undefined && config.metrics.textfile === undefined) return;
    for (const warning of await publishMetrics(outcome, config.metrics))
      emit({ type: 'message', level: 'warn', message: maskPasswords(warning, passwords) });
  };
  /**
   * Runs a writing command and reports its metrics, on success and on failure alike: the one
   * place where run results become metrics.
   */
  const measured = async <T extends NonNullable<RunOutcome['counts']> & { window: NonNullable<RunOutcome['window']>; durationMs: number }>(
    config: Config,
    what: { command: RunOutcome['command']; shard: Shard | undefined },
    work: () => Promise<T>,
    extra: (result: T) => Partial<RunOutcome> = () => ({}),
  ): Promise<T> => {
    const started = Date.now();
    const shard = what.shard ?? { index: 1, count: 1 };
    let result: T;
    try {
      result = await work();
    } catch (err) {
      await publish(config, { command: what.command, shard, success: false, durationMs: Date.now() - started, finishedAt: Date.now() });
      throw err;
    }
    await publish(config, {
      command: what.command,
      shard,
      success: result.failed === 0,
      durationMs: result.durationMs,
      finishedAt: Date.now(),
      counts: result,
      window: result.window,
      ...extra(result),
    });
    if (result.failed > 0) exitCode = ExitCode.failed;
    return result;
  };

  program
    .command('run', { isDefault: true })
    .description('run the daily job for the window ending at --date (default: yesterday in AGG_TIMEZONE)')
    .option('--date <YYYY-MM-DD>', 'anchor day (the last day of the window)')
    .option('--dry-run', 'compute and compare, write nothing; report would-insert/update/delete counts')
    .option('--shard <i/N>', 'process only shard i of N (students split by a stable hash of user_id)')
    .option(
      '--allow-shrink',
      "let a run whose source lost most of a day's attempts (or all of them) delete that day's rows: a deliberate correction",
    )
    .addOption(new Option('--allow-empty-source', 'the older name of --allow-shrink').hideHelp())
    .option('--allow-future', 'accept a --date after today in AGG_TIMEZONE (refused otherwise: such a day has no attempts yet)')
    .addOption(new Option('--max-catch-up-days <n>', 'widen the window by at most n days to cover missed runs').default('30'))
    .action(
      async (opts: {
        date?: string;
        dryRun?: boolean;
        shard?: string;
        allowShrink?: boolean;
        allowEmptySource?: boolean;
        allowFuture?: boolean;
        maxCatchUpDays: string;
      }) => {
        const config = withConfig({ date: opts.date, dryRun: opts.dryRun });
        const maxCatchUpDays = Number(opts.maxCatchUpDays);
        if (!/^\d+$/.test(opts.maxCatchUpDays) || maxCatchUpDays > 366) {
          throw new ConfigError(
            `--max-catch-up-days ${JSON.stringify(opts.maxCatchUpDays)} is not accepted: use a whole number from 0 to 366`,
          );
        }
        const shard = opts.shard === undefined ? undefined : parseShard(opts.shard);
        const database = await openDb(config);
        const run = () =>
          withRunRetries(database, config.runAttempts, emit, io.signal, (runSession) =>
            runDaily(
              runSession,
              config,
              {
                date: opts.date,
                dryRun: opts.dryRun ?? false,
                shard,
                allowShrink: (opts.allowShrink ?? false) || (opts.allowEmptySource ?? false),
                allowFuture: opts.allowFuture ?? false,
                maxCatchUpDays,
                runId,
                signal: io.signal,
              },
              emit,
            ),
          );
        // A dry run writes nothing, so it has no metrics either.
        if (opts.dryRun) await run();
        else await measured(config, { command: 'run', shard }, run);
      },
    );

  program
    .command('backfill')
    .description(
      'recompute the days --from..--to, each day in its own transaction (resumable: re-run the same command), then the improvement of the 27 days after them',
    )
    .requiredOption('--from <YYYY-MM-DD>', 'first day to recompute')
    .requiredOption('--to <YYYY-MM-DD>', 'last day to recompute (not after today in AGG_TIMEZONE, unless --allow-future)')
    .option('--shard <i/N>', 'process only shard i of N (students split by a stable hash of user_id)')
    .option('--allow-future', 'accept a range that ends after today')
    .option('--max-days <n>', 'refuse ranges longer than n days', String(defaultMaxDays))
    .option('--allow-shrink', "let a day whose source lost most of its attempts (or all of them) delete that day's rows")
    .addOption(new Option('--allow-empty-source', 'the older name of --allow-shrink').hideHelp())
    .option('--progress-interval <seconds>', 'seconds between progress lines when stderr is not a terminal (0: every day)', '10')
    .action(
      async (opts: {
        from: string;
        to: string;
        shard?: string;
        allowFuture?: boolean;
        maxDays: string;
        allowShrink?: boolean;
        allowEmptySource?: boolean;
        progressInterval: string;
      }) => {
        const config = withConfig();
        parseDay(opts.from, '--from');
        parseDay(opts.to, '--to');
        const maxDays = wholeNumber(opts.maxDays, '--max-days', 1, 36_600);
        const intervalMs = wholeNumber(opts.progressInterval, '--progress-interval', 0, 86_400) * 1000;
        const shard = opts.shard === undefined ? undefined : parseShard(opts.shard);
        checkBackfillRange(opts.from, opts.to, maxDays);
        const progress =
          io.progressTerminal !== undefined && config.logFormat === 'text' && !config.debug
            ? barProgress(io.progressTerminal)
            : lineProgress(emit, intervalMs);
        try {
          const database = await openDb(config);
          await measured(
            config,
            { command: 'backfill', shard },
            async () =>
              withRunRetries(database, config.runAttempts, emit, io.signal, (backfillSession) =>
                runBackfill(
                  backfillSession,
                  config,
                  {
                    from: opts.from,
                    to: opts.to,
                    shard,
                    allowFuture: opts.allowFuture ?? false,
                    maxDays,
                    allowShrink: (opts.allowShrink ?? false) || (opts.allowEmptySource ?? false),
                    runId,
                    signal: io.signal,
                    onProgress: (p) => progress.update(p),
                  },
                  (event) => {
                    // The bar's last state stays on screen; the summary lines go below it.
                    if (event.type === 'ripple_finished' || event.type === 'message') progress.stop();
                    emit(event);
                  },
                ),
              ),
            (result) => ({ rippleUpdated: result.ripple?.updated ?? 0 }),
          );
        } finally {
          progress.stop();
        }
      },
    );

  program
    .command('verify')
    .description('recompute a window without writing and compare it with features_topic_daily; list differing rows, exit 1 on drift')
    .option('--date <YYYY-MM-DD>', 'anchor of the window checked (since = anchor - AGG_LOOKBACK_DAYS; default: yesterday)')
    .option('--from <YYYY-MM-DD>', 'first day of an explicit range (with --to, instead of --date)')
    .option('--to <YYYY-MM-DD>', 'last day of an explicit range')
    .option('--shard <i/N>', 'check only shard i of N')
    .option('--limit <n>', 'list at most n differing rows', '20')
    .action(async (opts: { date?: string; from?: string; to?: string; shard?: string; limit: string }) => {
      const config = withConfig({ date: opts.date });
      if (opts.date !== undefined && (opts.from !== undefined || opts.to !== undefined)) {
        throw new ConfigError('verify takes either --date or --from and --to, not both');
      }
      if ((opts.from === undefined) !== (opts.to === undefined)) {
        throw new ConfigError('verify --from needs --to (and --to needs --from)');
      }
      if (opts.from !== undefined && opts.to !== undefined) {
        parseDay(opts.from, '--from');
        parseDay(opts.to, '--to');
        if (opts.from > opts.to) throw new ConfigError(`--from ${opts.from} is after --to ${opts.to}: the range must run forwards`);
      }
      const limit = wholeNumber(opts.limit, '--limit', 0, 10_000);
      const shard = opts.shard === undefined ? undefined : parseShard(opts.shard);
      const database = await openDb(config);
      const result = await withRunRetries(database, config.runAttempts, emit, io.signal, (verifySession) =>
        runVerify(verifySession, config, { date: opts.date, from: opts.from, to: opts.to, shard, limit }, emit),
      );
      if (result.drift) exitCode = ExitCode.failed;
    });

  program
    .command('report')
    .description(
      'a verdict (OK/WARN/FAIL with reasons), coverage per day with bars, theta coverage, recent rows and the last runs (or --json, --html FILE)',
    )
    .option('--days <n>', 'days covered, ending at --date', '7')
    .option('--date <YYYY-MM-DD>', 'last day covered (default: yesterday in AGG_TIMEZONE, or the newest day with rows)')
    .option('--limit <n>', 'rows listed in the recent-rows and last-runs sections', '10')
    .option('--json', 'print one JSON document instead of tables')
    .option('--html <file>', 'also write a self-contained HTML page with charts to <file>')
    .option('--check', 'exit 1 when the verdict is FAIL (for a monitoring probe)')
    .option('--fail-on-warn', 'with --check: exit 1 on WARN too')
    .option('--width <n>', 'line width of the text (default: the terminal width, else 100)')
    .action(
      async (opts: {
        days: string;
        date?: string;
        limit: string;
        json?: boolean;
        html?: string;
        check?: boolean;
        failOnWarn?: boolean;
        width?: string;
      }) => {
        const config = withConfig({ date: opts.date });
        const days = wholeNumber(opts.days, '--days', 1, 366);
        const limit = wholeNumber(opts.limit, '--limit', 0, 1000);
        const width = opts.width === undefined ? (io.columns ?? 100) : wholeNumber(opts.width, '--width', 40, 1000);
        if (opts.failOnWarn && !opts.check) throw new ConfigError('--fail-on-warn needs --check');
        const report = await collectReport(await open(config), config, { days, date: opts.date, limit });
        if (opts.json) io.stdout(JSON.stringify(report, null, 2) + '\n');
        else io.stdout(formatReport(report, width).join('\n') + '\n');
        if (opts.html !== undefined) {
          await writeReportPage(opts.html, report);
          emit({ type: 'message', level: 'info', message: `Wrote the report page to ${opts.html}` });
        }
        const status = report.verdict.status;
        if (opts.check && (status === 'FAIL' || (status === 'WARN' && opts.failOnWarn))) exitCode = ExitCode.failed;
      },
    );

  program
    .command('explain')
    .description(
      'show how one row is made: its attempts, median, 14-day halves, theta, improvement terms; stored vs recomputed (exit 1 if they differ)',
    )
    .requiredOption('--user <user_id>', 'the user_id of the row')
    .requiredOption('--topic <topic_id>', 'the topic_id of the row')
    .requiredOption('--date <YYYY-MM-DD>', 'the day of the row')
    .option('--json', 'print one JSON document instead of text')
    .action(async (opts: { user: string; topic: string; date: string; json?: boolean }) => {
      const config = withConfig({ date: opts.date });
      const explanation = await explainRow(await open(config), config, { user: opts.user, topic: opts.topic, date: opts.date }, emit);
      if (opts.json) io.stdout(JSON.stringify(explanation, null, 2) + '\n');
      else io.stdout(formatExplanation(explanation).join('\n') + '\n');
      if (explanation.differences.length > 0) exitCode = ExitCode.failed;
    });

  program
    .command('sql')
    .description('run one read-only statement (in a read-only transaction) on the configured database and print an aligned table')
    .argument('<statement>', 'one SQL statement, e.g. "select count(*) from features_topic_daily"')
    .option('--json', 'print the rows as a JSON array')
    .action(async (statement: string, opts: { json?: boolean }) => {
      const config = withConfig();
      const result = await runReadOnly(await open(config), config, statement);
      if (opts.json) io.stdout(JSON.stringify(result.rows, null, 2) + '\n');
      else
        io.stdout(
          [...formatTable(result.rows, result.columns), `(${result.rows.length} ${result.rows.length === 1 ? 'row' : 'rows'})`].join('\n') +
            '\n',
        );
    });

  program
    .command('migrate')
    .description("create or upgrade the job's tables (adopts an existing features_topic_daily without losing rows)")
    .action(async () => {
      const config = withConfig();
      const applied = await migrate(await open(config, { create: true }));
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
      const config = loadConfig({ ...io.env, DATABASE_URL: `pglite:${opts.dir}` }, { settings: settingValues() });
      format = config.logFormat;
      const students = Number(opts.students);
      const days = Number(opts.days);
      if (!Number.isInteger(students) || students < 1 || students > 100_000)
        throw new ConfigError('--students must be a whole number from 1 to 100000');
      if (!Number.isInteger(days) || days < 1 || days > 400) throw new ConfigError('--days must be a whole number from 1 to 400');
      parseDay(opts.date, '--date');
      io.stdout(`[demo] opening the embedded database in ${opts.dir} …\n`);
      const result = await runDemo(
        await open(config, { create: true }),
        config,
        { students, days, lastDay: opts.date, print: (line) => io.stdout(line + '\n') },
        emit,
      );
      io.stdout(
        `\n[demo] done: ${demoSummary(result)}\n` +
          `[demo] query it yourself: DATABASE_URL=pglite:${opts.dir} node dist/cli.js --dry-run --date ${opts.date}\n`,
      );
    });

  program
    .command('import-attempts')
    .description('load a CSV (student_id,topic_id,completed_at,correct,response_time_ms,hint_used) into the attempts table')
    .argument('<file>', 'CSV file with a header line')
    .option('--replace', 'empty the table first (in the same transaction)')
    .option(
      '--allow-duplicates',
      "append even when rows equal to the file's are already in the table (refused otherwise: the same file imported twice)",
    )
    .action(async (file: string, opts: { replace?: boolean; allowDuplicates?: boolean }) => {
      const config = withConfig();
      const table = config.source;
      const rows = await importAttempts(await open(config, { create: true }), {
        file,
        table,
        replace: opts.replace ?? false,
        allowDuplicates: opts.allowDuplicates ?? false,
      });
      emit({ type: 'message', level: 'info', message: `Imported ${rows} attempts from ${file} into ${table.sql}`, fields: { rows } });
    });

  try {
    rejectUnknownCommand(argv, program);
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    exitCode = exitCodeOf(err);
    if (err instanceof CommanderError) {
      // Commander has already printed its message (or the help / version).
    } else if (io.signal?.aborted && !(err instanceof JobError && err.exitCode !== ExitCode.failed)) {
      exitCode = ExitCode.failed;
      fail(`stopped by ${String(io.signal.reason)}: the unfinished window was rolled back, nothing of it was written; re-run the job`);
    } else {
      fail(err instanceof JobError ? err.message : maskPasswords(describeError(err), passwords));
    }
  } finally {
    session?.release();
    if (db) await db.close().catch(() => undefined);
  }
  return exitCode;
}

/**
 * A first word that is no command would otherwise reach the default command as an argument
 * ("too many arguments for 'run'"); say what it is instead, with the nearest command.
 */
function rejectUnknownCommand(argv: readonly string[], program: Command): void {
  const word = argv[0];
  if (word === undefined || word.startsWith('-')) return;
  const names = [...program.commands.flatMap((c) => [c.name(), ...c.aliases()]), 'help'];
  if (names.includes(word)) return;
  const nearest = closest(word, names);
  const commands = program.commands.map((c) => c.name()).join(', ');
  throw new ConfigError(
    `unknown command ${JSON.stringify(word)}${nearest === undefined ? '' : ` — did you mean '${nearest}'?`} Commands: ${commands} (run --help for usage)`,
  );
}

/** The environment variables with their defaults, for --help. */
function environmentHelp(): string {
  const width = Math.max(...variables.map((v) => v.name.length)) + 2;
  const defaultWidth = Math.max(...variables.map((v) => (v.default ?? '(none)').length)) + 2;
  const lines = variables.map(
    (v) => `  ${v.name.padEnd(width)}${(v.default ?? '(none)').padEnd(defaultWidth)}${v.help}${v.flag ? ` [${v.flag}]` : ''}`,
  );
  return `\nEnvironment variables (name, default, meaning; an empty variable counts as unset, a flag overrides its variable):\n${lines.join('\n')}\n`;
}

function exitCodeOf(err: unknown): number {
  if (err instanceof CommanderError) {
    return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help'
      ? ExitCode.ok
      : ExitCode.usage;
  }
  if (err instanceof JobError) return err.exitCode;
  // The role lacks a grant, or the server only reads: the setup must change, a retry cannot help.
  if (sqlState(err) === '42501' || sqlState(err) === '25006') return ExitCode.usage;
  if (isConnectionError(err)) return ExitCode.unreachable;
  return ExitCode.failed;
}

function describeError(err: unknown): string {
  if (err instanceof JobError) return err.message;
  if (isConnectionError(err))
    return `lost the database connection: ${messageOf(err) || 'connection error'}; nothing of the unfinished window was committed, re-run the job`;
  const state = sqlState(err);
  if (state === '42501') {
    return `${messageOf(err)} (SQLSTATE 42501): grant the job's role what sql/roles.sql grants, and run migrate as the tables' owner (docs/security.md); nothing was written`;
  }
  if (state === '25006') {
    return `${messageOf(err)} (SQLSTATE 25006): this command writes; point DATABASE_URL at the primary, not a replica or a read-only session (only --dry-run and verify read); nothing was written`;
  }
  const hint =
    state === '57014'
      ? '; the statement ran longer than AGG_STATEMENT_TIMEOUT_MS'
      : state === '55P03'
        ? '; another session held a lock on the table longer than AGG_LOCK_TIMEOUT_MS'
        : '';
  return `run failed: ${messageOf(err)}${state ? ` (SQLSTATE ${state})` : ''}${hint}; nothing of the unfinished work was committed`;
}
