/**
 * Checks on the attempts source before a run (the source contract), so a missing
 * table, a missing column or a column of the wrong type is a one-line configuration error
 * (exit 2) instead of a failed statement halfway through, or worse, a run that succeeds with
 * days cut in the server's time zone.
 */
import type { Session } from '../database/db.js';
import { ConfigError, sqlState } from '../errors.js';
import type { QualifiedName } from '../sql/identifiers.js';
import type { KeyKind, Keys } from '../work.js';
import { readNothing, setSourceTimezone, similarlyNamed, sourceColumnTypes, sourceExists } from '../sql/source-contract.js';
import { ident, sql, type Sql } from '../sql/tag.js';

export const requiredSourceColumns = ['student_id', 'topic_id', 'completed_at', 'correct', 'response_time_ms', 'hint_used'] as const;
type SourceColumn = (typeof requiredSourceColumns)[number];

/** The session setting that carries AGG_SOURCE_TIMEZONE into the source's wrapper (a bound value, never SQL text). */
const sourceTimezoneSetting = 'aggregate_features.source_timezone';

/** The checked source: what the statements read (possibly a wrapper), and what the check found worth saying. */
export interface CheckedSource {
  /** The relation statements read: the source itself, or a subquery that reads it with completed_at made a timestamptz. */
  readonly relation: Sql;
  readonly warnings: string[];
  /** How the computation groups on student_id and topic_id, from their types (KeyKind). */
  readonly keys: Keys;
}

interface ColumnRow {
  name: SourceColumn;
  type: string;
  base: string;
  category: string;
}

const integerTypes = ['smallint', 'integer', 'bigint'];

/** text and varchar are grouped as they are, uuids and integers in their own type, the rest cast to text. */
function keyKind(row: ColumnRow): KeyKind {
  if (row.type === 'text' || row.type.startsWith('character varying')) return 'text';
  if (row.base === 'uuid' || integerTypes.includes(row.base)) return 'native';
  return 'cast';
}

/** True when a column of base type `base` (category `category`) is accepted for `column`. */
function accepted(column: SourceColumn, row: ColumnRow): boolean {
  switch (column) {
    case 'student_id':
    case 'topic_id':
      // Compared as text: strings, uuids and integers have one text form each.
      return row.category === 'S' || row.base === 'uuid' || integerTypes.includes(row.base);
    case 'completed_at':
      return row.base === 'timestamp with time zone';
    case 'correct':
    case 'hint_used':
      return row.base === 'boolean';
    case 'response_time_ms':
      return integerTypes.includes(row.base);
  }
}

const expectedType: Record<SourceColumn, string> = {
  student_id: 'text, uuid or an integer type',
  topic_id: 'text, uuid or an integer type',
  completed_at: 'timestamptz',
  correct: 'boolean',
  response_time_ms: 'an integer type',
  hint_used: 'boolean',
};

/**
 * Throws ConfigError unless the source exists, is readable and has the attempt columns
 * (student_id, topic_id, completed_at, correct, response_time_ms, hint_used) with their
 * types. A `timestamp without time zone` completed_at is accepted only with `timezone`
 * (AGG_SOURCE_TIMEZONE): the statements then read it through a wrapper that puts it in that
 * zone. Sets the session setting the wrapper reads.
 */
export async function checkSource(
  session: Session,
  source: QualifiedName,
  options: { variable?: string; timezone?: string | undefined } = {},
): Promise<CheckedSource> {
  const variable = options.variable ?? 'AGG_SOURCE';
  await checkExists(session, source, variable);
  const byName = await sourceColumns(session, source, variable);
  const warnings: string[] = [];
  let relation = ident(source);
  for (const column of requiredSourceColumns) {
    const row = byName.get(column)!;
    if (column === 'completed_at' && row.base === 'timestamp without time zone') {
      if (options.timezone === undefined) {
        throw new ConfigError(
          `the attempts source ${source.sql} has completed_at of type ${row.type}, which names no instant without a zone (its days would depend on the server's TimeZone): make it timestamptz in a view (completed_at at time zone 'Europe/Berlin' as completed_at), or set AGG_SOURCE_TIMEZONE to the zone its values are written in`,
        );
      }
      relation = zonedSource(source);
      await session.query(setSourceTimezone(sourceTimezoneSetting, options.timezone));
      continue;
    }
    if (!accepted(column, row)) {
      throw new ConfigError(
        `the attempts source ${source.sql} has ${column} of type ${row.type}, but it must be ${expectedType[column]}: cast it in a view (${column}::${castTarget[column]} as ${column}) and point ${variable} at the view`,
      );
    }
  }
  if (options.timezone !== undefined && byName.get('completed_at')!.base !== 'timestamp without time zone') {
    warnings.push(`AGG_SOURCE_TIMEZONE is ignored: completed_at of ${source.sql} is already timestamptz`);
  }
  await checkReadable(session, source);
  return { relation, warnings, keys: { student: keyKind(byName.get('student_id')!), topic: keyKind(byName.get('topic_id')!) } };
}

/** Throws ConfigError when the source does not exist, naming a differently cased one that does. */
async function checkExists(session: Session, source: QualifiedName, variable: string): Promise<void> {
  const found = await session.query<{ present: boolean }>(sourceExists(source));
  if (found.rows[0]?.present) return;
  // Names follow SQL's rule (plain names fold to lower case): point at a differently cased one.
  const similar = await session.query<{ name: string }>(similarlyNamed(source));
  const hint =
    similar.rows.length === 0
      ? ''
      : ` (there is ${similar.rows.map((r) => r.name).join(', ')}: a name with capitals must be double-quoted, e.g. ${variable}='"Attempts"')`;
  throw new ConfigError(
    `the attempts source ${source.sql} does not exist${hint}: create it, load data with \`aggregate-features-daily import-attempts FILE.csv\`, or set ${variable} to the table or view that holds the attempts`,
  );
}

/** The required columns of the source with their types; throws ConfigError naming those missing. */
async function sourceColumns(session: Session, source: QualifiedName, variable: string): Promise<Map<SourceColumn, ColumnRow>> {
  const columns = await session.query<ColumnRow>(sourceColumnTypes(source, requiredSourceColumns));
  const byName = new Map(columns.rows.map((row) => [row.name, row]));
  const missing = requiredSourceColumns.filter((c) => !byName.has(c));
  if (missing.length > 0) {
    throw new ConfigError(
      `the attempts source ${source.sql} lacks the column${missing.length > 1 ? 's' : ''} ${missing.join(', ')}: it needs ${requiredSourceColumns.join(', ')}; rename or add ${missing.length > 1 ? 'them' : 'it'} in a view and point ${variable} at the view`,
    );
  }
  return byName;
}

/** Throws ConfigError (grant SELECT) when the job's role may not read the source. */
async function checkReadable(session: Session, source: QualifiedName): Promise<void> {
  try {
    await session.query(readNothing(source, requiredSourceColumns));
  } catch (err) {
    if (sqlState(err) === '42501') {
      throw new ConfigError(`${(err as Error).message}: grant SELECT on ${source.sql} to the job's role`, { cause: err });
    }
    throw err;
  }
}

const castTarget: Record<SourceColumn, string> = {
  student_id: 'text',
  topic_id: 'text',
  completed_at: 'timestamptz',
  correct: 'boolean',
  response_time_ms: 'int',
  hint_used: 'boolean',
};

/**
 * The source read with its `timestamp` completed_at put in the configured zone. The range
 * conditions on completed_at then apply to an expression, so an index on the column is not
 * used: a view with a timestamptz column (and an index on it) is faster on a large table.
 */
function zonedSource(source: QualifiedName): Sql {
  return sql`(select student_id, topic_id,
                       completed_at at time zone current_setting(${sourceTimezoneSetting}) as completed_at,
                       correct, response_time_ms, hint_used
                from ${ident(source)}) as ${ident(source.name)}`;
}
