/**
 * `import-attempts FILE.csv`: loads attempts from a CSV with the header
 * `student_id,topic_id,completed_at,correct,response_time_ms,hint_used` into the attempt
 * table, in one transaction (a malformed line loads nothing), streaming in batches so memory
 * stays flat for any file size. Works the same on the server and on PGlite.
 *
 * The rows are staged in a temporary table first, with their line numbers: a value the
 * database rejects is then found by halving the failed batch (a few statements, only on
 * failure) and reported with its line, and a file whose rows are already in the table (the
 * same file imported twice) is refused before anything is appended.
 */
import { constants, createReadStream } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream';
import { parse } from 'csv-parse';
import type { Session } from '../database/db.js';
import { ConfigError, messageOf, sqlState } from '../errors.js';
import { isDistributed } from '../database/citus.js';
import { ensureAttemptTable } from './attempt-table.js';
import type { QualifiedName } from '../sql/identifiers.js';
import { ident, sql, type Sql } from '../sql/tag.js';
import { inSavepoint, inTransaction } from '../database/transaction.js';

export const csvHeader = ['student_id', 'topic_id', 'completed_at', 'correct', 'response_time_ms', 'hint_used'] as const;

export interface ImportOptions {
  readonly file: string;
  readonly table: QualifiedName;
  /** Empty the table first (in the same transaction). */
  readonly replace: boolean;
  /** Append even when rows equal to the file's are already in the table. */
  readonly allowDuplicates?: boolean;
  readonly batchSize?: number;
  /** Called when rows without a student_id were skipped: how many, and the first one's line. */
  readonly onSkipped?: (rows: number, firstLine: number) => void;
}

const createStaging = sql`
create temporary table agg_import (
  line int, student_id text, topic_id text, completed_at timestamptz, correct boolean, response_time_ms int, hint_used boolean
) on commit drop`;

/** Stages one batch: the lines and the six columns' values, one array each. */
const stageBatch = (lines: number[], [studentIds, topicIds, completedAts, corrects, responseTimes, hintsUsed]: unknown[][]): Sql => sql`
insert into agg_import
select * from unnest(${lines}::int[], ${studentIds}::text[], ${topicIds}::text[], ${completedAts}::timestamptz[], ${corrects}::boolean[], ${responseTimes}::int[], ${hintsUsed}::boolean[])`;

/** A staged row `s` equal in every column to a row `a` of the table (`s` has a student). */
const sameAttempt = sql`a.completed_at = s.completed_at
                and a.student_id::text is not distinct from s.student_id
                and a.topic_id::text is not distinct from s.topic_id
                and a.correct is not distinct from s.correct
                and a.response_time_ms is not distinct from s.response_time_ms
                and a.hint_used is not distinct from s.hint_used`;

/**
 * Staged rows equal in every column to a row already in the table: the count and the first
 * line. The lookup goes through the table's index on completed_at. Where the table is
 * distributed (Citus) a temporary table cannot be joined with it, so the staged rows are read
 * once into an intermediate result that each worker receives, and joined there shard by shard.
 */
const findPresent = (table: QualifiedName, distributed: boolean): Sql =>
  distributed
    ? sql`
with s as materialized (select * from agg_import where student_id is not null)
select count(distinct s.line)::int as present, min(s.line) as first_line
from ${ident(table)} a
join s on ${sameAttempt}`
    : sql`
select count(*)::int as present, min(s.line) as first_line
from agg_import s
where s.student_id is not null
  and exists (select 1 from ${ident(table)} a
              where ${sameAttempt})`;

/**
 * Rows without a student are skipped on every database: the job ignores them (they belong to
 * no one), and a table distributed by student_id (Citus) cannot store them.
 */
const countSkipped = sql`select count(*)::int as skipped, min(line) as first_line from agg_import where student_id is null`;

const appendStaged = (table: QualifiedName): Sql => sql`
insert into ${ident(table)} (student_id, topic_id, completed_at, correct, response_time_ms, hint_used)
select student_id, topic_id, completed_at, correct, response_time_ms, hint_used from agg_import
where student_id is not null`;

const booleans: Record<string, boolean | null> = {
  '': null,
  true: true,
  false: false,
  t: true,
  f: false,
  '1': true,
  '0': false,
  yes: true,
  no: false,
};
const timestampPattern = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)?$/i;
const offsetPattern = /(Z|[+-]\d{2}(:?\d{2})?)$/i;

/** Validates one CSV record; returns the values for the insert or throws with the reason. */
function parseRecord(record: string[]): [string | null, string | null, string, boolean | null, number | null, boolean | null] {
  if (record.length !== csvHeader.length) throw new Error(`expected ${csvHeader.length} fields, found ${record.length}`);
  const [student, topic, completedAt, correct, time, hint] = record as [string, string, string, string, string, string];
  // The shape is checked here to name the line; PostgreSQL checks the calendar (2025-02-30).
  if (!timestampPattern.test(completedAt.trim())) {
    throw new Error(`completed_at ${JSON.stringify(completedAt)} is not a timestamp such as 2025-11-01T14:03:00Z`);
  }
  // Without an offset the instant (and its day) would depend on the database's TimeZone.
  if (!offsetPattern.test(completedAt.trim())) {
    throw new Error(
      `completed_at ${JSON.stringify(completedAt)} has no offset: add Z (UTC) or the offset it was written in, e.g. ${completedAt.trim()}Z or ${completedAt.trim()}+01:00`,
    );
  }
  const bool = (value: string, column: string) => {
    const parsed = booleans[value.trim().toLowerCase()];
    if (parsed === undefined) throw new Error(`${column} ${JSON.stringify(value)} is not true, false or empty`);
    return parsed;
  };
  let responseTime: number | null = null;
  if (time.trim() !== '') {
    if (!/^-?\d+$/.test(time.trim()) || Math.abs(Number(time)) > 2_147_483_647) {
      throw new Error(`response_time_ms ${JSON.stringify(time)} is not a whole number of milliseconds`);
    }
    responseTime = Number(time);
  }
  return [
    student === '' ? null : student,
    topic === '' ? null : topic,
    completedAt.trim(),
    bool(correct, 'correct'),
    responseTime,
    bool(hint, 'hint_used'),
  ];
}

async function checkReadable(file: string): Promise<void> {
  try {
    const info = await stat(file);
    if (!info.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'EISDIR' });
    await access(file, constants.R_OK);
  } catch (err) {
    throw new ConfigError(`cannot read ${file}: ${messageOf(err)}`, { cause: err });
  }
}

/** Imports the file; returns the number of rows loaded. Throws ConfigError naming the line. */
export async function importAttempts(session: Session, options: ImportOptions): Promise<number> {
  await checkReadable(options.file);
  return inTransaction(session, async () => {
    await ensureAttemptTable(session, options.table);
    await session.query(createStaging);
    const loaded = await stageFile(session, options);
    const { table } = options;
    const skipped = (await session.query<{ skipped: number; first_line: number | null }>(countSkipped)).rows[0]!;
    if (skipped.skipped > 0) options.onSkipped?.(skipped.skipped, skipped.first_line!);
    const distributed = await isDistributed(session, table);
    if (options.replace) {
      await session.query(sql`truncate ${ident(table)}`);
    } else if (!options.allowDuplicates && loaded > 0) {
      const found = (await session.query<{ present: number; first_line: number | null }>(findPresent(table, distributed))).rows[0]!;
      if (found.present > 0) {
        throw new ConfigError(
          `${options.file}: ${found.present} of its ${loaded} rows are already in ${options.table.sql} (the first on line ${found.first_line}); appending would count those attempts twice, so nothing was loaded. Use --replace to replace the table's rows with the file, or --allow-duplicates if these are really new attempts`,
        );
      }
    }
    await session.query(appendStaged(table));
    await session.query(sql`analyze ${ident(table)}`);
    return loaded - skipped.skipped;
  });
}

/** Parses the file into agg_import batch by batch; returns the rows staged. Throws ConfigError naming the line. */
async function stageFile(session: Session, options: ImportOptions): Promise<number> {
  const batches = batchStager(session, options);
  let line = 1;
  // pipeline, not pipe: a read error must reach the parser, or the loop below waits forever.
  const parser = pipeline(
    createReadStream(options.file),
    parse({ relax_column_count: true, bom: true, info: true, skip_empty_lines: true }),
    () => undefined,
  );
  let sawHeader = false;
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      line = info.lines;
      if (!sawHeader) {
        sawHeader = true;
        if (record.join(',') !== csvHeader.join(',')) {
          throw new ConfigError(
            `${options.file}: line 1 must be the header ${csvHeader.join(',')}, found ${record.join(',')}; nothing was loaded`,
          );
        }
        continue;
      }
      let values;
      try {
        values = parseRecord(record);
      } catch (err) {
        throw new ConfigError(`${options.file}: line ${line}: ${messageOf(err)}; nothing was loaded`);
      }
      await batches.add(line, values);
    }
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const at = (err as { lines?: number }).lines;
    throw new ConfigError(`${options.file}: line ${at ?? line}: malformed CSV (${messageOf(err)}); nothing was loaded`, { cause: err });
  }
  if (!sawHeader) throw new ConfigError(`${options.file} is empty: it needs the header ${csvHeader.join(',')}`);
  return batches.flush();
}

/**
 * Stages parsed rows in batches of `options.batchSize`, each in a savepoint; a batch the
 * database rejects is halved down to its first rejected line (ConfigError naming it).
 */
function batchStager(
  session: Session,
  options: ImportOptions,
): { add(line: number, values: unknown[]): Promise<void>; flush(): Promise<number> } {
  const batchSize = options.batchSize ?? 5_000;
  let loaded = 0;
  let lines: number[] = [];
  let columns: unknown[][] = [[], [], [], [], [], []];
  const stage = async (rows: number[], values: unknown[][]): Promise<unknown> => {
    try {
      await inSavepoint(session, 'agg_import_batch', () => session.query(stageBatch(rows, values)));
      return undefined;
    } catch (err) {
      return err;
    }
  };
  const flush = async () => {
    if (lines.length === 0) return loaded;
    const error = await stage(lines, columns);
    if (error !== undefined) {
      const { line: bad, error: cause } = await findRejectedLine(lines, columns, error, stage);
      throw new ConfigError(
        `${options.file}: line ${bad} was rejected by the database: ${messageOf(cause)}${sqlState(cause) ? ` (SQLSTATE ${sqlState(cause)})` : ''}; nothing was loaded`,
        { cause },
      );
    }
    loaded += lines.length;
    lines = [];
    columns = [[], [], [], [], [], []];
    return loaded;
  };
  return {
    async add(line, values) {
      values.forEach((value, i) => columns[i]!.push(value));
      lines.push(line);
      if (lines.length >= batchSize) await flush();
    },
    flush,
  };
}

/**
 * The first line of a rejected batch that the database rejects on its own, found by halving:
 * about log2(batch) statements, each rolled back. Falls back to the batch's first line.
 */
async function findRejectedLine(
  lines: number[],
  columns: unknown[][],
  error: unknown,
  stage: (rows: number[], values: unknown[][]) => Promise<unknown>,
): Promise<{ line: number; error: unknown }> {
  let from = 0;
  let to = lines.length;
  let last = error;
  while (to - from > 1) {
    const middle = (from + to) >> 1;
    const firstHalf = await stage(
      lines.slice(from, middle),
      columns.map((c) => c.slice(from, middle)),
    );
    if (firstHalf !== undefined) {
      last = firstHalf;
      to = middle;
    } else {
      from = middle;
    }
  }
  // Rows staged while searching are dropped again: the caller throws and the transaction rolls back.
  return { line: lines[from] ?? lines[0]!, error: last };
}
