/**
 * Runs once before the suite: builds dist/ (the CLI tests run it as a user does) and, when
 * TEST_DATABASE_URL is set, proves the server is reachable, so a misconfigured CI fails
 * instead of silently testing PGlite only. Its teardown, after the last file, removes any
 * test database or temporary directory of this checkout still there (each file removes its
 * own at its end; this catches a worker that crashed), unless AFD_KEEP_TEST_DATA=1.
 */
import { execFileSync } from 'node:child_process';
import pg from 'pg';
import { keepTestData, removeLeftovers, tempRoot } from './resources.js';

export default async function setup(): Promise<() => Promise<void>> {
  execFileSync('npm', ['run', '--silent', 'build'], { stdio: 'inherit' });
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
  const left = await removeLeftovers();
  const what = [...left.databases, ...left.roles.map((r) => `role ${r}`), ...left.entries.map((e) => `${tempRoot}/${e}`)];
  if (keepTestData) {
    if (what.length > 0) console.log(`AFD_KEEP_TEST_DATA=1: the test data is kept: ${what.join(', ')}`);
  } else if (what.length > 0) {
    console.warn(`removed what test files left behind: ${what.join(', ')}`);
  }
}
