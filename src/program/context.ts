/**
 * What every command gets from the CLI: the injected streams and environment, the run's id,
 * the event stream (the log is subscribed to it here), the configuration, the database it opens
 * (closed by main in `finally`), and the exit code it ends with.
 */
import { randomUUID } from 'node:crypto';
import { loadConfig, logFormatOf, type Config, type Flags, type LogFormat } from '../config/index.js';
import { openDatabase, type Database, type Session } from '../database/db.js';
import { ConfigError, ExitCode } from '../errors.js';
import { createEventStream, type Emit, type EventStream } from '../observe/events.js';
import { createLogger } from '../observe/log.js';
import type { ProgressTerminal } from '../observe/progress.js';
import { metricsConsumer } from '../observe/metrics.js';
import { maskPasswords, passwordsOf } from '../database/redact.js';

export interface Io {
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

export interface CommandContext {
  readonly io: Io;
  /** The id of this invocation's run (the run log's run_id, the JSON log's run_id). */
  readonly runId: string;
  /**
   * The invocation's one event stream: the log and the metrics are subscribed here, a backfill's
   * progress by its command, the run log by the run for as long as it holds its session.
   */
  readonly events: EventStream;
  /** Emits into `events`. */
  readonly emit: Emit;
  /** Waits until the consumers have handled what was emitted (the metrics' push). */
  settled(): Promise<void>;
  /** Passwords of DATABASE_URL and PUSHGATEWAY_URL, masked wherever a driver's message is printed. */
  readonly passwords: readonly string[];
  /** The current log format (the configuration's once loaded). */
  readonly format: LogFormat;
  /**
   * Loads the configuration (defaults, then `env` over the environment, then flags); the log
   * follows its format, and the metrics it configures consume the events.
   */
  config(flags?: Flags, env?: Record<string, string>): Config;
  /** Opens the configured database (closed by main at the end). */
  database(config: Config, options?: { create?: boolean }): Promise<Database>;
  /** Opens the configured database and the one session a command works on. */
  session(config: Config, options?: { create?: boolean }): Promise<Session>;
  /** The exit code when no error ends the command (0 unless set). */
  exitCode: number;
  /** Releases the session and closes the database, if opened. */
  close(): Promise<void>;
}

/** A context for one invocation; `settings` gives the values of the variables' flags. */
export function createContext(io: Io, settings: () => Record<string, string | undefined>): CommandContext {
  let format = logFormatOf(io.env);
  const runId = randomUUID();
  const events = createEventStream();
  events.subscribe((event) => createLogger({ format, runId, sink: (line) => io.stderr(line + '\n') })(event));
  let db: Database | undefined;
  let session: Session | undefined;
  let unsubscribeMetrics: (() => void) | undefined;
  const context: CommandContext = {
    io,
    runId,
    events,
    emit: events.emit,
    settled: () => events.settled(),
    passwords: [...passwordsOf(io.env.DATABASE_URL), ...passwordsOf(io.env.PUSHGATEWAY_URL)],
    get format() {
      return format;
    },
    exitCode: ExitCode.ok,
    config(flags = {}, env = {}) {
      const config = loadConfig({ ...io.env, ...env }, { ...flags, settings: settings() });
      format = config.logFormat;
      unsubscribeMetrics?.();
      unsubscribeMetrics = events.subscribe(
        metricsConsumer(config.metrics, (warning) =>
          events.emit({ type: 'message', level: 'warn', message: maskPasswords(warning, context.passwords) }),
        ),
      );
      return config;
    },
    async database(config, options = {}) {
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
    },
    async session(config, options = {}) {
      session = await (await context.database(config, options)).connect();
      return session;
    },
    async close() {
      session?.release();
      if (db) await db.close().catch(() => undefined);
    },
  };
  return context;
}
