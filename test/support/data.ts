/** Helpers that load attempts and read features_topic_daily in the oracle's shapes. */
import { ensureAttemptTable } from '../../src/source/attempt-table.js';
import type { Session } from '../../src/database/db.js';
import { parseQualifiedName } from '../../src/sql/identifiers.js';
import { migrate } from '../../src/database/migrate.js';
import type { OracleAttempt, OracleRow } from '../oracle/oracle.js';
import { raw, sql } from '../../src/sql/tag.js';

/** One attempt without a hint, for hand-written fixtures: student, topic, instant, response time, correctness. */
export function attempt(student: string, topic: string, at: string, rt: number, correct = true): OracleAttempt {
  return { student_id: student, topic_id: topic, completed_at: at, correct, response_time_ms: rt, hint_used: false };
}

/** Migrates and creates an empty attempt table. */
export async function prepareSchema(session: Session): Promise<void> {
  await migrate(session);
  await ensureAttemptTable(session, parseQualifiedName('attempt', 'table'));
}

/** Replaces the attempts with `attempts` (one statement, arrays as parameters). */
export async function loadAttempts(session: Session, attempts: readonly OracleAttempt[], table = 'attempt'): Promise<void> {
  await session.query(raw(`truncate ${table}`));
  await session.query(
    sql`insert into ${raw(table)} (student_id, topic_id, completed_at, correct, response_time_ms, hint_used)
     select * from unnest(${attempts.map((a) => a.student_id)}::text[], ${attempts.map((a) => a.topic_id)}::text[], ${attempts.map((a) => a.completed_at)}::timestamptz[], ${attempts.map((a) => a.correct)}::boolean[], ${attempts.map((a) => a.response_time_ms)}::int[], ${attempts.map((a) => a.hint_used)}::boolean[])`,
  );
}

/**
 * Appends a generated history large enough that a run takes a while: `students` students on
 * every other day of the 35 days up to 2025-11-01, one of 7 topics a day, `perDay` attempts a
 * minute apart (no NULLs), for tests that kill or interrupt a run.
 */
export async function insertBusyAttempts(session: Session, students: number, perDay: number): Promise<void> {
  await session.query(
    sql`insert into attempt
     select 'u' || s, 't' || (s + d) % 7, date '2025-11-01' - d + interval '9 hours' + i * interval '1 minute',
            (s + i) % 3 > 0, 1000 + (s * i) % 5000, i % 9 = 0
     from generate_series(1, ${students}::int) s, generate_series(0, 34) d, generate_series(1, ${perDay}::int) i
     where (s + d) % 2 = 0`,
  );
}

/** The stored rows (optionally only those from `since` to `anchor`), as the oracle prints them. */
export async function readFeatures(session: Session, range?: { since: string; anchor: string }): Promise<OracleRow[]> {
  const result = await session.query<OracleRow>(
    sql`select user_id, topic_id, date::text as date, attempts, correct, avg_time_ms, rt_median, hints,
            to_char(last_seen_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as last_seen_at,
            theta_estimate::text as theta_estimate, theta_sd::text as theta_sd, improvement::text as improvement
     from features_topic_daily
     where (${range?.since ?? null}::date is null or date between ${range?.since ?? null}::date and ${range?.anchor ?? null}::date)
     order by user_id collate "C", topic_id collate "C", date`,
  );
  return result.rows;
}
