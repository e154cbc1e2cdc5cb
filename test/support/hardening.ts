/**
 * Shared helpers of the hardening tests: the CLI as a killable subprocess, a plain `pg` client
 * for the test's own queries (its own application_name, so it is never mistaken for the job),
 * attempts generated inside PostgreSQL, and rows grouped per day for the atomicity checks.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import pg from 'pg';
import { cliPath } from './cli.js';
import type { OracleAttempt, OracleRow } from '../oracle/oracle.js';
import type { Session } from '../../src/database/db.js';
import { raw, sql } from '../../src/sql/tag.js';

/** What the test's own connections call themselves in pg_stat_activity. */
export const testApplicationName = 'afd-hardening-test';

/** Anything that runs a query: a session of the job's own Database, or a pg.Client through sessionOf. */
export type Queryable = Session;

/** A plain client on a server database (not the job's code path). */
export async function serverClient(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: testApplicationName });
  await client.connect();
  return client;
}

/** Runs `fn` on a fresh session of `backend`, closed afterwards (for PGlite: the directory lock is released). */
export { withSession as withDb } from './backends.js';

export interface Spawned {
  readonly child: ChildProcess;
  readonly pid: number;
  /** stderr received so far. */
  stderr(): string;
  /** Resolves when the process has exited (by itself or by a signal). */
  readonly done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number }>;
}

/** Starts `node dist/cli.js ...args` with exactly `env` (plus PATH), without waiting for it. */
export function spawnCli(args: string[], env: Record<string, string | undefined>): Spawned {
  const started = Date.now();
  const child = spawn(process.execPath, [cliPath, ...args], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, ms: Date.now() - started })),
  );
  return { child, pid: child.pid ?? -1, stderr: () => stderr, done };
}

/**
 * A pause of a random length chosen by the caller: the moment of a random kill. Never for
 * waiting until something happened: that is wait.ts's waitFor, with a deadline.
 */
export function randomPause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * SQL that fills `table` with `rows` synthetic attempts over `days` days from `start` (UTC),
 * deterministic (hashint4 of the row number, the same on PostgreSQL 15 and PGlite), with
 * NULL correct / response times / hints sprinkled in, and an index on completed_at.
 */
export function generateAttemptsSql(
  table: string,
  o: { rows: number; students: number; topics: number; days: number; start: string },
): string {
  return `
create table ${table} (
  student_id text, topic_id text, completed_at timestamptz not null,
  correct boolean, response_time_ms integer, hint_used boolean);
insert into ${table}
select 's' || (abs(hashint4(g)) % ${o.students}),
       't' || (abs(hashint4(g * 7)) % ${o.topics}),
       timestamptz '${o.start} 00:00:00Z' + (abs(hashint4(g * 13)) % (${o.days} * 86400)) * interval '1 second',
       case when hashint4(g * 17) % 10 = 0 then null else hashint4(g * 19) % 3 <> 0 end,
       case when hashint4(g * 23) % 50 = 0 then null else abs(hashint4(g * 29)) % 60000 end,
       case when hashint4(g * 37) % 20 = 0 then null else hashint4(g * 31) % 7 = 0 end
from generate_series(1, ${o.rows}) g;
create index on ${table} (completed_at);
analyze ${table};`;
}

/**
 * SQL deriving `to` from `from` as late data and upstream corrections would: ~5% of the
 * answers flipped (updates on every day), three students' attempts gone on even days (stale
 * rows to delete), and new students on every day (inserts).
 */
export function deriveChangedAttemptsSql(from: string, to: string, o: { days: number; start: string }): string {
  return `
create table ${to} (like ${from});
insert into ${to}
select student_id, topic_id, completed_at,
       case when abs(hashint4(extract(epoch from completed_at)::int)) % 20 = 0 then not correct else correct end,
       response_time_ms, hint_used
from ${from}
where not (student_id in ('s1', 's2', 's3') and extract(day from completed_at)::int % 2 = 0);
insert into ${to}
select 'late-' || (g % 7), 't' || (g % 3),
       timestamptz '${o.start} 00:00:00Z' + (g % ${o.days}) * interval '1 day' + (g % 997) * interval '1 minute',
       g % 3 = 0, 1000 + g, g % 5 = 0
from generate_series(1, ${o.days * 20}) g;
create index on ${to} (completed_at);
analyze ${to};`;
}

/** The attempts of a source, in the oracle's shape (ids as text, instants as UTC ISO text). */
export async function readAttempts(db: Queryable, table: string): Promise<OracleAttempt[]> {
  const result = await db.query<OracleAttempt>(
    raw(`select student_id::text as student_id, topic_id::text as topic_id,
            to_char(completed_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as completed_at,
            correct, response_time_ms, hint_used
     from ${table}`),
  );
  return result.rows;
}

/** The stored rows (optionally only days `since`..`anchor`), in the oracle's shape. */
export async function readRows(db: Queryable, range?: { since: string; anchor: string }): Promise<OracleRow[]> {
  const result = await db.query<OracleRow>(
    sql`select user_id, topic_id, date::text as date, attempts, correct, avg_time_ms, rt_median, hints,
            to_char(last_seen_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as last_seen_at,
            theta_estimate::text as theta_estimate, theta_sd::text as theta_sd, improvement::text as improvement
     from features_topic_daily
     where (${range?.since ?? null}::date is null or date between ${range?.since ?? null}::date and ${range?.anchor ?? null}::date)`,
  );
  return result.rows;
}

/** Every column of the stored rows outside `since`..`anchor`, computed_at included, as one comparable text. */
export async function snapshotOutside(db: Queryable, range: { since: string; anchor: string }): Promise<string[]> {
  const result = await db.query<{ r: string }>(
    sql`select (f.*)::text as r from features_topic_daily f
     where f.date not between ${range.since}::date and ${range.anchor}::date
     order by f.user_id collate "C", f.topic_id collate "C", f.date`,
  );
  return result.rows.map((row) => row.r);
}

/** Stable text of one row (key order fixed, so it compares across sources). */
export function rowText(row: OracleRow): string {
  return JSON.stringify([
    row.user_id,
    row.topic_id,
    row.date,
    row.attempts,
    row.correct,
    row.avg_time_ms,
    row.rt_median,
    row.hints,
    row.last_seen_at,
    row.theta_estimate,
    row.theta_sd,
    row.improvement,
  ]);
}

/** Rows grouped per day, each day as the sorted list of its rows' texts joined. */
export function byDay(rows: readonly OracleRow[], days: readonly string[]): Map<string, string> {
  const grouped = new Map<string, string[]>(days.map((d) => [d, []]));
  for (const row of rows) {
    const list = grouped.get(row.date);
    if (list === undefined) throw new Error(`row outside the expected days: ${rowText(row)}`);
    list.push(rowText(row));
  }
  return new Map([...grouped].map(([day, list]) => [day, list.sort().join('\n')]));
}

/** The calendar days from `since` to `anchor`, both included (UTC arithmetic on plain dates). */
export function daysOf(since: string, anchor: string): string[] {
  const out: string[] = [];
  for (let t = Date.parse(`${since}T00:00:00Z`); t <= Date.parse(`${anchor}T00:00:00Z`); t += 86_400_000) {
    out.push(new Date(t).toISOString().slice(0, 10));
  }
  return out;
}

/** Sorts rows by key the same way on both sides of a comparison. */
export function sortRows(rows: readonly OracleRow[]): OracleRow[] {
  return [...rows].sort((a, b) => (rowText(a) < rowText(b) ? -1 : rowText(a) > rowText(b) ? 1 : 0));
}
