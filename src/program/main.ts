/**
 * The command line, as a function: builds the program from the commands (src/commands/, one
 * file each), runs it, maps the outcome to an exit code, and closes the database in `finally`.
 * The only place that decides how the process ends; commands write through the context's
 * injected streams.
 */
import { CommanderError, type Command } from 'commander';
import { createContext, type CommandContext, type Io } from './context.js';
import { describeError, exitCodeOf } from './exit.js';
import { CliCommand, environmentHelp, rejectUnknownCommand } from './help.js';
import { settingValues } from './options.js';
import { registerBackfill } from '../commands/backfill.js';
import { registerDemo } from '../commands/demo.js';
import { registerExplain } from '../commands/explain.js';
import { registerImport } from '../commands/import.js';
import { registerMigrate } from '../commands/migrate.js';
import { registerReport } from '../commands/report.js';
import { registerRun } from '../commands/run.js';
import { registerSql } from '../commands/sql.js';
import { registerVerify } from '../commands/verify.js';
import { ExitCode, JobError } from '../errors.js';
import { visible } from '../format.js';
import { maskPasswords } from '../database/redact.js';
import { jobVersion } from '../version.js';

export type { Io };

/** The commands, in the order --help lists them. */
const commands = [
  registerRun,
  registerBackfill,
  registerVerify,
  registerReport,
  registerExplain,
  registerSql,
  registerMigrate,
  registerDemo,
  registerImport,
];

/** Runs the CLI with the given arguments; resolves to the exit code. */
export async function main(argv: string[], io: Io): Promise<number> {
  // Passwords are masked where they can appear: URLs are only ever printed redacted (config.ts),
  // driver and connection errors go through maskPasswords (here, db.ts, retry.ts). Nothing else
  // is rewritten: a password `0` must not turn `failed=0` into `failed=***`.
  const program = new CliCommand('aggregate-features-daily');
  // The variables' flags (--lookback-days, --timezone) are options of the commands they change,
  // read from the command that runs.
  let running: Command = program;
  program.hook('preAction', (_program, command) => {
    running = command;
  });
  const ctx = createContext(io, () => settingValues(running.opts()));
  const fail = (message: string) => ctx.emit({ type: 'message', level: 'error', message });
  describeProgram(program, ctx, fail);
  for (const register of commands) register(program, ctx);
  try {
    rejectUnknownCommand(argv, program);
    await program.parseAsync(argv, { from: 'user' });
    return ctx.exitCode;
  } catch (err) {
    const exitCode = exitCodeOf(err);
    if (err instanceof CommanderError) {
      // Commander has already printed its message (or the help / version).
      return exitCode;
    }
    if (io.signal?.aborted && !(err instanceof JobError && err.exitCode !== ExitCode.failed)) {
      fail(`stopped by ${String(io.signal.reason)}: the unfinished window was rolled back, nothing of it was written; re-run the job`);
      return ExitCode.failed;
    }
    fail(err instanceof JobError ? err.message : maskPasswords(describeError(err), ctx.passwords));
    return exitCode;
  } finally {
    await ctx.close();
  }
}

function describeProgram(program: Command, ctx: CommandContext, fail: (message: string) => void): void {
  program
    .description('Keeps features_topic_daily exact: per (student, topic, day) practice features computed inside PostgreSQL.')
    .version(jobVersion, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: ctx.io.stdout,
      // Usage errors are log lines too: with LOG_FORMAT=json, one JSON object per line.
      writeErr: (text) => {
        if (ctx.format !== 'json') return ctx.io.stderr(text.split('\n').map(visible).join('\n'));
        for (const line of text.split('\n')) if (line.trim() !== '') fail(line.trim());
      },
    });
  program.configureHelp({ showGlobalOptions: true });
  program.addHelpText('after', () => environmentHelp());
}
