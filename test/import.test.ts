/** import-attempts: quoted fields, NULLs, and all-or-nothing with the bad line named. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { parseQualifiedName } from '../src/sql/identifiers.js';
import { importAttempts } from '../src/source/import-attempts.js';
import { allBackends, useSession } from './support/backends.js';
import { testTempDir } from './support/resources.js';
import { sql } from '../src/sql/tag.js';

const backends = await allBackends('import');
const header = 'student_id,topic_id,completed_at,correct,response_time_ms,hint_used';
const table = parseQualifiedName('attempt', 'table');

const directory = testTempDir('import');

function csvFile(name: string, lines: string[]): string {
  const path = join(directory, `${name}.csv`);
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

describe.each(backends)('import-attempts ($name)', (backend) => {
  const t = useSession(backend);

  async function rows() {
    const result = await t.session.query<Record<string, unknown>>(
      sql`select student_id, topic_id, to_char(completed_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS') as at, correct, response_time_ms, hint_used
       from attempt order by completed_at, student_id`,
    );
    return result.rows;
  }

  test('loads quoted fields, empty values as NULL, offsets and fractional seconds', async () => {
    const file = csvFile('good', [
      header,
      'u1,"Find Y, any form",2025-11-01T10:00:00Z,true,1500,false',
      '"u""2",algebra,2025-11-01 12:00:00.250+02,,,',
      '42,"multi\nline",2025-11-01T23:59:59.999Z,0,-5,1',
    ]);
    expect(await importAttempts(t.session, { file, table, replace: true })).toBe(3);
    expect(await rows()).toEqual([
      {
        student_id: 'u1',
        topic_id: 'Find Y, any form',
        at: '2025-11-01 10:00:00.000',
        correct: true,
        response_time_ms: 1500,
        hint_used: false,
      },
      { student_id: 'u"2', topic_id: 'algebra', at: '2025-11-01 10:00:00.250', correct: null, response_time_ms: null, hint_used: null },
      { student_id: '42', topic_id: 'multi\nline', at: '2025-11-01 23:59:59.999', correct: false, response_time_ms: -5, hint_used: true },
    ]);
  });

  test.each([
    [
      'bad-time',
      [header, 'u1,a,2025-11-01T10:00:00Z,true,1,false', 'u1,a,yesterday,true,1,false'],
      /line 3: completed_at "yesterday" is not a timestamp/,
    ],
    ['bad-bool', [header, 'u1,a,2025-11-01T10:00:00Z,maybe,1,false'], /line 2: correct "maybe" is not true, false or empty/],
    ['bad-int', [header, 'u1,a,2025-11-01T10:00:00Z,true,1.5,false'], /line 2: response_time_ms "1.5" is not a whole number/],
    ['fields', [header, 'u1,a,2025-11-01T10:00:00Z,true'], /line 2: expected 6 fields, found 4/],
    ['header', ['user,topic,time,correct,rt,hint', 'u1,a,2025-11-01T10:00:00Z,true,1,false'], /line 1 must be the header/],
    ['quote', [header, 'u1,"unterminated,2025-11-01T10:00:00Z,true,1,false'], /malformed CSV/],
    ['impossible-date', [header, 'u1,a,2025-02-30T10:00:00Z,true,1,false'], /line 2 was rejected by the database/],
    [
      'no-offset',
      [header, 'u1,a,2025-03-10T22:00:00Z,true,1,false', 'u1,a,2025-03-10T23:30:00,true,1,false'],
      /line 3: completed_at "2025-03-10T23:30:00" has no offset: add Z \(UTC\) or the offset it was written in/,
    ],
    [
      'out-of-range-on-line-31',
      [
        header,
        ...Array.from({ length: 58 }, (_, i) =>
          i === 29 ? 'u1,a,2025-13-45T10:00:00Z,true,1,false' : `u${i},a,2025-03-10T10:00:00Z,true,${i},false`,
        ),
      ],
      /line 31 was rejected by the database: .*; nothing was loaded/,
    ],
  ])('%s: one clear error naming the line, nothing loaded', async (name, lines, message) => {
    await t.session.query(sql`truncate attempt`);
    await t.session.query(sql`insert into attempt values ('keep', 'me', now(), true, 1, false)`);
    const file = csvFile(name, lines);
    await expect(importAttempts(t.session, { file, table, replace: true })).rejects.toThrow(message);
    expect((await rows()).map((r) => r.student_id)).toEqual(['keep']);
  });

  test('the same file imported twice is refused, naming the first line already present; --allow-duplicates appends', async () => {
    await t.session.query(sql`truncate attempt`);
    const file = csvFile('twice', [header, 'u1,a,2025-11-01T10:00:00Z,true,1,false', 'u2,a,2025-11-01T11:00:00+01:00,,,']);
    expect(await importAttempts(t.session, { file, table, replace: false })).toBe(2);
    await expect(importAttempts(t.session, { file, table, replace: false })).rejects.toThrow(
      /twice.csv: 2 of its 2 rows are already in "attempt" \(the first on line 2\); appending would count those attempts twice, so nothing was loaded/,
    );
    expect((await rows()).length).toBe(2);
    // A file with new rows only is appended; --replace and --allow-duplicates are explicit.
    const more = csvFile('more', [header, 'u3,a,2025-11-02T10:00:00Z,true,1,false']);
    expect(await importAttempts(t.session, { file: more, table, replace: false })).toBe(1);
    expect(await importAttempts(t.session, { file, table, replace: true })).toBe(2);
    expect((await rows()).length).toBe(2);
    expect(await importAttempts(t.session, { file, table, replace: false, allowDuplicates: true })).toBe(2);
    expect((await rows()).length).toBe(4);
  });

  test('a missing file or a directory is a clear error', async () => {
    await expect(importAttempts(t.session, { file: '/nonexistent/attempts.csv', table, replace: false })).rejects.toThrow(
      /cannot read \/nonexistent\/attempts.csv: ENOENT/,
    );
    await expect(importAttempts(t.session, { file: directory, table, replace: false })).rejects.toThrow(/cannot read .*not a regular file/);
  });

  test('streams a file larger than one batch', async () => {
    const lines = [header];
    for (let i = 0; i < 12_345; i++)
      lines.push(`u${i % 97},t${i % 13},2025-11-01T${String(i % 24).padStart(2, '0')}:00:00Z,${i % 2 === 0},${i},false`);
    const file = csvFile('big', lines);
    expect(await importAttempts(t.session, { file, table, replace: true, batchSize: 1000 })).toBe(12_345);
    expect((await t.session.query<{ n: number }>(sql`select count(*)::int as n from attempt`)).rows[0]!.n).toBe(12_345);
  });
});
