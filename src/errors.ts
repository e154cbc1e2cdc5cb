/**
 * Errors that the CLI maps to exit codes. Everything below the CLI throws one of
 * these (or lets a database error propagate); nothing else decides an exit code.
 */
export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  locked: 3,
  unreachable: 4,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** An error with a one-line, user-facing message and the exit code it stands for. */
export class JobError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad flags, environment, or a database that is not set up for the job (exit 2). */
export class ConfigError extends JobError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, ExitCode.usage, options);
  }
}

/** Another run holds the write lock (exit 3). */
export class LockHeldError extends JobError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, ExitCode.locked, options);
  }
}

/** The database could not be reached after the retry budget (exit 4). */
export class UnreachableError extends JobError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, ExitCode.unreachable, options);
  }
}

/** The run started but failed (exit 1). */
export class RunFailedError extends JobError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, ExitCode.failed, options);
  }
}

/**
 * The run refused to publish days (exit 1): a newest day that looks incomplete, or a stored day
 * whose source shrank. `days` names them, for the metrics (held_back_days).
 */
export class HeldBackError extends RunFailedError {
  constructor(
    message: string,
    readonly days: readonly string[],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The run was stopped by a signal (SIGTERM from Kubernetes) and rolled back (exit 1). */
export class RunStoppedError extends JobError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, ExitCode.failed, options);
  }
}

/** The SQLSTATE of a PostgreSQL error, if the value is one. */
export function sqlState(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = err.code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}

const networkCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']);

/** True for errors that say the server could not be reached or the connection dropped. */
export function isConnectionError(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && networkCodes.has(code)) return true;
  const state = sqlState(err);
  // 08xxx connection exceptions, 57P01..57P03 admin shutdown / crash / cannot connect now.
  if (state !== undefined && (state.startsWith('08') || /^57P0[123]$/.test(state))) return true;
  const message = err instanceof Error ? err.message : '';
  return /Connection terminated|connection timeout|timeout expired|Client has encountered a connection error/i.test(message);
}

/**
 * Transient failures worth retrying (an allow-list by SQLSTATE, never by message text):
 * connection loss, serialization failure, deadlock.
 */
export function isTransient(err: unknown): boolean {
  const state = sqlState(err);
  return state === '40001' || state === '40P01' || isConnectionError(err);
}

/** The message of any thrown value. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
