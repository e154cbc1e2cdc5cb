/**
 * Malformed data has a defined behaviour (docs/security.md, "Malformed input"), on PGlite and
 * the server: every case is its own source table (AGG_SOURCE) and its own window, the run
 * (the CLI's main(), in this process) must succeed, and the window must equal the independent
 * oracle, which compares ids as text (PostgreSQL's text form of the column: a uuid in lower
 * case, a bigint in decimal). And whatever fails, no output ever contains the password of
 * DATABASE_URL (the first command of each case as a process, `node dist/cli.js`).
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { oracle, type OracleAttempt, type OracleRow } from '../oracle/oracle.js';
import { allBackends, serverBackend } from '../support/backends.js';
import { runCli, runMain } from '../support/cli.js';
import { readRows, rowText, sortRows, withDb, type Queryable } from '../support/hardening.js';
import { raw, sql } from '../../src/sql/tag.js';

// ---------------------------------------------------------------------------------------------
// The cases.

interface Case {
  readonly name: string;
  readonly anchor: string;
  readonly timezone: string;
  /** The student_id column's type. */
  readonly studentType?: 'text' | 'uuid' | 'bigint';
  /** Whether completed_at may be NULL (a source without the NOT NULL of SPEC §2). */
  readonly nullableCompletedAt?: boolean;
  /** The rows stored (ids and instants as text, cast by PostgreSQL to the column types). */
  readonly stored: OracleAttempt[];
  /** What the oracle reads; default `stored`. */
  readonly forOracle?: OracleAttempt[];
  /** The oracle works on years 2…9998: shift the case by this many years (a multiple of 400, so the calendar is identical). */
  readonly shiftYears?: number;
  /** How many of the stored rows are malformed on purpose (for the report). */
  readonly malformed: number;
  /** The run's expected last log line, when not the summary. */
  readonly expectLog?: RegExp;
}

const at = (date: string, time = '12:00:00.000') => `${date}T${time}Z`;
function plusDays(date: string, days: number): string {
  // Plain calendar arithmetic for years 1900…9999 (Date handles them in UTC).
  const t = new Date(`${date}T00:00:00Z`);
  t.setUTCDate(t.getUTCDate() + days);
  return t.toISOString().slice(0, 10);
}
function attempt(student: string | null, topic: string | null, completedAt: string, extra: Partial<OracleAttempt> = {}): OracleAttempt {
  return {
    student_id: student,
    topic_id: topic,
    completed_at: completedAt,
    correct: true,
    response_time_ms: 1000,
    hint_used: false,
    ...extra,
  };
}
/** A few ordinary attempts of (student, topic) around `anchor`: in the window and in both improvement halves. */
function ordinary(student: string, topic: string, anchor: string): OracleAttempt[] {
  return [
    attempt(student, topic, at(plusDays(anchor, -20), '08:00:00.000'), { correct: false }),
    attempt(student, topic, at(plusDays(anchor, -5), '09:30:00.000')),
    attempt(student, topic, at(plusDays(anchor, -1), '23:59:59.999'), { correct: false, hint_used: true }),
    attempt(student, topic, at(anchor, '00:00:00.000'), { response_time_ms: 2001 }),
  ];
}

const anchors = Array.from({ length: 12 }, (_, i) => plusDays('2031-01-10', i * 10));

const uuidA = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11';
const uuidB = '6ba7b810-9dad-11d1-80b4-00c04fd430c8';
const weirdIds = [
  "o'neil",
  '"double"',
  '`back`tick',
  'back\\slash',
  'C:\\path\\new',
  '\\x00 literal',
  'line1\nline2',
  'crlf\r\nend',
  'tab\there',
  '👩‍👩‍👧‍👦 family',
  '🦄',
  'e\u0301 (NFD)',
  'é (NFC)',
  'مرحبا',
  'a\u200Bb zero width',
  'line\u2028separator',
  'x\uFEFFbom (a leading BOM would be dropped by PGlite when read back into JS)',
  '代数',
  "'); drop table features_topic_daily; --",
  '{{source}}',
  '$1 $$ %s %d',
  '{"json": [1, 2]}',
  '<script>alert(1)</script>',
];

const cases: Case[] = [
  {
    name: 'NULL, empty and whitespace keys',
    anchor: anchors[0]!,
    timezone: 'UTC',
    malformed: 14,
    stored: [
      ...ordinary('s1', 'algebra', anchors[0]!),
      // Ignored: NULL or empty student or topic.
      attempt(null, 'algebra', at(anchors[0]!)),
      attempt('s1', null, at(anchors[0]!)),
      attempt('', 'algebra', at(anchors[0]!)),
      attempt('s1', '', at(anchors[0]!)),
      attempt(null, null, at(anchors[0]!)),
      attempt('', '', at(anchors[0]!)),
      // Kept, each its own key: whitespace is data, ids are not trimmed or case-folded.
      attempt(' ', 'algebra', at(anchors[0]!)),
      attempt('\t', 'algebra', at(anchors[0]!)),
      attempt(' s1', 'algebra', at(anchors[0]!)),
      attempt('s1 ', 'algebra', at(anchors[0]!)),
      attempt('S1', 'algebra', at(anchors[0]!)),
      attempt('s1', ' ', at(anchors[0]!)),
      attempt('s1', '\n', at(anchors[0]!)),
      attempt('s1', 'algebra ', at(anchors[0]!), { correct: null, hint_used: null, response_time_ms: null }),
    ],
  },
  {
    name: 'only unusable keys in the window',
    anchor: anchors[1]!,
    timezone: 'UTC',
    malformed: 4,
    stored: [
      attempt(null, 'algebra', at(anchors[1]!)),
      attempt('', 'algebra', at(anchors[1]!)),
      attempt('s1', null, at(anchors[1]!)),
      attempt('s1', '', at(anchors[1]!)),
    ],
    expectLog: /No \(user_id, topic_id, date\) combinations found \(lookback=7 days\); exiting\./,
  },
  {
    name: 'absurd response times',
    anchor: anchors[2]!,
    timezone: 'UTC',
    malformed: 13,
    stored: [
      // Negative times are invalid (not averaged), zero is valid.
      attempt('neg', 'rt', at(anchors[2]!), { response_time_ms: -1 }),
      attempt('neg', 'rt', at(anchors[2]!, '12:00:01.000'), { response_time_ms: -2147483648 }),
      attempt('neg', 'rt', at(anchors[2]!, '12:00:02.000'), { response_time_ms: 0 }),
      attempt('only-negative', 'rt', at(anchors[2]!), { response_time_ms: -5 }),
      attempt('only-null', 'rt', at(anchors[2]!), { response_time_ms: null }),
      // int max: the mean and the median stay within int.
      attempt('max', 'rt', at(anchors[2]!), { response_time_ms: 2147483647 }),
      attempt('max', 'rt', at(anchors[2]!, '12:00:01.000'), { response_time_ms: 2147483647 }),
      attempt('max', 'rt', at(anchors[2]!, '12:00:02.000'), { response_time_ms: 2147483647 }),
      attempt('max-pair', 'rt', at(anchors[2]!), { response_time_ms: 2147483647 }),
      attempt('max-pair', 'rt', at(anchors[2]!, '12:00:01.000'), { response_time_ms: 2147483646 }),
      attempt('max-and-zero', 'rt', at(anchors[2]!), { response_time_ms: 2147483647 }),
      attempt('max-and-zero', 'rt', at(anchors[2]!, '12:00:01.000'), { response_time_ms: 0 }),
      attempt('half', 'rt', at(anchors[2]!), { response_time_ms: 0 }),
      attempt('half', 'rt', at(anchors[2]!, '12:00:01.000'), { response_time_ms: 1 }),
    ],
  },
  {
    name: 'timestamps far in the future and the past, and ±infinity',
    anchor: anchors[3]!,
    timezone: 'Europe/Berlin',
    malformed: 7,
    stored: [
      ...ordinary('s1', 'algebra', anchors[3]!),
      attempt('s1', 'algebra', '9999-12-31T23:59:59.999Z'),
      attempt('s1', 'algebra', '1900-01-01T00:00:00.000Z'),
      attempt('s2', 'algebra', '1900-01-01T00:00:00.000Z'),
      attempt('s1', 'algebra', '0001-01-01T00:00:00.000Z'),
      attempt('s1', 'algebra', '294276-12-31T23:59:59.000Z'),
      attempt('s1', 'algebra', 'infinity'),
      attempt('s1', 'algebra', '-infinity'),
    ],
    // Never in any window (the oracle parses years 2…9998 only; the rest are after or long before the anchor).
    forOracle: [
      ...ordinary('s1', 'algebra', anchors[3]!),
      attempt('s1', 'algebra', '1900-01-01T00:00:00.000Z'),
      attempt('s2', 'algebra', '1900-01-01T00:00:00.000Z'),
    ],
  },
  {
    name: 'a window in 1900 (not a leap year)',
    anchor: '1900-03-01',
    timezone: 'UTC',
    malformed: 6,
    stored: [
      ...ordinary('s1', 'algebra', '1900-03-01'),
      attempt('s1', 'algebra', at('1900-02-28', '23:59:59.999')),
      attempt('s1', 'algebra', at('1900-02-22', '00:00:00.000'), { correct: false }),
      attempt('s1', 'algebra', at('1900-02-21', '23:59:59.999')),
      attempt('s2', 'geometry', at('1899-12-31', '12:00:00.000')),
      attempt('s2', 'geometry', at('1900-02-25', '12:00:00.000')),
      attempt('s2', 'geometry', '1900-03-02T00:00:00.000Z'),
    ],
  },
  {
    name: 'a window at the end of year 9999',
    anchor: '9999-12-31',
    timezone: 'UTC',
    malformed: 6,
    shiftYears: -8000,
    stored: [
      ...ordinary('s1', 'algebra', '9999-12-31'),
      attempt('s1', 'algebra', at('9999-12-31', '23:59:59.999')),
      attempt('s1', 'algebra', at('9999-12-24', '00:00:00.000'), { correct: false }),
      attempt('s2', 'geometry', at('9999-12-10', '12:00:00.000')),
      attempt('s2', 'geometry', at('9999-12-30', '12:00:00.000')),
      attempt('s2', 'geometry', 'infinity'),
      attempt('s2', 'geometry', '10000-01-01T00:00:00.000Z'),
    ],
    forOracle: [
      ...ordinary('s1', 'algebra', '9999-12-31'),
      attempt('s1', 'algebra', at('9999-12-31', '23:59:59.999')),
      attempt('s1', 'algebra', at('9999-12-24', '00:00:00.000'), { correct: false }),
      attempt('s2', 'geometry', at('9999-12-10', '12:00:00.000')),
      attempt('s2', 'geometry', at('9999-12-30', '12:00:00.000')),
    ],
  },
  {
    name: 'duplicate rows',
    anchor: anchors[4]!,
    timezone: 'America/New_York',
    malformed: 9,
    stored: [
      ...Array.from({ length: 5 }, () => attempt('dup', 'algebra', at(anchors[4]!, '15:00:00.000'), { response_time_ms: 700 })),
      ...Array.from({ length: 2 }, () => attempt('dup', 'algebra', at(plusDays(anchors[4]!, -16), '15:00:00.000'), { correct: false })),
      attempt('dup', 'algebra', at(anchors[4]!, '15:00:00.000'), { correct: false, response_time_ms: 701 }),
      attempt('dup', 'algebra', at(anchors[4]!, '15:00:00.000'), { correct: null, response_time_ms: null, hint_used: null }),
      ...ordinary('dup', 'algebra', anchors[4]!),
    ],
  },
  {
    name: 'huge ids (10 kB student_id and topic strings)',
    anchor: anchors[5]!,
    timezone: 'UTC',
    malformed: 8,
    stored: [
      ...ordinary('x'.repeat(10_000), 'algebra', anchors[5]!),
      ...ordinary('s1', 'T'.repeat(10_240), anchors[5]!),
      ...ordinary('€'.repeat(3_500), 'ü'.repeat(5_000), anchors[5]!),
      attempt('s1', 'algebra', at(anchors[5]!)),
      attempt('ab'.repeat(5_000), 'ab'.repeat(5_000), at(anchors[5]!)),
    ],
  },
  {
    name: 'quotes, backslashes, newlines, emoji and other unicode in ids',
    anchor: anchors[6]!,
    timezone: 'Asia/Kolkata',
    malformed: weirdIds.length * 2,
    stored: weirdIds.flatMap((id, i) => [
      attempt(id, 'algebra', at(anchors[6]!, `1${i % 10}:00:00.000`)),
      attempt(`student-${i}`, id, at(plusDays(anchors[6]!, -1), '18:29:59.999'), { correct: i % 2 === 0 }),
    ]),
  },
  {
    name: 'a uuid student_id column',
    anchor: anchors[7]!,
    timezone: 'UTC',
    studentType: 'uuid',
    malformed: 3,
    stored: [
      ...ordinary(uuidA, 'algebra', anchors[7]!),
      attempt(uuidA.toUpperCase(), 'algebra', at(anchors[7]!)),
      attempt(`{${uuidA}}`, 'algebra', at(anchors[7]!)),
      ...ordinary(uuidB, 'geometry', anchors[7]!),
      attempt(null, 'algebra', at(anchors[7]!)),
    ],
    forOracle: [
      ...ordinary(uuidA, 'algebra', anchors[7]!),
      attempt(uuidA, 'algebra', at(anchors[7]!)),
      attempt(uuidA, 'algebra', at(anchors[7]!)),
      ...ordinary(uuidB, 'geometry', anchors[7]!),
    ],
  },
  {
    name: 'a bigint student_id column',
    anchor: anchors[8]!,
    timezone: 'UTC',
    studentType: 'bigint',
    malformed: 6,
    stored: [
      ...ordinary('0', 'algebra', anchors[8]!),
      ...ordinary('-1', 'algebra', anchors[8]!),
      attempt('9223372036854775807', 'algebra', at(anchors[8]!)),
      attempt('-9223372036854775808', 'algebra', at(anchors[8]!)),
      attempt('007', 'algebra', at(anchors[8]!)),
      attempt(null, 'algebra', at(anchors[8]!)),
    ],
    forOracle: [
      ...ordinary('0', 'algebra', anchors[8]!),
      ...ordinary('-1', 'algebra', anchors[8]!),
      attempt('9223372036854775807', 'algebra', at(anchors[8]!)),
      attempt('-9223372036854775808', 'algebra', at(anchors[8]!)),
      attempt('7', 'algebra', at(anchors[8]!)),
    ],
  },
  {
    name: 'NULL completed_at (a source without NOT NULL)',
    anchor: anchors[9]!,
    timezone: 'UTC',
    nullableCompletedAt: true,
    malformed: 2,
    stored: [
      ...ordinary('s1', 'algebra', anchors[9]!),
      attempt('s1', 'algebra', null as unknown as string),
      attempt('s2', 'algebra', null as unknown as string),
    ],
    forOracle: ordinary('s1', 'algebra', anchors[9]!),
  },
];

const since = (c: Case) => plusDays(c.anchor, -7);
const tableOf = (c: Case) => `bad_${cases.indexOf(c)}`;

/** The oracle's rows for a case (shifted into the oracle's years and back when needed). */
function expectedRows(c: Case): string[] {
  const shift = c.shiftYears ?? 0;
  const moveYear = (text: string, by: number) => text.replace(/^(\d{4})/, (y) => String(Number(y) + by).padStart(4, '0'));
  const input = (c.forOracle ?? c.stored).map((a) => ({ ...a, completed_at: moveYear(a.completed_at, shift) }));
  const rows = oracle(input, {
    since: moveYear(since(c), shift),
    anchor: moveYear(c.anchor, shift),
    timezone: c.timezone,
    includeTheta: false,
    improvementMode: 'accuracy',
  });
  const back = rows.map((r): OracleRow => ({ ...r, date: moveYear(r.date, -shift), last_seen_at: moveYear(r.last_seen_at, -shift) }));
  return sortRows(back).map(rowText);
}

async function createCaseTable(db: Queryable, c: Case, table = tableOf(c)): Promise<void> {
  await db.query(
    raw(`create table ${table} (student_id ${c.studentType ?? 'text'}, topic_id text, completed_at timestamptz ${c.nullableCompletedAt ? '' : 'not null'},
                            correct boolean, response_time_ms integer, hint_used boolean)`),
  );
  await db.query(
    sql`insert into ${raw(table)} (student_id, topic_id, completed_at, correct, response_time_ms, hint_used)
     select s::${raw(c.studentType ?? 'text')}, t, c::timestamptz, k, r, h
     from unnest(${c.stored.map((a) => a.student_id)}::text[], ${c.stored.map((a) => a.topic_id)}::text[], ${c.stored.map((a) => a.completed_at)}::text[], ${c.stored.map((a) => a.correct)}::boolean[], ${c.stored.map((a) => a.response_time_ms)}::int[], ${c.stored.map((a) => a.hint_used)}::boolean[]) as u(s, t, c, k, r, h)`,
  );
  await db.query(raw(`create index on ${table} (completed_at)`));
  if ((c.studentType ?? 'text') === 'text') {
    // The ids went in verbatim (so the comparison with the oracle means something).
    const back = await db.query<{ s: string | null; t: string | null }>(raw(`select student_id as s, topic_id as t from ${table}`));
    const key = (s: string | null, t: string | null) => JSON.stringify([s, t]);
    expect(back.rows.map((r) => key(r.s, r.t)).sort()).toEqual(c.stored.map((a) => key(a.student_id, a.topic_id)).sort());
  }
}

const tally = { cases: 0, malformedRows: 0, runs: 0 };
afterAll(() => console.log(`[bad data report] ${JSON.stringify({ ...tally, casesPerBackend: cases.length })}`));

const backends = await allBackends('hardening_bad_data');

describe.each(backends)('malformed data gets a defined behaviour ($name)', (backend) => {
  beforeAll(async () => {
    expect((await runMain(['migrate'], { DATABASE_URL: backend.url })).code).toBe(0);
    await withDb(backend, async (db) => {
      for (const c of cases) await createCaseTable(db, c);
    });
  });

  test.each(cases.map((c) => [c.name, c] as const))('%s: the run succeeds and equals the oracle', async (_name, c) => {
    // Each case starts from an empty table: the cases cut days in different zones, and one table
    // holds days of one definition only (a run in another zone is refused).
    await withDb(backend, (db) => db.query(sql`truncate features_topic_daily`));
    // The cases' days lie in the future (apart from any real data): say it is meant.
    const run = await runMain(['--date', c.anchor, '--allow-future'], {
      DATABASE_URL: backend.url,
      AGG_SOURCE: tableOf(c),
      AGG_LOOKBACK_DAYS: '7',
      AGG_TIMEZONE: c.timezone,
    });
    tally.runs++;
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).not.toMatch(/\[(ERROR|WARN)/);
    if (c.expectLog) expect(run.stderr).toMatch(c.expectLog);
    else expect(run.stderr).toMatch(/\[INFO\] Summary: processed=\d+, failed=0/);
    const expected = expectedRows(c);
    const actual = await withDb(backend, async (db) => sortRows(await readRows(db, { since: since(c), anchor: c.anchor })).map(rowText));
    expect(actual).toEqual(expected);
    if (!c.expectLog) expect(expected.length).toBeGreaterThan(0);
    tally.cases++;
    tally.malformedRows += c.malformed;
  });
});

// ---------------------------------------------------------------------------------------------
// A combination whose key is too big for the primary-key index (an incompressible id over
// ~2.7 kB) cannot be stored ("index row size … exceeds btree version 4 maximum 2704",
// SQLSTATE 54000). As SPEC §7 wants, that fails its combination only, on its own [ERROR] line,
// and all others are written (it once failed the whole run).

const oversized = await serverBackend('hardening_oversized_key');
describe.runIf(oversized)('an id too big for the index (server)', () => {
  test('fails only its own combination; the others are written', async () => {
    const backend = oversized!;
    expect((await runMain(['migrate'], { DATABASE_URL: backend.url })).code).toBe(0);
    const anchor = anchors[0]!;
    // 3 000 hex digits that do not compress: about 3 kB in the index.
    const incompressible = Array.from({ length: 47 }, (_, i) => createHash('sha256').update(String(i)).digest('hex')).join('');
    const stored = [...ordinary('s1', 'algebra', anchor), ...ordinary(incompressible, 'algebra', anchor)];
    await withDb(backend, (db) => createCaseTable(db, { name: 'oversized', anchor, timezone: 'UTC', stored, malformed: 4 }, 'oversized'));
    const run = await runMain(['--date', anchor, '--allow-future'], {
      DATABASE_URL: backend.url,
      AGG_SOURCE: 'oversized',
      AGG_LOOKBACK_DAYS: '7',
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^\[ERROR\] user=[0-9a-f]+ topic=algebra date=\d{4}-\d{2}-\d{2} error=/m);
    const rows = await withDb(backend, (db) => readRows(db));
    expect(rows.map((r) => r.user_id)).toContain('s1');
  });
});

// ---------------------------------------------------------------------------------------------
// The password never appears in any output, whatever fails.

const server = await serverBackend('hardening_password');

/** The password and every piece of it of 4+ characters between URL delimiters (a partial leak is a leak). */
function secretsOf(password: string): string[] {
  const pieces = password.split(/[@/#?:%\s]/).filter((p) => p.length >= 4);
  return [...new Set([password, encodeURIComponent(password), ...pieces])];
}

interface UrlCase {
  readonly what: string;
  readonly url: (serverUrl: URL | undefined) => string | undefined;
  readonly password: string;
  readonly code: number;
}

const urlCases: UrlCase[] = [
  { what: 'unreachable port', url: () => 'postgres://svc:Pw-Unreach-0001@127.0.0.1:1/db', password: 'Pw-Unreach-0001', code: 4 },
  { what: 'unknown host', url: () => 'postgresql://svc:Pw-Host-0002@no-such-host.invalid:5432/db', password: 'Pw-Host-0002', code: 4 },
  { what: 'percent-encoded @ and /', url: () => 'postgres://svc:Pw%40Enc%2F0003@127.0.0.1:1/db', password: 'Pw@Enc/0003', code: 4 },
  {
    what: 'password as a URL parameter',
    url: () => 'postgres://svc@127.0.0.1:1/db?password=Pw-Param-0004',
    password: 'Pw-Param-0004',
    code: 4,
  },
  { what: 'space in the password', url: () => 'postgres://svc:Pw Space-0005@127.0.0.1:1/db', password: 'Pw Space-0005', code: 4 },
  {
    what: 'SQLAlchemy driver suffix',
    url: () => 'postgresql+psycopg2://svc:Pw-Alchemy-0006@127.0.0.1:1/db',
    password: 'Pw-Alchemy-0006',
    code: 4,
  },
  { what: 'unsupported scheme', url: () => 'mysql://svc:Pw-Scheme-0007@127.0.0.1/db', password: 'Pw-Scheme-0007', code: 2 },
  { what: 'port out of range', url: () => 'postgres://svc:Pw-Port-0008@127.0.0.1:99999/db', password: 'Pw-Port-0008', code: 2 },
  { what: 'no host', url: () => 'postgres://svc:Pw-NoHost-0009@/db', password: 'Pw-NoHost-0009', code: 2 },
  { what: 'unclosed IPv6 bracket', url: () => 'postgres://svc:Pw-Bracket-0010@[::1:5432/db', password: 'Pw-Bracket-0010', code: 2 },
  {
    what: 'database does not exist',
    url: (s) => s && `postgres://${s.username}:Pw-NoDb-0011@${s.host}/afd_no_such_database`,
    password: 'Pw-NoDb-0011',
    code: 2,
  },
  {
    what: 'role does not exist',
    url: (s) => s && `postgres://afd_no_such_role:Pw-NoRole-0012@${s.host}${s.pathname}`,
    password: 'Pw-NoRole-0012',
    code: 2,
  },
  {
    what: 'a run that fails after connecting (schema not migrated)',
    url: (s) => s && `postgres://${s.username}:Pw-Unmigrated-0013@${s.host}${s.pathname}`,
    password: 'Pw-Unmigrated-0013',
    code: 2,
  },
];

/** An unencoded URL delimiter in the password (it once leaked the password, or the part after the delimiter). */
const leakingUrlCases: UrlCase[] = [
  { what: 'unencoded @ in the password', url: () => 'postgres://svc:Pw@Raw-0101@127.0.0.1:1/db', password: 'Pw@Raw-0101', code: 4 },
  { what: 'unencoded / in the password', url: () => 'postgres://svc:Pw/Slash-0102@127.0.0.1:1/db', password: 'Pw/Slash-0102', code: 2 },
  { what: 'unencoded # in the password', url: () => 'postgres://svc:Pw#Hash-0103@127.0.0.1:1/db', password: 'Pw#Hash-0103', code: 2 },
  { what: 'unencoded ? in the password', url: () => 'postgres://svc:Pw?Query-0104@127.0.0.1:1/db', password: 'Pw?Query-0104', code: 2 },
];

describe('no output ever contains the password', () => {
  const serverUrl = server ? new URL(server.url) : undefined;
  const check = async (c: UrlCase) => {
    const url = c.url(serverUrl);
    if (url === undefined) return;
    const runs: [string, string[]][] = [
      ['text', ['--date', '2025-11-01']],
      ['text', ['--dry-run']],
      ['json', ['--date', '2025-11-01']],
    ];
    if (!c.what.includes('after connecting')) runs.push(['text', ['migrate']]); // migrate would succeed there
    {
      // The first command as a process of its own (all it prints, Node's own output included), the others in this process.
      for (const [index, [format, args]] of runs.entries()) {
        const result = await (index === 0 ? runCli : runMain)(args, {
          DATABASE_URL: url,
          LOG_FORMAT: format,
          AGG_CONNECT_ATTEMPTS: '1',
          AGG_CONNECT_TIMEOUT_MS: '2000',
        });
        const output = result.stdout + result.stderr;
        for (const secret of secretsOf(c.password)) expect(output, `${format} ${args.join(' ')}`).not.toContain(secret);
        expect(result.code, output).toBe(c.code);
        expect(output).not.toMatch(/\n\s+at /);
      }
    }
  };
  test.each(urlCases.map((c) => [c.what, c] as const))('%s', async (_what, c) => {
    if (c.url(serverUrl) === undefined) return;
    await check(c);
  });
  test.each(leakingUrlCases.map((c) => [c.what, c] as const))('%s', async (_what, c) => {
    await check(c);
  });
});
