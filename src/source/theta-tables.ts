/**
 * Checks on the ability-estimate tables before a run with AGG_INCLUDE_THETA=true, so a missing
 * table or column is a one-line configuration error (exit 2) instead of a failed statement
 * halfway through. `student_topic_theta` is required; `mirt_ability` is the
 * optional user-level fallback, used when it exists. Both belong to another job: the job
 * only reads them (docs/theta.md recommends their indexes).
 */
import type { Session } from '../database/db.js';
import { ConfigError, sqlState } from '../errors.js';
import { parseQualifiedName, type QualifiedName } from '../sql/identifiers.js';
import { ident, join, raw, sql } from '../sql/tag.js';

/** The topic-level estimates: one row per re-estimation of (user, topic). */
export const estimatesTable = parseQualifiedName('student_topic_theta', 'table');
/** The user-level fallback. */
export const mirtTable = parseQualifiedName('mirt_ability', 'table');

/** The tables a theta run reads. */
export interface ThetaTables {
  readonly estimates: QualifiedName;
  /** undefined when mirt_ability does not exist: no fallback. */
  readonly mirt: QualifiedName | undefined;
  /** Missing recommended indexes, as messages for a [WARN] line each. */
  readonly warnings: readonly string[];
}

interface TableShape {
  readonly table: QualifiedName;
  /** Columns compared as text. */
  readonly keys: readonly string[];
  /** The time column; must be timestamptz. */
  readonly at: string;
}

const estimatesShape: TableShape = { table: estimatesTable, keys: ['user_id', 'topic_id'], at: 'updated_at' };
const mirtShape: TableShape = { table: mirtTable, keys: ['user_id'], at: 'fitted_at' };

/** The index a lookup needs: the keys (in any order), then the time column. */
function recommendedIndex(shape: TableShape): string {
  return `create index on ${shape.table.name} (${[...shape.keys, shape.at].join(', ')})`;
}

/**
 * Throws ConfigError unless student_topic_theta exists with its columns (user_id, topic_id,
 * theta, se, updated_at) and is readable; does the same for mirt_ability if it exists. Returns
 * what a run reads.
 */
export async function checkThetaTables(session: Session): Promise<ThetaTables> {
  if (!(await exists(session, estimatesTable))) {
    throw new ConfigError(
      `AGG_INCLUDE_THETA=true, but the table ${estimatesTable.name} does not exist (looked up through the search_path): ` +
        'create it (user_id, topic_id, theta, se, updated_at timestamptz; docs/theta.md), or set AGG_INCLUDE_THETA=false',
    );
  }
  await checkShape(session, estimatesShape);
  const mirt = (await exists(session, mirtTable)) ? mirtTable : undefined;
  if (mirt) await checkShape(session, mirtShape);
  const warnings: string[] = [];
  for (const shape of mirt ? [estimatesShape, mirtShape] : [estimatesShape]) {
    if (!(await hasLookupIndex(session, shape))) {
      warnings.push(
        `${shape.table.name} has no index on (${[...shape.keys, shape.at].join(', ')}): every combination's theta lookup scans the table, ` +
          `which takes hours on a large one; ask its owner to run \`${recommendedIndex(shape)}\` (docs/theta.md)`,
      );
    }
  }
  return { estimates: estimatesTable, mirt, warnings };
}

/**
 * True when the table has an index that serves the as-of lookup (its leading columns are the
 * keys in any order, then the time column), or is not a table (a view: its base tables'
 * indexes are what count, and they are not ours to inspect).
 */
async function hasLookupIndex(session: Session, shape: TableShape): Promise<boolean> {
  const { rows } = await session.query<{ kind: string; indexes: string[] | null }>(
    sql`select c.relkind::text as kind,
            (select array_agg(array_to_string(array(
                      select a.attname::text
                      from unnest(i.indkey::int2[]) with ordinality k(attnum, ord)
                      join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
                      order by k.ord), ','))
             from pg_index i where i.indrelid = c.oid) as indexes
     from pg_class c where c.oid = to_regclass(${shape.table.sql})`,
  );
  const row = rows[0];
  if (row === undefined || !['r', 'p', 'm'].includes(row.kind)) return true;
  const keys = [...shape.keys].sort().join(',');
  return (row.indexes ?? []).some((index) => {
    const columns = index.split(',');
    const leading = columns.slice(0, shape.keys.length).sort().join(',');
    return leading === keys && columns[shape.keys.length] === shape.at;
  });
}

async function exists(session: Session, table: QualifiedName): Promise<boolean> {
  const found = await session.query<{ present: boolean }>(sql`select to_regclass(${table.sql}) is not null as present`);
  return found.rows[0]?.present ?? false;
}

interface ColumnRow {
  name: string;
  type: string;
  category: string;
}

async function checkShape(session: Session, shape: TableShape): Promise<void> {
  const { rows } = await session.query<ColumnRow>(
    sql`select a.attname::text as name, format_type(a.atttypid, a.atttypmod) as type, t.typcategory::text as category
     from pg_attribute a
     join pg_type t on t.oid = a.atttypid
     where a.attrelid = to_regclass(${shape.table.sql}) and a.attnum > 0 and not a.attisdropped`,
  );
  const columns = new Map(rows.map((row) => [row.name, row]));
  const wanted = [...shape.keys, 'theta', 'se', shape.at];
  const missing = wanted.filter((name) => !columns.has(name));
  const described = `${shape.keys.join(', ')}, theta, se, ${shape.at}`;
  if (missing.length > 0) {
    throw new ConfigError(
      `the table ${shape.table.name} lacks the column${missing.length > 1 ? 's' : ''} ${missing.join(', ')}: it needs ${described}`,
    );
  }
  for (const name of ['theta', 'se']) {
    const column = columns.get(name)!;
    if (column.category !== 'N') {
      throw new ConfigError(`${shape.table.name}.${name} is ${column.type}: it must be a number type (numeric or double precision)`);
    }
  }
  const at = columns.get(shape.at)!;
  if (at.type !== 'timestamp with time zone') {
    throw new ConfigError(
      `${shape.table.name}.${shape.at} is ${at.type}: it must be timestamp with time zone, so that "before the end of day d" means one instant in every time zone`,
    );
  }
  try {
    await session.query(sql`select ${join(wanted.map((column) => raw(column)))} from ${ident(shape.table)} where false`);
  } catch (err) {
    if (sqlState(err) === '42501') {
      throw new ConfigError(`${(err as Error).message}: grant SELECT on ${shape.table.sql} to the job's role`, { cause: err });
    }
    throw err;
  }
}
