/**
 * Writing a window that held nothing: every staged row is inserted at once (a plain INSERT),
 * and when a row appeared in the meantime (a writer the lock does not exclude) the INSERT is
 * rolled back and the upsert writes the rows as it always did. On both databases, through
 * upsertIsolated, with the statements the run uses.
 */
import { describe, expect, test } from 'vitest';
import type { Session } from '../src/database/db.js';
import { plainServer } from '../src/database/backend.js';
import { upsertIsolated } from '../src/pipeline/upsert.js';
import { inTransaction } from '../src/database/transaction.js';
import { allBackends, withSession } from './support/backends.js';
import { prepareSchema } from './support/data.js';
import { sql } from '../src/sql/tag.js';

const backends = await allBackends('upsert');

const runTimestamp = '2026-03-09T02:00:00.000Z';
const never = () => undefined;
const window = { since: '2026-03-01', anchor: '2026-03-08' };

/** Stages three computed rows in agg_computed, as a run's computation leaves them. */
async function stageThree(session: Session): Promise<void> {
  await session.query(sql`create temporary table agg_computed on commit drop as
    select user_id, topic_id, date, attempts, correct, avg_time_ms, rt_median, hints,
           last_seen_at, theta_estimate, theta_sd, improvement
    from features_topic_daily with no data`);
  await session.query(sql`insert into agg_computed (user_id, topic_id, date, attempts, correct, avg_time_ms, rt_median, hints, improvement)
    values ('s1', 'algebra', '2026-03-08', 4, 3, 1200, 1100, 1, 0.125),
           ('s1', 'geometry', '2026-03-08', 2, 1, 900, 900, 0, null),
           ('s2', 'algebra', '2026-03-08', 5, 5, 700, 650, 2, -0.031)`);
}

interface Stored {
  user_id: string;
  topic_id: string;
  attempts: number;
  correct: number;
  improvement: string | null;
  written_by_run: boolean;
}

async function stored(session: Session): Promise<Stored[]> {
  const { rows } = await session.query<Stored>(
    sql`select user_id, topic_id, attempts, correct, improvement::text as improvement, computed_at = ${runTimestamp}::timestamptz as written_by_run
     from features_topic_daily order by user_id, topic_id`,
  );
  return rows;
}

const computedRows = [
  { user_id: 's1', topic_id: 'algebra', attempts: 4, correct: 3, improvement: '0.125', written_by_run: true },
  { user_id: 's1', topic_id: 'geometry', attempts: 2, correct: 1, improvement: null, written_by_run: true },
  { user_id: 's2', topic_id: 'algebra', attempts: 5, correct: 5, improvement: '-0.031', written_by_run: true },
];

describe.each(backends)('writing a window that held nothing ($name)', (backend) => {
  test('every row is inserted at once', async () => {
    await withSession(backend, async (session) => {
      await prepareSchema(session);
      await session.query(sql`truncate features_topic_daily`);
      const counts = await inTransaction(session, async () => {
        await stageThree(session);
        return upsertIsolated(
          session,
          { runTimestamp, includeTheta: false, staging: plainServer.staging, window, nothingStored: true },
          never,
        );
      });
      expect(counts).toEqual({ inserted: 3, updated: 0, failures: [] });
      expect(await stored(session)).toEqual(computedRows);
    });
  });

  test('a row that appeared in between: the INSERT is rolled back and the upsert writes every row', async () => {
    await withSession(backend, async (session) => {
      await prepareSchema(session);
      await session.query(sql`truncate features_topic_daily`);
      // Stored after the shrink guard found the window empty: one row with other values, one
      // equal to the computed row (which the upsert then leaves as it is).
      await session.query(
        sql`insert into features_topic_daily (user_id, topic_id, date, attempts, correct, avg_time_ms, rt_median, hints, improvement, computed_at)
        values ('s1', 'algebra', '2026-03-08', 1, 0, 10, 10, 0, null, '2026-01-01'),
               ('s2', 'algebra', '2026-03-08', 5, 5, 700, 650, 2, -0.031, ${runTimestamp})`,
      );
      const counts = await inTransaction(session, async () => {
        await stageThree(session);
        return upsertIsolated(
          session,
          { runTimestamp, includeTheta: false, staging: plainServer.staging, window, nothingStored: true },
          never,
        );
      });
      expect(counts).toEqual({ inserted: 1, updated: 1, failures: [] });
      expect(await stored(session)).toEqual(computedRows);
    });
  });
});
