/** Helpers that create and fill student_topic_theta and mirt_ability, and read them back as the oracle takes them. */
import type { Session } from '../../src/database/db.js';
import type { OracleEstimate, OracleMirt } from '../oracle/oracle.js';
import type { ThetaTablesShape } from './theta-arbitraries.js';
import { raw, sql } from '../../src/sql/tag.js';

/** (Re)creates the theta tables in the given shape; mirt_ability is dropped when shape.mirt is undefined. */
export async function createThetaTables(session: Session, shape: ThetaTablesShape): Promise<void> {
  await session.query(sql`drop table if exists student_topic_theta; drop table if exists mirt_ability`);
  await session.query(
    raw(
      `create table student_topic_theta (user_id text, topic_id text, theta ${shape.thetaType}, se ${shape.seType}, updated_at timestamptz)`,
    ),
  );
  if (shape.index) await session.query(sql`create index on student_topic_theta (user_id, topic_id, updated_at)`);
  if (shape.mirt) {
    await session.query(
      raw(`create table mirt_ability (user_id text, theta ${shape.mirt.thetaType}, se ${shape.mirt.seType}, fitted_at timestamptz)`),
    );
    if (shape.index) await session.query(sql`create index on mirt_ability (user_id, fitted_at)`);
  }
}

/** Appends estimates (text values, so NaN and ±Infinity reach numeric and double columns alike). */
export async function insertEstimates(session: Session, estimates: readonly OracleEstimate[]): Promise<void> {
  if (estimates.length === 0) return;
  await session.query(
    sql`insert into student_topic_theta (user_id, topic_id, theta, se, updated_at)
     select u, t, theta::numeric, se::numeric, at
     from unnest(${estimates.map((e) => e.user_id)}::text[], ${estimates.map((e) => e.topic_id)}::text[], ${estimates.map((e) => e.theta)}::text[], ${estimates.map((e) => e.se)}::text[], ${estimates.map((e) => e.updated_at)}::timestamptz[]) as x(u, t, theta, se, at)`,
  );
}

/** Appends mirt_ability rows. */
export async function insertMirt(session: Session, rows: readonly OracleMirt[]): Promise<void> {
  if (rows.length === 0) return;
  await session.query(
    sql`insert into mirt_ability (user_id, theta, se, fitted_at)
     select u, theta::numeric, se::numeric, at
     from unnest(${rows.map((r) => r.user_id)}::text[], ${rows.map((r) => r.theta)}::text[], ${rows.map((r) => r.se)}::text[], ${rows.map((r) => r.fitted_at)}::timestamptz[]) as x(u, theta, se, at)`,
  );
}

const instantText = (column: string) => `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/** The estimates as stored (a double's text is what PostgreSQL prints for it, e.g. 1e-05). */
export async function readEstimates(session: Session): Promise<OracleEstimate[]> {
  const result = await session.query<OracleEstimate>(
    raw(
      `select user_id, topic_id, theta::text as theta, se::text as se, ${instantText('updated_at')} as updated_at from student_topic_theta`,
    ),
  );
  return result.rows;
}

/** mirt_ability as stored, or undefined when the table does not exist. */
export async function readMirt(session: Session): Promise<OracleMirt[] | undefined> {
  const exists = await session.query<{ present: boolean }>(sql`select to_regclass('mirt_ability') is not null as present`);
  if (!exists.rows[0]?.present) return undefined;
  const result = await session.query<OracleMirt>(
    raw(`select user_id, theta::text as theta, se::text as se, ${instantText('fitted_at')} as fitted_at from mirt_ability`),
  );
  return result.rows;
}
