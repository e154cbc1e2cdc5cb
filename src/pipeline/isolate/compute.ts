/**
 * Fills agg_computed for the window, isolating failures that come from some rows only (a
 * source view that raises on one malformed row, a value out of range): the normal path is one
 * statement (CREATE TABLE … AS); when it fails, the table is created empty and filled by
 * narrowing, by student (students.ts) and, when some attempts cannot even be attributed to a
 * student, by day, topic and instant first (unattributable.ts): O(k · log n) statements for k
 * bad rows.
 */
import type { Config } from '../../config/index.js';
import type { Session } from '../../database/db.js';
import { RunFailedError, messageOf } from '../../errors.js';
import { excludedSource, listStudents } from '../../sql/scope.js';
import { insertComputed } from '../../sql/staging.js';
import type { Work } from '../../work.js';
import { startNarrowing, type FailedCombination } from './narrowing.js';
import { narrowStudents } from './students.js';
import { failUnattributable, findUnattributable, type Unattributable } from './unattributable.js';

/**
 * Creates agg_computed with the window's combinations (`work`) and returns the combinations
 * that could not be computed. Runs inside the caller's transaction, using savepoints.
 */
export async function computeIsolated(session: Session, config: Config, work: Work, checkpoint: () => void): Promise<FailedCombination[]> {
  const n = startNarrowing(session, config, work, checkpoint);
  if ((await n.attempt(work.backend.staging.stageComputed(work))) === undefined) return [];
  // A temporary staging table is created empty for the narrowing; the distributed one exists.
  const create = work.backend.staging.createComputedEmpty(work);
  if (create !== undefined) await session.query(create);

  const failed: FailedCombination[] = [];
  const fail = (combination: FailedCombination) => {
    failed.push(combination);
    n.checkBudget(failed.length, combination.error);
  };
  // The statements below read `source`: the window's, or, when some attempts cannot be
  // attributed to a student, the window's without them.
  let source = work.source;
  let unattributable: Unattributable | undefined;
  let students = await n.list<{ user_id: string }>(listStudents(work));
  if (!Array.isArray(students)) {
    // Some rows' students cannot be read: find those rows by day and topic, leave them out,
    // and fail every combination that would have read them (below).
    unattributable = await findUnattributable(n, students.error);
    source = excludedSource(work.source, unattributable);
    students = await n.list<{ user_id: string }>(listStudents({ ...work, source }));
    if (!Array.isArray(students)) {
      throw new RunFailedError(
        `the source ${config.source.sql} is broken wholesale: its student_id cannot be read (${messageOf(students.error)}), so the failing rows cannot be attributed to any student; nothing of ${work.since}..${work.anchor} was written. Fix the source and re-run`,
        { cause: students.error },
      );
    }
    // Without the unattributable rows, the rest of the window may compute in one statement.
    if ((await n.attempt(insertComputed({ ...work, source }))) === undefined) {
      await failUnattributable(n, unattributable, failed, fail);
      return failed;
    }
  }
  await narrowStudents(
    n,
    source,
    students.map((r) => r.user_id),
    fail,
  );
  if (unattributable) await failUnattributable(n, unattributable, failed, fail);
  return failed;
}
