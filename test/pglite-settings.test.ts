/**
 * The embedded database's own PostgreSQL settings (pgliteSettings in src/database/db.ts): given
 * at its start, so they hold on a directory PGlite creates and on one that exists, and are
 * written nowhere (the directory's postgresql.conf keeps PostgreSQL's default). The job's
 * session settings still apply on top, as on a server.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { pgliteSettings, pgliteStartParams, type Session } from '../src/database/db.js';
import { applySessionSettings } from '../src/database/session-settings.js';
import { sql } from '../src/sql/tag.js';
import { pgliteBackend, useSession } from './support/backends.js';

async function setting(session: Session, name: string): Promise<string> {
  return (await session.query<{ value: string }>(sql`select current_setting(${name}) as value`)).rows[0]!.value;
}

test("the start parameters are PGlite's own followed by the settings", () => {
  expect(pgliteSettings).toEqual({ shared_buffers: '16MB' });
  expect(pgliteStartParams(['--single', '-c', 'search_path=public'])).toEqual([
    '--single',
    '-c',
    'search_path=public',
    '-c',
    'shared_buffers=16MB',
  ]);
});

describe('a directory that exists (a copy of an initialised one)', () => {
  const t = useSession(pgliteBackend('pglite_settings_existing'));

  test('has the settings', async () => {
    for (const [name, value] of Object.entries(pgliteSettings)) expect(await setting(t.session, name)).toBe(value);
  });

  test("the job's session settings apply on top (work_mem 256MB by default, PGlite's is 4MB)", async () => {
    expect(await setting(t.session, 'work_mem')).toBe('4MB');
    await applySessionSettings(t.session, loadConfig({ DATABASE_URL: 'pglite:/unused' }));
    expect(await setting(t.session, 'work_mem')).toBe('256MB');
  });
});

describe('a directory PGlite creates', () => {
  const backend = pgliteBackend('pglite_settings_created', { empty: true });
  const t = useSession(backend);

  test('has the settings, and its postgresql.conf is not changed', async () => {
    expect(await setting(t.session, 'shared_buffers')).toBe('16MB');
    const conf = readFileSync(join(backend.url.slice('pglite:'.length), 'postgresql.conf'), 'utf8');
    expect(conf).toMatch(/^shared_buffers = 128MB/m);
  });
});
