/**
 * The committed schema.sql is what a fresh `migrate` creates (pg_dump --schema-only of the
 * job's tables), so a migration that changes the schema without updating schema.sql, or an
 * edit to schema.sql that no migration makes, fails here. Regenerate with
 * `UPDATE_SCHEMA=1 npx vitest run test/schema.test.ts` and review the diff.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { serverBackend } from './support/backends.js';
import { runMain } from './support/cli.js';

const server = await serverBackend('schema');
const schemaFile = fileURLToPath(new URL('../schema.sql', import.meta.url));

/** pg_dump's output without its version banner and settings noise, stable across runs. */
function normalise(dump: string): string {
  return (
    dump
      .split('\n')
      .filter((line) => !line.startsWith('--') && !/^SET |^SELECT pg_catalog.set_config|^\\(un)?restrict /.test(line))
      .join('\n')
      .replace(/\n{3,}/g, '\n\n')
      .trim() + '\n'
  );
}

describe.runIf(server)('schema.sql', () => {
  test('equals a fresh migration', async () => {
    expect((await runMain(['migrate'], { DATABASE_URL: server!.url })).code).toBe(0);
    const dump = normalise(execFileSync('pg_dump', ['--schema-only', '--no-owner', '--no-privileges', server!.url], { encoding: 'utf8' }));
    if (process.env.UPDATE_SCHEMA) writeFileSync(schemaFile, dump);
    expect(dump).toBe(readFileSync(schemaFile, 'utf8'));
  });
});
