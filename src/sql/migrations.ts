/**
 * The statements of the migrator. The table that records the applied migrations is created by
 * the migrator itself, before any migration, so that the first one is recorded like the rest.
 * A migration file is a script of several statements, shipped with the job: it is sent as it
 * is, with no values, which `pg` sends with the simple protocol, the one that allows several
 * statements in one text.
 */
import { raw, sql, type Sql } from './tag.js';

/** The table of applied migrations: version, file name and the checksum of the file's text. */
export const createMigrationsTable = sql`
  create table if not exists aggregate_features_migrations (
    version    int primary key,
    name       text not null,
    checksum   text not null,
    applied_at timestamptz not null default now()
  )`;

/** Holds the migration lock `(namespace, key)` until the transaction ends, so two migrators take turns. */
export function lockMigrations(namespace: number, key: number): Sql {
  return sql`select pg_advisory_xact_lock(${namespace}, ${key})`;
}

/** The script of a migration file (text chosen by the job: its own files). */
export function migrationScript(text: string): Sql {
  return raw(text);
}

/** Records the migration as applied. */
export function recordMigration(migration: { version: number; name: string; checksum: string }): Sql {
  return sql`insert into aggregate_features_migrations (version, name, checksum) values (${migration.version}, ${migration.name}, ${migration.checksum})`;
}

/** Whether the table of applied migrations exists: a database never migrated has none. */
export const migrationsTableExists = sql`select to_regclass('aggregate_features_migrations') is not null as present`;

/** The applied migrations, in order. */
export const appliedMigrations = sql`select version, name, checksum from aggregate_features_migrations order by version`;
