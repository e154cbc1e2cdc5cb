/**
 * `sql "select …"`: one statement, run in a read-only transaction that is rolled back, on the
 * configured database (server or embedded), so every SQL check in the README works on a
 * `pglite:` directory too. The statement is sent alone with the extended protocol, which
 * refuses a second statement; the transaction is read-only before the statement starts (a
 * first query takes its snapshot, so `set transaction read write` can no longer undo it).
 */
import type pg from 'pg';
import type { Config } from './config.js';
import type { Session } from './db.js';
import { ConfigError, sqlState } from './errors.js';
import { inTransaction } from './transaction.js';

export interface QueryResult {
  readonly columns: string[];
  readonly rows: Record<string, unknown>[];
}

/** Runs `statement` read-only; a statement that writes, or several statements, are refused (exit 2). */
export async function runReadOnly(session: Session, config: Config, statement: string): Promise<QueryResult> {
  if (statement.trim() === '') throw new ConfigError('sql needs a statement, e.g. sql "select count(*) from features_topic_daily"');
  try {
    return await inTransaction(
      session,
      async () => {
        await session.query("select set_config('statement_timeout', $1, true)", [String(config.statementTimeoutMs)]);
        // queryMode is pg's (8.12+), not in its type definitions: it forces the extended protocol.
        const query: pg.QueryArrayConfig & { queryMode: 'extended' } = { text: statement, rowMode: 'array', queryMode: 'extended' };
        const result = await session.query<unknown[]>(query);
        const columns = uniqueNames((result.fields ?? []).map((f) => f.name));
        const rows = (result.rows ?? []).map((values) => Object.fromEntries(columns.map((c, i) => [c, values[i]])));
        return { columns, rows };
      },
      { begin: 'begin transaction isolation level repeatable read read only', end: 'rollback' },
    );
  } catch (err) {
    const state = sqlState(err);
    const message = err instanceof Error ? err.message : String(err);
    if (state === '25006' || state === '25001') throw new ConfigError(`sql runs read-only statements only: ${message}`, { cause: err });
    if (state === '42601' && /multiple commands/.test(message)) {
      throw new ConfigError('sql runs one statement at a time: remove the extra statements', { cause: err });
    }
    if (/bind message supplies 0 parameters/.test(message)) {
      throw new ConfigError('sql takes no parameters ($1, $2 …): write the values into the statement', { cause: err });
    }
    if (state !== undefined && /^(42|22)/.test(state)) throw new ConfigError(`sql: ${message} (SQLSTATE ${state})`, { cause: err });
    throw err;
  }
}

/** Column names made unique (select a.id, b.id): the second becomes id_2. */
function uniqueNames(names: string[]): string[] {
  const seen = new Map<string, number>();
  return names.map((name) => {
    const count = (seen.get(name) ?? 0) + 1;
    seen.set(name, count);
    return count === 1 ? name : `${name}_${count}`;
  });
}
