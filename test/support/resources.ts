/**
 * What a test run leaves on the machine, and how it is removed: server databases named
 * `afd_t_<checkout>_<key>`, roles named after them, and temporary directories under `<tmpdir>/afd-tests/<checkout>/`
 * (PGlite directories, CSV files, migration and metrics directories, the package build).
 *
 * Each test file removes what it created at its end (test/support/cleanup.ts, a setup file);
 * the global teardown (test/support/global-setup.ts) removes whatever a crashed worker left.
 * AFD_KEEP_TEST_DATA=1 keeps everything, for debugging a failure, and prints where it is.
 *
 * `<checkout>` is a hash of the working directory: checkouts testing side by side on one
 * server or machine (a CI clone, worktrees) never touch each other's data.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import pg from 'pg';

export const checkout = createHash('sha256').update(process.cwd()).digest('hex').slice(0, 6);

/** The prefix of every server database this checkout's tests create. */
export const databasePrefix = `afd_t_${checkout}_`;

/** The directory under which this checkout's tests create every temporary file. */
export const tempRoot = join(tmpdir(), 'afd-tests', checkout);

/**
 * An initialised, empty PGlite directory made once per test run (test/support/global-setup.ts):
 * each test's PGlite database starts as a copy of it instead of running PGlite's initdb again
 * (several seconds of CPU each time). Not test data: the global teardown removes it.
 */
export const pgliteTemplate = join(tempRoot, 'pglite-template');

/** AFD_KEEP_TEST_DATA=1: keep the test databases and temporary directories after the run. */
export const keepTestData = process.env.AFD_KEEP_TEST_DATA === '1';

export function databaseName(key: string): string {
  return `${databasePrefix}${key.toLowerCase().replace(/[^a-z0-9]+/g, '_')}`.slice(0, 63);
}

const databases = new Set<string>();
const roles = new Set<string>();
const directories = new Set<string>();

/** Records a server database created by this test file, dropped at the file's end. */
export function registerDatabase(name: string): void {
  databases.add(name);
}

/** Records a server role created by this test file (named `afd_t_<checkout>_…`), dropped at the file's end after its databases. */
export function registerRole(name: string): void {
  if (!name.startsWith(databasePrefix)) throw new Error(`a test role must be named ${databasePrefix}…: ${name}`);
  roles.add(name);
}

/** A fresh, empty temporary directory, removed at the end of the test file. */
export function testTempDir(label: string): string {
  mkdirSync(tempRoot, { recursive: true });
  const directory = mkdtempSync(join(tempRoot, `${label}-`));
  directories.add(directory);
  return directory;
}

/** A fresh, empty directory of this exact name under the temporary root (a PGlite directory), removed at the file's end. */
export function namedTempDir(name: string): string {
  const directory = join(tempRoot, name);
  rmSync(directory, { recursive: true, force: true });
  mkdirSync(directory, { recursive: true });
  directories.add(directory);
  return directory;
}

/** Drops the server databases and removes the directories this test file created (unless kept). */
export async function removeRegistered(): Promise<void> {
  const names = [...databases];
  const roleNames = [...roles];
  const paths = [...directories];
  databases.clear();
  roles.clear();
  directories.clear();
  if (keepTestData) {
    const kept = [...names, ...roleNames, ...paths];
    if (kept.length > 0) console.log(`AFD_KEEP_TEST_DATA=1: kept ${kept.join(', ')}`);
    return;
  }
  for (const path of paths) rmSync(path, { recursive: true, force: true });
  await dropFromServer(names, roleNames);
}

/**
 * Drops `names` (`with (force)`: a leftover connection does not keep one), then the roles
 * (their privileges went with the databases), on the server of TEST_DATABASE_URL.
 */
async function dropFromServer(names: readonly string[], roleNames: readonly string[]): Promise<void> {
  const adminUrl = process.env.TEST_DATABASE_URL;
  if (!adminUrl || names.length + roleNames.length === 0) return;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    for (const name of names) await admin.query(`drop database if exists "${name}" with (force)`);
    for (const role of roleNames) await admin.query(`drop role if exists "${role}"`);
  } finally {
    await admin.end();
  }
}

/**
 * Everything of this checkout's tests still on the machine: for the global teardown, after
 * every file has run (a worker that crashed or timed out could not clean up after itself).
 */
export async function removeLeftovers(): Promise<{ databases: string[]; roles: string[]; entries: string[] }> {
  let names: string[] = [];
  let roleNames: string[] = [];
  const adminUrl = process.env.TEST_DATABASE_URL;
  if (adminUrl) {
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    try {
      const result = await admin.query<{ datname: string }>(
        'select datname from pg_database where starts_with(datname, $1) order by datname',
        [databasePrefix],
      );
      names = result.rows.map((r) => r.datname);
      const roleRows = await admin.query<{ rolname: string }>(
        'select rolname from pg_roles where starts_with(rolname, $1) order by rolname',
        [databasePrefix],
      );
      roleNames = roleRows.rows.map((r) => r.rolname);
    } finally {
      await admin.end();
    }
  }
  const entries = existsSync(tempRoot) ? readdirSync(tempRoot).filter((e) => e !== basename(pgliteTemplate)) : [];
  if (keepTestData) return { databases: names, roles: roleNames, entries };
  rmSync(tempRoot, { recursive: true, force: true });
  // The parent is shared with other checkouts: removed only once it is empty.
  if (existsSync(dirname(tempRoot)) && readdirSync(dirname(tempRoot)).length === 0) rmSync(dirname(tempRoot), { recursive: true });
  await dropFromServer(names, roleNames);
  return { databases: names, roles: roleNames, entries };
}
