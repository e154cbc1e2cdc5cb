/**
 * Checks on the attempts source before a run, so a missing table or column is a one-line
 * configuration error (exit 2) instead of a failed statement halfway through.
 */
import type { Session } from './db.js';
import { ConfigError, sqlState } from './errors.js';
import type { QualifiedName } from './identifiers.js';
import { withIdentifiers } from './identifiers.js';

export const requiredSourceColumns = ['student_id', 'topic_id', 'completed_at', 'correct', 'response_time_ms', 'hint_used'] as const;

/** Throws ConfigError unless the source exists, is readable and has the columns of SPEC §2. */
export async function checkSource(session: Session, source: QualifiedName, variable = 'AGG_SOURCE'): Promise<void> {
  const found = await session.query<{ present: boolean }>('select to_regclass($1) is not null as present', [source.sql]);
  if (!found.rows[0]?.present) {
    // Names follow SQL's rule (plain names fold to lower case): point at a differently cased one.
    const similar = await session.query<{ name: string }>(
      `select format('%I.%I', n.nspname, c.relname) as name
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where lower(c.relname) = lower($1) and c.relkind in ('r', 'v', 'm', 'f', 'p')
          and ($2::text is null or lower(n.nspname) = lower($2))
        order by 1 limit 3`,
      [source.name, source.schema ?? null],
    );
    const hint =
      similar.rows.length === 0
        ? ''
        : ` (there is ${similar.rows.map((r) => r.name).join(', ')}: a name with capitals must be double-quoted, e.g. ${variable}='"Attempts"')`;
    throw new ConfigError(
      `the attempts source ${source.sql} does not exist${hint}: create it, load data with \`aggregate-features-daily import-attempts FILE.csv\`, or set ${variable} to the table or view that holds the attempts`,
    );
  }
  try {
    await session.query(withIdentifiers(`select ${requiredSourceColumns.join(', ')} from {{source}} where false`, { source }));
  } catch (err) {
    const state = sqlState(err);
    if (state === '42703') {
      throw new ConfigError(
        `the attempts source ${source.sql} lacks a column (${(err as Error).message}): it needs ${requiredSourceColumns.join(', ')}`,
        { cause: err },
      );
    }
    if (state === '42501') {
      throw new ConfigError(`${(err as Error).message}: grant SELECT on ${source.sql} to the job's role`, { cause: err });
    }
    throw err;
  }
}
