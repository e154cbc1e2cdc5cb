/**
 * The two databases every test runs against: PGlite (always) and the PostgreSQL server (when
 * TEST_DATABASE_URL is set). Each test file gets its own database on each, named after the
 * file, created fresh at start and removed at the file's end (kept with AFD_KEEP_TEST_DATA=1,
 * to inspect a failure: test/support/resources.ts).
 */
import { cpSync } from 'node:fs';
import pg from 'pg';
import { parseDatabaseUrl } from '../../src/config/index.js';
import { afterAll, beforeAll } from 'vitest';
import { openDatabase, type Database, type Session } from '../../src/database/db.js';
import { databaseName, namedTempDir, pgliteTemplate, registerDatabase } from './resources.js';

export interface Backend {
  readonly name: 'pglite' | 'postgres';
  /** DATABASE_URL of this test file's database, for the CLI. */
  readonly url: string;
  /** Opens it (for PGlite this takes the directory lock: close before running the CLI on it). */
  open(): Promise<Database>;
}

/** A fresh server database for `key`, or undefined when no server is configured. */
export async function serverBackend(key: string): Promise<Backend | undefined> {
  const adminUrl = process.env.TEST_DATABASE_URL;
  if (!adminUrl) return undefined;
  const name = databaseName(key);
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`drop database if exists "${name}" with (force)`);
    await admin.query(`create database "${name}"`);
    registerDatabase(name);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    name: 'postgres',
    url: url.toString(),
    open: () => openDatabase(parseDatabaseUrl(url.toString()), { connectAttempts: 1 }),
  };
}

/**
 * A fresh PGlite database for `key`: a copy of the run's initialised empty directory (as if
 * PGlite had just created it, without paying for its initdb again), or with `empty`, an empty
 * directory (for what happens when PGlite creates the database itself).
 */
export function pgliteBackend(key: string, options: { empty?: boolean } = {}): Backend {
  const directory = namedTempDir(`${databaseName(key)}_${process.pid}`);
  if (!options.empty) cpSync(pgliteTemplate, directory, { recursive: true });
  return { name: 'pglite', url: `pglite:${directory}`, open: () => openDatabase(parseDatabaseUrl(`pglite:${directory}`)) };
}

/** PGlite, plus the server when configured: what `describe.each` iterates over. */
export async function allBackends(key: string): Promise<Backend[]> {
  const server = await serverBackend(key);
  return server ? [pgliteBackend(key), server] : [pgliteBackend(key)];
}

/** The open database and session of a test file, filled in by `useSession` before its tests. */
export interface TestSession {
  readonly db: Database;
  readonly session: Session;
}

/**
 * Opens `backend` before the enclosing describe's tests (then runs `prepare`, e.g. migrate)
 * and closes it after them. The library works on one session, as a run does.
 */
export function useSession(backend: Backend, prepare?: (session: Session) => Promise<void>): TestSession {
  const handle = {} as { db: Database; session: Session };
  beforeAll(async () => {
    handle.db = await backend.open();
    handle.session = await handle.db.connect();
    await prepare?.(handle.session);
  });
  afterAll(async () => {
    handle.session?.release();
    await handle.db?.close();
  });
  return handle;
}

/**
 * Opens `backend`, runs `work` on one session, and closes it again (for a single step of a
 * test; on PGlite this releases the directory, so the CLI can run on it next). The one helper
 * for this: the hardening tests know it as `withDb`.
 */
export async function withSession<T>(backend: Backend, work: (session: Session) => Promise<T>): Promise<T> {
  const db = await backend.open();
  const session = await db.connect();
  try {
    return await work(session);
  } finally {
    session.release();
    await db.close();
  }
}
