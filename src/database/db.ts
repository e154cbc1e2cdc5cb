/**
 * One database interface, two implementations: a PostgreSQL server through `pg`, and the
 * embedded PGlite driven by the same `pg` client (PGlite's `createPgConfig`), so the job's
 * code and result types are the same on both.
 */
import { existsSync, mkdirSync } from 'node:fs';
import pg from 'pg';
import type { DatabaseTarget } from '../config/index.js';
import { ConfigError, UnreachableError, isConnectionError, messageOf, sqlState } from '../errors.js';
import { cancelBackends } from '../sql/connection.js';
import type { Sql } from '../sql/tag.js';
import { acquireDirectoryLock, type DirectoryLock } from './directory-lock.js';
import { maskPasswords, passwordsOf } from './redact.js';

// Calendar dates stay strings (a JS Date would shift them by the local offset), and
// timestamps too: the job compares them in SQL and prints them as PostgreSQL does.
pg.types.setTypeParser(pg.types.builtins.DATE, (v) => v);
pg.types.setTypeParser(pg.types.builtins.TIMESTAMPTZ, (v) => v);
pg.types.setTypeParser(pg.types.builtins.TIMESTAMP, (v) => v);

/**
 * A single connection; a run does all its work on one, so its session lock covers it. It runs
 * only statements built by the `sql` tag: a string or a (text, values) pair does not compile,
 * so every value is bound and every name quoted on its way in.
 */
export interface Session {
  /** Runs `statement`; the rows are objects of type `R`. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(statement: Sql): Promise<pg.QueryResult<R>>;
  /**
   * Runs `statement` alone with the extended protocol, which refuses a second statement in
   * its text, and returns the rows as arrays of values in column order (the `sql` command:
   * two columns may share a name there).
   */
  queryArrays(statement: Sql): Promise<pg.QueryArrayResult<unknown[]>>;
  /** Gives the connection back; `err` (an error, or true) closes it instead. */
  release(err?: Error | boolean): void;
}

/**
 * The session of the driver's `client`, the same on the server and on PGlite: a client of a
 * pool, or a client of its own (released by ending it, which its owner does).
 */
export function sessionOf(client: pg.PoolClient | pg.Client): Session {
  return {
    query: (statement) => client.query({ text: statement.text, values: statement.values }),
    queryArrays(statement) {
      // queryMode is pg's (8.12+), not in its type definitions: it forces the extended protocol.
      const query: pg.QueryArrayConfig & { queryMode: 'extended' } = {
        text: statement.text,
        values: statement.values,
        rowMode: 'array',
        queryMode: 'extended',
      };
      return client.query<unknown[]>(query);
    },
    release(err) {
      if ('release' in client) client.release(err);
    },
  };
}

/** An open database. */
export interface Database {
  /** The message of a driver or connection error of this database, its password masked. */
  errorText(err: unknown): string;
  /** A dedicated connection, retried while the server is unreachable. */
  connect(): Promise<Session>;
  /**
   * Cancels the statements running on this database's sessions (on a signal). PGlite runs
   * them on this thread, so there the run stops at its next safe point instead.
   */
  interrupt(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenOptions {
  readonly connectAttempts?: number;
  readonly connectTimeoutMs?: number;
  /**
   * Create a `pglite:` directory that does not exist (migrate, import-attempts, demo). Other
   * commands refuse it (exit 2): a mistyped directory would otherwise be a new, empty database.
   */
  readonly createDirectory?: boolean;
}

/** Opens the database that DATABASE_URL names. */
export async function openDatabase(target: DatabaseTarget, options: OpenOptions = {}): Promise<Database> {
  return target.kind === 'pglite' ? openPglite(target.directory, options.createDirectory ?? false) : openServer(target, options);
}

function openServer(target: Extract<DatabaseTarget, { kind: 'postgres' }>, options: OpenOptions): Database {
  const attempts = options.connectAttempts ?? 5;
  const pool = new pg.Pool({
    connectionString: target.connectionString,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    application_name: 'aggregate-features-daily',
    max: 4,
  });
  // An idle client that loses its connection must not crash the process.
  pool.on('error', () => undefined);
  const active = new Set<pg.PoolClient>();
  const passwords = passwordsOf(target.connectionString);
  const errorText = (err: unknown) => maskPasswords(messageOf(err), passwords);
  pool.on('acquire', (client) => active.add(client));
  pool.on('release', (_err, client) => active.delete(client));
  pool.on('remove', (client) => active.delete(client));
  return {
    errorText,
    connect: () => connectWithRetries(pool, target.redacted, attempts, errorText),
    async interrupt() {
      const pids = [...active].map((c) => (c as unknown as { processID?: number }).processID).filter((p) => p !== undefined);
      if (pids.length === 0) return;
      const canceller = new pg.Client({ connectionString: target.connectionString, connectionTimeoutMillis: 5_000 });
      const cancel = cancelBackends(pids);
      try {
        await canceller.connect();
        await canceller.query(cancel.text, cancel.values);
      } catch {
        // The server is gone: nothing runs there any more.
      } finally {
        await canceller.end().catch(() => undefined);
      }
    },
    async close() {
      await pool.end();
    },
  };
}

/**
 * A client of `pool`, retried with backoff while the server is unreachable; a refused login
 * or a missing database is a configuration error (exit 2), unreachable after `attempts` exit 4.
 */
async function connectWithRetries(
  pool: pg.Pool,
  redacted: string,
  attempts: number,
  errorText: (err: unknown) => string,
): Promise<Session> {
  for (let attempt = 1; ; attempt++) {
    try {
      const client = await pool.connect();
      client.on('error', () => undefined);
      return sessionOf(client);
    } catch (err) {
      const state = sqlState(err);
      if (state === '28P01' || state === '28000') {
        throw new ConfigError(`database refused the login (${redacted}): ${errorText(err)}; check the user and password in DATABASE_URL`, {
          cause: err,
        });
      }
      if (state === '3D000') {
        throw new ConfigError(`${errorText(err)} (${redacted}): create it or fix DATABASE_URL`, { cause: err });
      }
      if (!isConnectionError(err)) throw err;
      if (attempt >= attempts) {
        throw new UnreachableError(
          `database unreachable after ${attempts} attempts (${redacted}): ${errorText(err) || sqlState(err) || 'connection failed'}; check DATABASE_URL and that the server is up`,
          { cause: err },
        );
      }
      await sleep(backoffMs(attempt));
    }
  }
}

/** Exponential backoff with full jitter: 200 ms, 400 ms, 800 ms … capped at 5 s. */
export function backoffMs(attempt: number): number {
  return Math.random() * Math.min(5_000, 200 * 2 ** (attempt - 1));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The one-line configuration error (exit 2) for an embedded database directory the job cannot
 * use, from the file-system error that says why; undefined for any other error.
 */
export function directoryError(err: unknown, directory: string): ConfigError | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const why: Record<string, string> = {
    EEXIST: 'is a file, not a directory',
    ENOTDIR: 'lies under a file, not a directory',
    EROFS: 'is on a read-only file system',
    EACCES: 'is not writable for this user',
    EPERM: 'is not writable for this user',
    ENOSPC: 'is on a full file system',
  };
  const reason = code === undefined ? undefined : why[code];
  if (reason === undefined) return undefined;
  return new ConfigError(
    `the embedded database directory ${directory} ${reason} (${code}): point pglite: (or demo --dir) at a writable directory; it is created if missing`,
    { cause: err },
  );
}

/**
 * PostgreSQL settings of the embedded database, given at its start (`-c`, after PGlite's own
 * start parameters), so they hold for every directory, new or old, and are written nowhere.
 * shared_buffers: PostgreSQL's 128MB default lives in PGlite's WebAssembly memory, which never
 * shrinks; 16MB took ~0.1 GB off the peak RSS of every command on PGlite (the demo 908 → 799 MB,
 * the job alone on its directory 416 → 309 MB) at the same time; the data files are read
 * through the OS page cache either way (BENCHMARKS.md, "The demo's memory on PGlite"). The
 * job's own settings (work_mem …) are set per session, as on a server (session-settings.ts).
 */
export const pgliteSettings: Readonly<Record<string, string>> = { shared_buffers: '16MB' };

/** PGlite's start parameters `defaults` followed by pgliteSettings. */
export function pgliteStartParams(defaults: readonly string[]): string[] {
  return [...defaults, ...Object.entries(pgliteSettings).flatMap(([name, value]) => ['-c', `${name}=${value}`])];
}

async function openPglite(directory: string, create: boolean): Promise<Database> {
  if (!create && !existsSync(directory)) {
    throw new ConfigError(
      `the embedded database directory ${directory} does not exist: check DATABASE_URL=pglite:${directory} (a typo?), or create the database there with \`aggregate-features-daily migrate\``,
    );
  }
  let lock: DirectoryLock;
  try {
    mkdirSync(directory, { recursive: true });
    // PGlite does not lock its data directory: two processes would corrupt it.
    lock = acquireDirectoryLock(directory);
  } catch (err) {
    throw directoryError(err, directory) ?? err;
  }
  try {
    const { PGlite } = await import('@electric-sql/pglite');
    const { createPgConfig } = await import('@electric-sql/pglite/node-postgres');
    const db = await PGlite.create({ dataDir: directory, startParams: pgliteStartParams(PGlite.defaultStartParams) });
    const pool = new pg.Pool(createPgConfig(db));
    let closed = false;
    return {
      errorText: messageOf,
      async connect() {
        return sessionOf(await pool.connect());
      },
      async interrupt() {
        // Nothing to do: a PGlite statement blocks this thread; the run checks its signal next.
      },
      async close() {
        if (closed) return;
        closed = true;
        try {
          await pool.end();
          await db.close();
        } finally {
          lock.release();
        }
      },
    };
  } catch (err) {
    lock.release();
    throw directoryError(err, directory) ?? err;
  }
}
