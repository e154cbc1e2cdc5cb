/**
 * Migrations: a fresh schema, adoption of the table the original Python stack created
 * (missing columns, no primary key) without losing a row, and refusal of edited or unknown
 * applied migrations. On PGlite and the server.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { checkSchema, loadMigrations, migrate } from '../src/database/migrate.js';
import { allBackends, useSession } from './support/backends.js';
import { testTempDir } from './support/resources.js';
import { sql } from '../src/sql/tag.js';

const backends = await allBackends('migrate');

describe.each(backends)('migrations ($name)', (backend) => {
  const t = useSession(backend);

  test('checkSchema asks for migrate on an empty database', async () => {
    await expect(checkSchema(t.session)).rejects.toThrow(/run `aggregate-features-daily migrate` first/);
  });

  test('adopts a Python-era features_topic_daily without losing rows', async () => {
    await t.session.query(sql`
      create table features_topic_daily (
        user_id text, topic_id text, date date, attempts int, correct int, avg_time_ms int,
        theta_estimate numeric(6,3), last_seen_at timestamptz, computed_at timestamptz default now())`);
    await t.session.query(sql`
      insert into features_topic_daily (user_id, topic_id, date, attempts, correct, avg_time_ms, theta_estimate, last_seen_at)
      select 'u' || i, 'algebra', date '2025-10-01' + i % 30, i, i / 2, 1000 + i, 0.5, now()
      from generate_series(1, 500) i`);
    expect(await migrate(t.session)).toEqual(['001_features_topic_daily', '002_run_log', '003_source_memory']);
    await checkSchema(t.session);
    const rows = await t.session.query<{ n: number; attempts: number; hints: number; theta: string }>(
      sql`select count(*)::int as n, sum(attempts)::int as attempts, sum(hints)::int as hints, min(theta_estimate)::text as theta
       from features_topic_daily`,
    );
    expect(rows.rows[0]).toEqual({ n: 500, attempts: 125250, hints: 0, theta: '0.500' });
    const columns = await t.session.query<{ column_name: string }>(
      sql`select column_name from information_schema.columns where table_name = 'features_topic_daily' order by ordinal_position`,
    );
    expect(columns.rows.map((r) => r.column_name).sort()).toEqual(
      [
        'attempts',
        'avg_time_ms',
        'computed_at',
        'correct',
        'date',
        'hints',
        'improvement',
        'last_seen_at',
        'rt_median',
        'theta_estimate',
        'theta_sd',
        'topic_id',
        'user_id',
      ].sort(),
    );
    const pk = await t.session.query<{ def: string }>(
      sql`select pg_get_constraintdef(oid) as def from pg_constraint where conrelid = 'features_topic_daily'::regclass and contype = 'p'`,
    );
    expect(pk.rows[0]?.def).toBe('PRIMARY KEY (user_id, topic_id, date)');
    expect(await migrate(t.session)).toEqual([]);
  });

  test('an edited or unknown applied migration stops with a clear error', async () => {
    const edited = loadMigrations().map((m, i) => (i === 0 ? { ...m, checksum: 'x'.repeat(64) } : m));
    await expect(checkSchema(t.session, edited)).rejects.toThrow(/migration 001_features_topic_daily was changed after it was applied/);
    await expect(migrate(t.session, edited)).rejects.toThrow(/was changed after it was applied/);
    await expect(checkSchema(t.session, loadMigrations().slice(0, 1))).rejects.toThrow(/does not know: it was migrated by a newer version/);
  });

  test('a pending migration makes the daily run stop (schema behind)', async () => {
    const directory = testTempDir('migrations');
    for (const m of loadMigrations()) writeFileSync(join(directory, `${m.name}.sql`), m.sql);
    writeFileSync(join(directory, '999_future.sql'), 'select 1;');
    await expect(checkSchema(t.session, loadMigrations(directory))).rejects.toThrow(
      /schema is behind this version of the job \(pending: 999_future\)/,
    );
  });
});
