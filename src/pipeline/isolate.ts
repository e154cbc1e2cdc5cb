/**
 * Fills agg_computed for the window, isolating failures that come from some rows only (a
 * source view that raises on one malformed row, a value out of range): the computation is
 * retried on halves of the window's students until the failing students are found, then per
 * topic and per day, so only the combinations the bad rows touch fail. The normal path is one
 * statement (CREATE TABLE … AS); the narrowing creates the table empty and fills it in
 * O(k · log n) statements for k bad students.
 */
import type { Config } from '../config.js';
import type { Session } from '../db.js';
import { RunFailedError, messageOf, sqlState } from '../errors.js';
import { listStudentCombinations, listStudentDays, listStudents, scopedSource, type StudentDays } from '../sql/scope.js';
import type { Sql } from '../sql/tag.js';
import { createComputedTable, insertComputed, stageComputed } from '../sql/write.js';
import { inSavepoint } from '../transaction.js';
import type { Work } from '../work.js';

export interface FailedCombination {
  readonly userId: string;
  readonly topicId: string;
  readonly date: string;
  readonly error: string;
}

/** Errors that come from the data of some rows, as opposed to the query, the server or time. */
const rowErrorClasses = ['21', '22', '23', '2F', '38', '39', '44', 'P0'];

/** True for an error that a smaller set of rows might not raise. */
export function isRowError(err: unknown): boolean {
  const state = sqlState(err);
  return state !== undefined && rowErrorClasses.includes(state.slice(0, 2));
}

/** A part of the window's work: some days, some students, maybe some topics. */
interface Part {
  readonly since: string;
  readonly anchor: string;
  readonly users: readonly string[];
  readonly topics: readonly string[] | null;
}

/**
 * Runs `statement` in a savepoint; a row error (isRowError) comes back as the value, after the
 * savepoint is rolled back; any other error is thrown. Undefined when it succeeded.
 */
export async function attemptRows<T>(
  session: Session,
  savepoint: string,
  statement: () => Promise<T>,
  isExpected: (err: unknown) => boolean = isRowError,
): Promise<{ ok: T } | { error: unknown }> {
  try {
    return { ok: await inSavepoint(session, savepoint, statement) };
  } catch (err) {
    if (!isExpected(err)) throw err;
    return { error: err };
  }
}

/**
 * Creates agg_computed with the window's combinations (`work`) and returns the combinations
 * that could not be computed. Runs inside the caller's transaction, using savepoints.
 */
export async function computeIsolated(session: Session, config: Config, work: Work, checkpoint: () => void): Promise<FailedCombination[]> {
  const attempt = async (statement: Sql): Promise<unknown> => {
    checkpoint();
    const result = await attemptRows(session, 'agg_scope', () => session.query(statement));
    return 'error' in result ? result.error : undefined;
  };
  /** Computes a part of the window into agg_computed: the same statement over a narrowed source. */
  const tryScope = (part: Part) =>
    attempt(insertComputed({ ...work, since: part.since, anchor: part.anchor, source: scopedSource(work.source, part) }));

  const whole = await attempt(stageComputed(work));
  if (whole === undefined) return [];
  await session.query(createComputedTable(work));

  const window = work;
  const failed: FailedCombination[] = [];
  const deadline = Date.now() + config.isolation.budgetMs;
  /** Past the budget the source is broken wholesale: stop narrowing, write nothing. */
  let studentCount = 0;
  const checkBudget = (failingAtLeast: number, error: unknown) => {
    const overCount = failingAtLeast > config.isolation.maxFailed;
    if (!overCount && Date.now() <= deadline) return;
    const why = overCount
      ? failingAtLeast === Number.POSITIVE_INFINITY
        ? `every one of the ${probes} students it probed (spread over the window's ${studentCount}) fails, so most of them do`
        : `more than ${config.isolation.maxFailed} combinations fail (AGG_MAX_FAILED)`
      : `narrowing the failures down took longer than ${config.isolation.budgetMs} ms (AGG_ISOLATION_BUDGET_MS)`;
    throw new RunFailedError(
      `the source ${config.source.sql} is broken wholesale: ${why}, e.g. ${messageOf(error)}; nothing of ${window.since}..${window.anchor} was written. Fix the source (or raise the bound) and re-run`,
      { cause: error },
    );
  };
  /** Runs a listing statement in a savepoint; a row error comes back as the value. */
  const list = async <T>(statement: Sql): Promise<T[] | { error: unknown }> => {
    checkpoint();
    const result = await attemptRows(session, 'agg_list', async () => (await session.query<T & object>(statement)).rows);
    return 'error' in result ? { error: result.error } : result.ok;
  };
  const studentDays = (user: string, since: string, anchor: string): StudentDays => ({
    source: work.source,
    timezone: work.timezone,
    since,
    anchor,
    user,
  });

  const students = await list<{ user_id: string }>(listStudents(work));
  if (!Array.isArray(students)) {
    // The students themselves cannot be read: no row can be attributed to anyone.
    throw new RunFailedError(
      `the source ${config.source.sql} is broken wholesale: its student_id cannot be read (${messageOf(students.error)}), so the failing rows cannot be attributed to any student; nothing of ${window.since}..${window.anchor} was written. Fix the source and re-run`,
      { cause: students.error },
    );
  }

  // Halve the students level by level. The failing groups of a level are disjoint, so their
  // number is a lower bound on the failing students, each failing at least one combination:
  // a source where every row raises is recognised after about log2(AGG_MAX_FAILED)
  // levels instead of being narrowed down student by student.
  const everyone = students.map((r) => r.user_id);
  studentCount = everyone.length;
  await refuseWholesale(
    everyone,
    // A probe only: its rows are computed again by the narrowing below.
    (user) =>
      inSavepoint(session, 'agg_probe', () => tryScope({ since: window.since, anchor: window.anchor, users: [user], topics: null }), {
        keep: false,
      }),
    checkBudget,
  );

  const failing: { user: string; error: unknown }[] = [];
  let level: string[][] = [everyone];
  while (level.length > 0) {
    const next: string[][] = [];
    for (const group of level) {
      if (group.length === 0) continue;
      const error = await tryScope({ since: window.since, anchor: window.anchor, users: group, topics: null });
      if (error === undefined) continue;
      if (group.length === 1) failing.push({ user: group[0]!, error });
      else next.push(group.slice(0, group.length >> 1), group.slice(group.length >> 1));
      checkBudget(failing.length + next.length / 2, error);
    }
    level = next;
  }

  const fail = (combination: FailedCombination) => {
    failed.push(combination);
    checkBudget(failed.length, combination.error);
  };
  for (const { user, error: userError } of failing) {
    const days = await list<{ date: string }>(listStudentDays(studentDays(user, window.since, window.anchor)));
    if (!Array.isArray(days)) {
      // Not even the student's days can be read: the student's stored rows of the window stay.
      await failStored(session, { user, since: window.since, anchor: window.anchor, error: messageOf(days.error) }, fail);
      continue;
    }
    const combinations: { topic: string; date: string }[] = [];
    for (const { date } of days) {
      const topics = await list<{ topic_id: string }>(listStudentCombinations(studentDays(user, date, date)));
      if (Array.isArray(topics)) combinations.push(...topics.map((r) => ({ topic: r.topic_id, date })));
      // A topic of that day cannot be read: that student's combinations of that day fail.
      else await failStored(session, { user, since: date, anchor: date, error: messageOf(topics.error) }, fail);
    }
    for (const topic of new Set(combinations.map((c) => c.topic))) {
      const topicError = await tryScope({ since: window.since, anchor: window.anchor, users: [user], topics: [topic] });
      if (topicError === undefined) continue;
      for (const { date } of combinations.filter((c) => c.topic === topic)) {
        const dayError = await tryScope({ since: date, anchor: date, users: [user], topics: [topic] });
        if (dayError !== undefined) fail({ userId: user, topicId: topic, date, error: messageOf(dayError) });
      }
    }
    if (days.length === 0) fail({ userId: user, topicId: '*', date: `${window.since}..${window.anchor}`, error: messageOf(userError) });
  }
  return failed;
}

/** How many students, spread evenly over the window's, are probed before narrowing. */
const probes = 16;

/**
 * Recognises a source that fails for most students in a few statements, before narrowing
 * (each narrowing statement scans the window, about as long as a normal run, and a source
 * where every row raises would need two per student): when all of `probes` students spread
 * evenly over the list fail, the source fails for most of its students (were it at most half
 * of them, 16 failures out of 16 would have odds below 1 in 65,000), and it is broken
 * wholesale. Otherwise the narrowing runs, bounded by the budget.
 */
async function refuseWholesale(
  students: string[],
  probe: (user: string) => Promise<unknown>,
  checkBudget: (failingAtLeast: number, error: unknown) => void,
): Promise<void> {
  if (students.length < probes) return;
  let error: unknown;
  for (let i = 0; i < probes; i++) {
    error = await probe(students[Math.floor(((i + 0.5) * students.length) / probes)]!);
    if (error === undefined) return;
  }
  checkBudget(Number.POSITIVE_INFINITY, error);
}

/**
 * Fails every stored combination of `user` from `since` to `anchor` (left as stored, each
 * reported), or, when none is stored, the student's days as one combination that could not be
 * computed: `failed` then counts exactly what is left unrefreshed.
 */
async function failStored(
  session: Session,
  scope: { user: string; since: string; anchor: string; error: string },
  fail: (combination: FailedCombination) => void,
): Promise<void> {
  const stored = await session.query<{ topic_id: string; date: string }>(
    `select topic_id, date::text as date from features_topic_daily
     where user_id = $1 and date between $2::date and $3::date order by date, topic_id`,
    [scope.user, scope.since, scope.anchor],
  );
  for (const row of stored.rows) fail({ userId: scope.user, topicId: row.topic_id, date: row.date, error: scope.error });
  if (stored.rows.length === 0) {
    const date = scope.since === scope.anchor ? scope.since : `${scope.since}..${scope.anchor}`;
    fail({ userId: scope.user, topicId: '*', date, error: scope.error });
  }
}
