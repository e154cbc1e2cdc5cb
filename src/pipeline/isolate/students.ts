/**
 * Narrowing by student: the computation is retried on halves of the window's students until
 * the failing students are found, then per topic and per day, so only the combinations the
 * bad rows touch fail. The source is replaced by a subquery filtered on students (and topics),
 * a scan qual, so a row that raises outside the scope is never computed.
 */
import { messageOf } from '../../errors.js';
import { listStudentCombinations, listStudentDays, scopedSource, type Scope } from '../../sql/scope.js';
import { storedCombinationsOf } from '../../sql/narrowing.js';
import type { Sql } from '../../sql/tag.js';
import { insertComputed } from '../../sql/staging.js';
import { inSavepoint } from '../../database/transaction.js';
import { probes, type FailedCombination, type Narrowing } from './narrowing.js';

/** A part of the window's work: some days, some students, maybe some topics. */
interface Part extends Scope {
  readonly since: string;
  readonly anchor: string;
}

/** Computes a part of the window into agg_computed: the same statement over a narrowed source. */
function tryPart(n: Narrowing, source: Sql, part: Part): Promise<unknown> {
  return n.attempt(insertComputed({ ...n.work, since: part.since, anchor: part.anchor, source: scopedSource(source, part) }));
}

/**
 * Computes what it can of `students` (read from `source`: the window's, or the window's without
 * the attempts no student can be given) and reports every combination it cannot to `fail`.
 */
export async function narrowStudents(
  n: Narrowing,
  source: Sql,
  students: string[],
  fail: (combination: FailedCombination) => void,
): Promise<void> {
  const { since, anchor } = n.work;
  n.studentCount = students.length;
  await refuseWholesale(
    students,
    // A probe only: its rows are computed again by the narrowing below.
    (user) =>
      inSavepoint(n.session, 'agg_probe', () => tryPart(n, source, { since, anchor, users: [user], topics: null }), { keep: false }),
    (failingAtLeast, error) => n.checkBudget(failingAtLeast, error),
  );
  for (const { user, error } of await failingStudents(n, source, students)) await narrowStudent(n, source, { user, error }, fail);
}

/**
 * Halves the students level by level. The failing groups of a level are disjoint, so their
 * number is a lower bound on the failing students, each failing at least one combination: a
 * source where every row raises is recognised after about log2(AGG_MAX_FAILED) levels instead
 * of being narrowed down student by student.
 */
async function failingStudents(n: Narrowing, source: Sql, everyone: string[]): Promise<{ user: string; error: unknown }[]> {
  const { since, anchor } = n.work;
  const failing: { user: string; error: unknown }[] = [];
  let level: string[][] = [everyone];
  while (level.length > 0) {
    const next: string[][] = [];
    for (const group of level) {
      if (group.length === 0) continue;
      const error = await tryPart(n, source, { since, anchor, users: group, topics: null });
      if (error === undefined) continue;
      if (group.length === 1) failing.push({ user: group[0]!, error });
      else next.push(group.slice(0, group.length >> 1), group.slice(group.length >> 1));
      n.checkBudget(failing.length + next.length / 2, error);
    }
    level = next;
  }
  return failing;
}

/** Narrows one failing student's window down to its (topic, day) combinations that fail. */
async function narrowStudent(
  n: Narrowing,
  source: Sql,
  failing: { user: string; error: unknown },
  fail: (combination: FailedCombination) => void,
): Promise<void> {
  const { user } = failing;
  const { since, anchor, timezone } = n.work;
  const days = await n.list<{ date: string }>(listStudentDays({ source, timezone, since, anchor, user }));
  if (!Array.isArray(days)) {
    // Not even the student's days can be read: the student's stored rows of the window stay.
    await failStored(n, { user, since, anchor, error: messageOf(days.error) }, fail);
    return;
  }
  const combinations: { topic: string; date: string }[] = [];
  for (const { date } of days) {
    const topics = await n.list<{ topic_id: string }>(listStudentCombinations({ source, timezone, since: date, anchor: date, user }));
    if (Array.isArray(topics)) combinations.push(...topics.map((r) => ({ topic: r.topic_id, date })));
    // A topic of that day cannot be read: that student's combinations of that day fail.
    else await failStored(n, { user, since: date, anchor: date, error: messageOf(topics.error) }, fail);
  }
  for (const topic of new Set(combinations.map((c) => c.topic))) {
    const topicError = await tryPart(n, source, { since, anchor, users: [user], topics: [topic] });
    if (topicError === undefined) continue;
    for (const { date } of combinations.filter((c) => c.topic === topic)) {
      const dayError = await tryPart(n, source, { since: date, anchor: date, users: [user], topics: [topic] });
      if (dayError !== undefined) fail({ userId: user, topicId: topic, date, error: messageOf(dayError) });
    }
  }
  if (days.length === 0) fail({ userId: user, topicId: '*', date: `${since}..${anchor}`, error: messageOf(failing.error) });
}

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
  n: Narrowing,
  scope: { user: string; since: string; anchor: string; error: string },
  fail: (combination: FailedCombination) => void,
): Promise<void> {
  const stored = await n.session.query<{ topic_id: string; date: string }>(storedCombinationsOf(scope));
  for (const row of stored.rows) fail({ userId: scope.user, topicId: row.topic_id, date: row.date, error: scope.error });
  if (stored.rows.length === 0) {
    const date = scope.since === scope.anchor ? scope.since : `${scope.since}..${scope.anchor}`;
    fail({ userId: scope.user, topicId: '*', date, error: scope.error });
  }
}
