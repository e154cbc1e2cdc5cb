/**
 * `import-attempts FILE.csv`: loads attempts from a CSV with the header
 * `student_id,topic_id,completed_at,correct,response_time_ms,hint_used` into the attempt
 * table, in one transaction (a malformed line loads nothing), streaming in batches so memory
 * stays flat for any file size. Works the same on the server and on PGlite.
 */
import { constants, createReadStream } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream';
import { parse } from 'csv-parse';
import type { Session } from './db.js';
import { ConfigError, messageOf, sqlState } from './errors.js';
import { ensureAttemptTable } from './attempt-table.js';
import { withIdentifiers, type QualifiedName } from './identifiers.js';

export const csvHeader = ['student_id', 'topic_id', 'completed_at', 'correct', 'response_time_ms', 'hint_used'] as const;

export interface ImportOptions {
  readonly file: string;
  readonly table: QualifiedName;
  /** Empty the table first (in the same transaction). */
  readonly replace: boolean;
  readonly batchSize?: number;
  readonly onProgress?: (rows: number) => void;
}

const insertBatch = `
insert into {{table}} (student_id, topic_id, completed_at, correct, response_time_ms, hint_used)
select * from unnest($1::text[], $2::text[], $3::timestamptz[], $4::boolean[], $5::int[], $6::boolean[])`;

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

/** Validates one CSV record; returns the values for the insert or throws with the reason. */
function parseRecord(record: string[]): [string | null, string | null, string, boolean | null, number | null, boolean | null] {
  if (record.length !== csvHeader.length) throw new Error(`expected ${csvHeader.length} fields, found ${record.length}`);
  const [student, topic, completedAt, correct, time, hint] = record as [string, string, string, string, string, string];
  // The shape is checked here to name the line; PostgreSQL checks the calendar (2025-02-30).
  if (!timestampPattern.test(completedAt.trim())) {
    throw new Error(`completed_at ${JSON.stringify(completedAt)} is not a timestamp such as 2025-11-01T14:03:00Z`);
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
  const batchSize = options.batchSize ?? 5_000;
  const statement = withIdentifiers(insertBatch, { table: options.table });
  let loaded = 0;
  let line = 1;
  let columns: string[][] = [[], [], [], [], [], []];
  let firstLineOfBatch = 2;
  const flush = async () => {
    if (columns[0]!.length === 0) return;
    try {
      await session.query(statement, columns);
    } catch (err) {
      throw new ConfigError(
        `${options.file}: lines ${firstLineOfBatch}–${line} were rejected by the database: ${messageOf(err)}${sqlState(err) ? ` (SQLSTATE ${sqlState(err)})` : ''}; nothing was loaded`,
        { cause: err },
      );
    }
    loaded += columns[0]!.length;
    options.onProgress?.(loaded);
    columns = [[], [], [], [], [], []];
    firstLineOfBatch = line + 1;
  };
  await checkReadable(options.file);
  try {
    await session.query('begin');
    await ensureAttemptTable(session, options.table);
    if (options.replace) await session.query(withIdentifiers('truncate {{table}}', { table: options.table }));
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
        values.forEach((value, i) => columns[i]!.push(value as never));
        if (columns[0]!.length >= batchSize) await flush();
      }
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      const at = (err as { lines?: number }).lines;
      throw new ConfigError(`${options.file}: line ${at ?? line}: malformed CSV (${messageOf(err)}); nothing was loaded`, { cause: err });
    }
    if (!sawHeader) throw new ConfigError(`${options.file} is empty: it needs the header ${csvHeader.join(',')}`);
    await flush();
    await session.query(withIdentifiers('analyze {{table}}', { table: options.table }));
    await session.query('commit');
    return loaded;
  } catch (err) {
    await session.query('rollback').catch(() => undefined);
    throw err;
  }
}
