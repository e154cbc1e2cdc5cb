/**
 * Numbered, forward-only SQL migrations (`migrations/NNN_name.sql`), applied in one
 * transaction under an advisory lock and recorded with a checksum. An applied migration that
 * was edited, or that this version of the job does not know, stops everything with a clear
 * error rather than guessing.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Session } from './db.js';
import { ConfigError } from '../errors.js';
import {
  appliedMigrations,
  createMigrationsTable,
  lockMigrations,
  migrationScript,
  migrationsTableExists,
  recordMigration,
} from '../sql/migrations.js';
import { inTransaction } from './transaction.js';
import { lockKeys } from './lock.js';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
  readonly checksum: string;
}

const migrationsDirectory = fileURLToPath(new URL('../../migrations/', import.meta.url));

/** The migrations shipped with this version of the job, in order. */
export function loadMigrations(directory = migrationsDirectory): Migration[] {
  return readdirSync(directory)
    .filter((file) => /^\d{3}_[a-z0-9_]+\.sql$/.test(file))
    .sort()
    .map((file) => {
      const sql = readFileSync(`${directory}/${file}`, 'utf8');
      return {
        version: Number(file.slice(0, 3)),
        name: file.replace(/\.sql$/, ''),
        sql,
        checksum: createHash('sha256').update(sql).digest('hex'),
      };
    });
}

interface AppliedRow {
  version: number;
  name: string;
  checksum: string;
}

/** Applies the pending migrations; returns the names of those it applied. */
export async function migrate(session: Session, migrations = loadMigrations()): Promise<string[]> {
  return inTransaction(session, async () => {
    await session.query(lockMigrations(lockKeys.namespace, lockKeys.migrations));
    await session.query(createMigrationsTable);
    const applied = await readApplied(session);
    verifyApplied(applied, migrations);
    const done = new Set(applied.map((row) => row.version));
    const names: string[] = [];
    for (const migration of migrations) {
      if (done.has(migration.version)) continue;
      await session.query(migrationScript(migration.sql));
      await session.query(recordMigration(migration));
      names.push(migration.name);
    }
    return names;
  });
}

/**
 * Checks that every migration of this version is applied, unchanged. The daily run calls it
 * first and never creates tables itself.
 */
export async function checkSchema(session: Session, migrations = loadMigrations()): Promise<void> {
  const exists = await session.query<{ present: boolean }>(migrationsTableExists);
  if (!exists.rows[0]?.present) {
    throw new ConfigError('the database has no features_topic_daily schema yet: run `aggregate-features-daily migrate` first');
  }
  const applied = await readApplied(session);
  verifyApplied(applied, migrations);
  const pending = migrations.filter((m) => !applied.some((row) => row.version === m.version));
  if (pending.length > 0) {
    throw new ConfigError(
      `the database schema is behind this version of the job (pending: ${pending.map((m) => m.name).join(', ')}): run \`aggregate-features-daily migrate\` first`,
    );
  }
}

async function readApplied(session: Session): Promise<AppliedRow[]> {
  const result = await session.query<AppliedRow>(appliedMigrations);
  return result.rows;
}

function verifyApplied(applied: AppliedRow[], migrations: Migration[]): void {
  for (const row of applied) {
    const known = migrations.find((m) => m.version === row.version);
    if (known === undefined) {
      throw new ConfigError(
        `the database has migration ${row.name}, which this version of the job does not know: it was migrated by a newer version; upgrade the job`,
      );
    }
    if (known.checksum !== row.checksum) {
      throw new ConfigError(
        `migration ${row.name} was changed after it was applied (checksum differs): restore the original file; applied migrations are never edited`,
      );
    }
  }
}
