/** How an error ends the CLI: its exit code and its one-line message. */
import { CommanderError } from 'commander';
import { ExitCode, JobError, isConnectionError, messageOf, sqlState } from '../errors.js';

/** The exit code of an error that ended a command. */
export function exitCodeOf(err: unknown): number {
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

/** The message of an error that is no JobError: what happened, and what to do. */
export function describeError(err: unknown): string {
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
