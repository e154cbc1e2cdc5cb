/**
 * `sql "select …"`: one reading statement (checked before it is sent: reading-statement.ts),
 * run in a read-only transaction that is rolled back, with a short timeout of its own
 * (AGG_SQL_TIMEOUT_MS), on the configured database (server or embedded), so every SQL check in
 * the README works on a `pglite:` directory too.
 *
 * On the server, a connection whose role could touch the server beyond the database (a
 * superuser, or a member of pg_read_server_files, pg_write_server_files,
 * pg_execute_server_program or pg_signal_backend) runs the statement as the reader role
 * AGG_SQL_ROLE instead (`set local role`, undone by the rollback), which must exist and hold none
 * of these; otherwise the command refuses (exit 2) and says how to create it. PGlite is left as
 * it is: its one user is the process's own, the files it reaches are its directory's inside
 * its virtual file system, it runs no programs and has no other sessions.
 *
 * The statement is sent alone with the extended protocol, which refuses a second statement;
 * the transaction is read-only before the statement starts (a first query takes its snapshot,
 * so `set transaction read write` can no longer undo it).
 */
import type { Config } from '../config/index.js';
import type { Session } from '../database/db.js';
import { ConfigError, sqlState } from '../errors.js';
import { checkReadingStatement } from './reading-statement.js';
import { readingStatement } from '../sql/reading.js';
import { ident, sql, type Sql } from '../sql/tag.js';
import { inTransaction } from '../database/transaction.js';

export interface QueryResult {
  readonly columns: string[];
  readonly rows: Record<string, unknown>[];
}

/** The predefined roles that reach beyond the database: files, programs, other sessions. */
const serverRoles = ['pg_read_server_files', 'pg_write_server_files', 'pg_execute_server_program', 'pg_signal_backend'];

/** Runs `statement` read-only; a statement that writes, or several statements, are refused (exit 2). */
export async function runReadOnly(session: Session, config: Config, statement: string): Promise<QueryResult> {
  checkReadingStatement(statement);
  try {
    return await inTransaction(
      session,
      async () => {
        await session.query(sql`select set_config('statement_timeout', ${String(config.sql.timeoutMs)}, true)`);
        const switched = config.database?.kind !== 'pglite' && (await dropServerPrivileges(session, config.sql.role));
        const result = await session.queryArrays(readingStatement(statement));
        if (switched) await stillReader(session, config.sql.role);
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
    if (state === '57014') {
      throw new ConfigError(
        `sql: the statement ran longer than AGG_SQL_TIMEOUT_MS=${config.sql.timeoutMs} and was cancelled; raise it for a longer query`,
        { cause: err },
      );
    }
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

/**
 * In the transaction: when the connection's role reaches beyond the database, switches to the
 * reader role `reader` for the rest of it, or refuses (exit 2) when there is no such role, the
 * connection's role may not become it, or it reaches beyond the database itself.
 */
async function dropServerPrivileges(session: Session, reader: string): Promise<boolean> {
  const found = await session.query<{
    role: string;
    privileged: boolean;
    exists: boolean;
    member: boolean;
    reader_privileged: boolean;
  }>(sql`
    select current_user as role, ${reachesBeyond(sql`current_user`)} as privileged,
           r.rolname is not null as exists,
           r.rolname is not null and pg_has_role(current_user, r.oid, 'member') as member,
           r.rolname is not null and ${reachesBeyond(sql`r.rolname`)} as reader_privileged
      from (select) as one left join pg_roles r on r.rolname = ${reader}`);
  const { role, privileged, exists, member, reader_privileged: readerPrivileged } = found.rows[0]!;
  if (!privileged) return false;
  const why = `the connection's role ${role} can read or write server files, run programs or signal other sessions (a superuser, or a member of ${serverRoles.join(', ')}), so sql runs the statement as the reader role AGG_SQL_ROLE=${reader}`;
  const see = '(docs/security.md, "The sql command"); nothing was run';
  if (!exists) {
    throw new ConfigError(
      `sql: ${why}, which does not exist: create it with sql/roles.sql (-v dryrun_role=${reader}), set AGG_SQL_ROLE to a role that may only read, or connect as such a role ${see}`,
    );
  }
  if (readerPrivileged) {
    throw new ConfigError(
      `sql: ${why}, which can do the same: set AGG_SQL_ROLE to a role that may only read (sql/roles.sql creates one) ${see}`,
    );
  }
  if (!member) {
    throw new ConfigError(`sql: ${why}, which ${role} may not become: grant ${reader} to ${role}, or connect as ${reader} ${see}`);
  }
  await session.query(sql`set local role ${ident(reader)}`);
  return true;
}

/** After the statement: it must not have left the reader role (nothing it returned is shown otherwise). */
async function stillReader(session: Session, reader: string): Promise<void> {
  const now = await session.query<{ role: string }>(sql`select current_user as role`);
  if (now.rows[0]?.role !== reader) {
    throw new ConfigError(
      `sql: the statement left the reader role ${reader} (it is ${now.rows[0]?.role ?? '?'} now): its result is not shown`,
    );
  }
}

/** Whether `role` is a superuser or a member of a role that reaches beyond the database (files, programs, signals). */
function reachesBeyond(role: Sql): Sql {
  return sql`(coalesce((select rolsuper from pg_roles where rolname = ${role}), false)
              or exists (select from unnest(${serverRoles}::text[]) as s(name) where pg_has_role(${role}, s.name, 'member')))`;
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
