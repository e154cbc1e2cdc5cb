/**
 * The `attempt` table of SPEC §2, for databases where the job owns it: the demo's embedded
 * database and `import-attempts`. A production source is the platform's own table or view.
 */
import type { Session } from './db.js';
import { quoteIdent, withIdentifiers, type QualifiedName } from './identifiers.js';

const createAttemptTable = `
create table if not exists {{table}} (
  student_id       text,
  topic_id         text,
  completed_at     timestamptz not null,
  correct          boolean,
  response_time_ms integer,
  hint_used        boolean
)`;

/** Creates the table (if missing) and the index on completed_at that the job's range scan uses. */
export async function ensureAttemptTable(session: Session, table: QualifiedName): Promise<void> {
  await session.query(withIdentifiers(createAttemptTable, { table }));
  const index: QualifiedName = {
    schema: undefined,
    name: `${table.name}_completed_at_idx`,
    sql: quoteIdent(`${table.name}_completed_at_idx`),
  };
  await session.query(withIdentifiers('create index if not exists {{index}} on {{table}} (completed_at)', { table, index }));
}
