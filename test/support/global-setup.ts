/**
 * Runs once before the suite: builds dist/ (the CLI tests run it as a user does), initialises
 * the PGlite directory every test's embedded database is copied from (test/support/resources.ts),
 * and, when
 * TEST_DATABASE_URL is set, proves the server is reachable, so a misconfigured CI fails
 * instead of silently testing PGlite only. Its teardown, after the last file, removes any
 * test database or temporary directory of this checkout still there (each file removes its
 * own at its end; this catches a worker that crashed), unless AFD_KEEP_TEST_DATA=1.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import pg from 'pg';
import { keepTestData, pgliteTemplate, removeLeftovers, tempRoot } from './resources.js';

/** `npm run build`, its output passed through. */
function build(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', 'build'], { stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`npm run build exited with ${code}`))));
  });
}

/** An empty, initialised PGlite directory (what PGlite's initdb makes), closed cleanly so it can be copied. */
async function createPgliteTemplate(): Promise<void> {
  rmSync(pgliteTemplate, { recursive: true, force: true });
  mkdirSync(pgliteTemplate, { recursive: true });
  const { PGlite } = await import('@electric-sql/pglite');
  const db = await PGlite.create({ dataDir: pgliteTemplate });
  await db.close();
}

export default async function setup(): Promise<() => Promise<void>> {
  await Promise.all([build(), createPgliteTemplate()]);
  const url = process.env.TEST_DATABASE_URL;
  if (url) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
    try {
      await client.connect();
      await client.query('select 1');
    } catch (err) {
      throw new Error(`TEST_DATABASE_URL is set but the server is unreachable: ${(err as Error).message}`, { cause: err });
    } finally {
      await client.end().catch(() => undefined);
    }
  } else {
    console.warn('TEST_DATABASE_URL is not set: testing on PGlite only (CI sets it to test the PostgreSQL server too).');
  }
  return teardown;
}

async function teardown(): Promise<void> {
  rmSync(pgliteTemplate, { recursive: true, force: true });
  const left = await removeLeftovers();
  const what = [...left.databases, ...left.roles.map((r) => `role ${r}`), ...left.entries.map((e) => `${tempRoot}/${e}`)];
  if (keepTestData) {
    if (what.length > 0) console.log(`AFD_KEEP_TEST_DATA=1: the test data is kept: ${what.join(', ')}`);
  } else if (what.length > 0) {
    console.warn(`removed what test files left behind: ${what.join(', ')}`);
  }
}
