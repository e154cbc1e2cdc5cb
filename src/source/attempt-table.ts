/**
 * The `attempt` table (the default attempts source), for databases where the job owns it: the
 * demo's embedded database and `import-attempts`. A production source is the platform's own
 * table or view.
 */
import type { Session } from '../database/db.js';
import type { QualifiedName } from '../sql/identifiers.js';
import { ident, sql, type Sql } from '../sql/tag.js';

const createAttemptTable = (table: QualifiedName): Sql => sql`
create table if not exists ${ident(table)} (
  student_id       text,
  topic_id         text,
  completed_at     timestamptz not null,
  correct          boolean,
  response_time_ms integer,
  hint_used        boolean
)`;

/** Creates the table (if missing) and the index on completed_at that the job's range scan uses. */
export async function ensureAttemptTable(session: Session, table: QualifiedName): Promise<void> {
  await session.query(createAttemptTable(table));
  await session.query(sql`create index if not exists ${ident(`${table.name}_completed_at_idx`)} on ${ident(table)} (completed_at)`);
}
