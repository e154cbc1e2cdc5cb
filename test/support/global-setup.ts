/**
 * Runs once before the suite: builds dist/ (the CLI tests run it as a user does) and, when
 * TEST_DATABASE_URL is set, proves the server is reachable, so a misconfigured CI fails
 * instead of silently testing PGlite only.
 */
import { execFileSync } from 'node:child_process';
import pg from 'pg';

export default async function setup(): Promise<void> {
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
}
