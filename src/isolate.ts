/**
 * Fills agg_computed for the window, isolating failures that come from some rows only (a
 * source view that raises on one malformed row, a value out of range): the computation is
 * retried on halves of the window's students until the failing students are found, then per
 * topic and per day, so only the combinations the bad rows touch fail. The normal path is one
 * statement (CREATE TABLE … AS); the narrowing creates the table empty and fills it in
 * O(k · log n) statements for k bad students.
 */
import type { Config } from './config.js';
import type { Computation } from './job.js';
import type { Session } from './db.js';
import { RunFailedError, messageOf, sqlState } from './errors.js';
import { withIdentifiers, type QualifiedName } from './identifiers.js';
import { createComputedTable, insertComputed, stageComputed, upsertComputed } from './sql/write.js';
import {
  dropUnattributable,
  excludedSource,
  listDayTopics,
  listStudentCombinations,
  listStudentDays,
  listStudents,
  listDayInstants,
  probeInstantsStudents,
  probeDaysStudents,
  readDays,
  sampleInstants,
  scopedSource,
  unattributableCombinations,
} from './sql/scope.js';
import type { Window } from './window.js';

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

interface Scope {
  readonly since: string;
  readonly anchor: string;
  readonly users: string[] | null;
  readonly topics: string[] | null;
}

/**
 * Creates agg_computed with the window's combinations and returns the combinations that could
 * not be computed. Runs inside the caller's transaction, using savepoints.
 * `params` are the computation's: since, anchor, time zone, shard count, shard index, ….
 */
export async function computeIsolated(
  session: Session,
  config: Config,
  work: Computation,
  window: Window,
  params: readonly unknown[],
  checkpoint: () => void,
): Promise<FailedCombination[]> {
  const wholeWindow = withIdentifiers(stageComputed(work.plan), work.identifiers);
  const attempt = async (statement: string, values: readonly unknown[]): Promise<unknown> => {
    checkpoint();
    await session.query('savepoint agg_scope');
    try {
      await session.query(statement, values as unknown[]);
      await session.query('release savepoint agg_scope');
      return undefined;
    } catch (err) {
      await session.query('rollback to savepoint agg_scope');
      if (!isRowError(err)) throw err;
      return err;
    }
  };

  const whole = await attempt(wholeWindow, params);
  if (whole === undefined) return [];
  await session.query(withIdentifiers(createComputedTable(work.plan), work.identifiers), params as unknown[]);

  const plainSource = work.identifiers.source!;
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
  const list = async <T>(statement: string, values: unknown[], source: QualifiedName): Promise<T[] | { error: unknown }> => {
    checkpoint();
    await session.query('savepoint agg_list');
    try {
      const rows = (await session.query<T & object>(withIdentifiers(statement, { source }), values)).rows;
      await session.query('release savepoint agg_list');
      return rows;
    } catch (err) {
      await session.query('rollback to savepoint agg_list');
      if (!isRowError(err)) throw err;
      return { error: err };
    }
  };

  // The statements below read `source` with `values` (the computation's parameters, then the
  // excluded slices' when some attempts cannot be attributed to a student).
  let source = plainSource;
  let values: readonly unknown[] = params;
  let unattributable: Unattributable | undefined;
  let students = await list<{ user_id: string }>(listStudents, params.slice(0, 5), source);
  if (!Array.isArray(students)) {
    // Some rows' students cannot be read: find those rows by day and topic, leave them out,
    // and fail every combination that would have read them (below).
    unattributable = await findUnattributable(
      { list, plainSource, window, timezone: config.timezone, sourceName: config.source.sql },
      students.error,
      (slices, error) => checkBudget(slices, error),
    );
    source = excludedSource(plainSource, params.length + 1);
    values = [...params, unattributable.keys, unattributable.instants];
    students = await list<{ user_id: string }>(listStudents, [...params.slice(0, 5), ...values.slice(params.length)], source);
    if (!Array.isArray(students)) {
      throw new RunFailedError(
        `the source ${config.source.sql} is broken wholesale: its student_id cannot be read (${messageOf(students.error)}), so the failing rows cannot be attributed to any student; nothing of ${window.since}..${window.anchor} was written. Fix the source and re-run`,
        { cause: students.error },
      );
    }
  }
  const scoped = withIdentifiers(insertComputed(work.plan), {
    ...work.identifiers,
    source: scopedSource(source, values.length + 1),
  });
  const tryScope = (scope: Scope) => {
    const scopeValues = [...values];
    scopeValues[0] = scope.since;
    scopeValues[1] = scope.anchor;
    return attempt(scoped, [...scopeValues, scope.users, scope.topics]);
  };
  /** The student listings read the source with since, anchor, time zone, student, then the exclusions. */
  const studentSource = unattributable ? excludedSource(plainSource, 5) : plainSource;
  const studentValues = (since: string, anchor: string, user: string) => [
    since,
    anchor,
    config.timezone,
    user,
    ...(unattributable ? [unattributable.keys, unattributable.instants] : []),
  ];

  if (unattributable) {
    // Without the unattributable rows, the rest of the window may compute in one statement.
    const rest = withIdentifiers(insertComputed(work.plan), { ...work.identifiers, source });
    if ((await attempt(rest, values)) === undefined) {
      return failUnattributable(session, unattributable, window, params, failed, (c) => {
        failed.push(c);
        checkBudget(failed.length, c.error);
      }).then(() => failed);
    }
  }

  // Halve the students level by level. The failing groups of a level are disjoint, so their
  // number is a lower bound on the failing students, each failing at least one combination:
  // a source where every row raises is recognised after about log2(AGG_MAX_FAILED)
  // levels instead of being narrowed down student by student.
  const everyone = students.map((r) => r.user_id);
  studentCount = everyone.length;
  await refuseWholesale(
    everyone,
    async (user) => {
      // A probe only: its rows are computed again by the narrowing below.
      await session.query('savepoint agg_probe');
      try {
        return await tryScope({ since: window.since, anchor: window.anchor, users: [user], topics: null });
      } finally {
        await session.query('rollback to savepoint agg_probe');
      }
    },
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
    const days = await list<{ date: string }>(listStudentDays, studentValues(window.since, window.anchor, user), studentSource);
    if (!Array.isArray(days)) {
      // Not even the student's days can be read: the student's stored rows of the window stay.
      await failStored(session, { user, since: window.since, anchor: window.anchor, error: messageOf(days.error) }, fail);
      continue;
    }
    const combinations: { topic: string; date: string }[] = [];
    for (const { date } of days) {
      const topics = await list<{ topic_id: string }>(listStudentCombinations, studentValues(date, date, user), studentSource);
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
  if (unattributable) await failUnattributable(session, unattributable, window, params, failed, fail);
  return failed;
}

/** Attempts whose student cannot be read, found by their instant (and topic, where it can be read). */
interface Unattributable {
  readonly slices: { readonly day: string; readonly topic: string | null; readonly at: string; readonly error: string }[];
  /** `completed_at::text|topic_id` of the slices with a topic, as the excluded source's parameter. */
  readonly keys: string[];
  /** The instants of the slices without one (every attempt at that instant is left out). */
  readonly instants: string[];
}

type List = <T>(statement: string, values: unknown[], source: QualifiedName) => Promise<T[] | { error: unknown }>;

/**
 * Finds the attempts of the days the window reads whose student_id raises: halves the days
 * until single days fail, then tries each topic of such a day (all of them at once when its
 * topics cannot be read either), then halves its instants down to the attempts that raise.
 * Each statement reads only completed_at and topic_id besides the student, so it costs a
 * logarithmic number of statements per bad attempt, within the isolation budget.
 */
async function findUnattributable(
  context: { list: List; plainSource: QualifiedName; window: Window; timezone: string; sourceName: string },
  firstError: unknown,
  checkBudget: (failingAtLeast: number, error: unknown) => void,
): Promise<Unattributable> {
  const { list, plainSource: source, window, timezone } = context;
  await refuseUnreadable(context, firstError);
  const days = await list<{ day: string }>(readDays, [window.since, window.anchor], source);
  if (!Array.isArray(days)) throw days.error;
  const badDays = await halve(
    days.length,
    async (first, last) => {
      const probe = await list(probeDaysStudents, [days[first]!.day, days[last]!.day, timezone], source);
      return Array.isArray(probe) ? undefined : probe.error;
    },
    checkBudget,
  );
  if (badDays.length === 0) throw firstError;

  const slices: Unattributable['slices'][number][] = [];
  for (const { index } of badDays) {
    const day = days[index]!.day;
    const topics = await list<{ topic_id: string }>(listDayTopics, [day, timezone], source);
    // A topic that cannot be read either: the day's attempts are told apart by instant only.
    const scopes: (string | null)[] = Array.isArray(topics) ? topics.map((r) => r.topic_id) : [null];
    for (const topic of scopes) {
      const instants = await list<{ at: string }>(listDayInstants, [day, timezone, topic], source);
      if (!Array.isArray(instants)) throw instants.error;
      const bad = await halve(
        instants.length,
        async (first, last) => {
          const probe = await list(probeInstantsStudents, [instants[first]!.at, instants[last]!.at, topic], source);
          return Array.isArray(probe) ? undefined : probe.error;
        },
        (found, error) => checkBudget(slices.length + found, error),
      );
      slices.push(...bad.map(({ index: i, error }) => ({ day, topic, at: instants[i]!.at, error: messageOf(error) })));
    }
  }
  if (slices.length === 0) throw firstError;
  return {
    slices,
    keys: slices.filter((s) => s.topic !== null).map((s) => `${s.at}|${s.topic}`),
    instants: slices.filter((s) => s.topic === null).map((s) => s.at),
  };
}

/**
 * Recognises a source whose student_id cannot be read for most attempts in a few statements,
 * as refuseWholesale does for students: when every one of `probes` attempts spread evenly
 * over the window's fails, it fails for most of them.
 */
async function refuseUnreadable(
  context: { list: List; plainSource: QualifiedName; window: Window; timezone: string; sourceName: string },
  firstError: unknown,
): Promise<void> {
  const { list, plainSource: source, window, timezone } = context;
  const sample = await list<{ at: string | null }>(sampleInstants, [window.since, window.anchor, probes, timezone], source);
  if (!Array.isArray(sample)) throw sample.error;
  const instants = [...new Set(sample.flatMap((r) => (r.at === null ? [] : [r.at])))];
  if (instants.length < probes) return;
  let error: unknown = firstError;
  for (const at of instants) {
    const probe = await list(probeInstantsStudents, [at, at, null], source);
    if (Array.isArray(probe)) return;
    error = probe.error;
  }
  throw new RunFailedError(
    `the source ${context.sourceName} is broken wholesale: the student_id of every one of the ${probes} attempts it probed (spread over the window) cannot be read, e.g. ${messageOf(error)}; nothing of ${window.since}..${window.anchor} was written. Fix the source and re-run`,
    { cause: error },
  );
}

/**
 * The indexes 0 … count-1 for which `probe` fails as single items, found by halving ranges
 * that fail (a range that passes is not split further).
 */
async function halve(
  count: number,
  probe: (first: number, last: number) => Promise<unknown>,
  checkBudget: (failingAtLeast: number, error: unknown) => void,
): Promise<{ index: number; error: unknown }[]> {
  const found: { index: number; error: unknown }[] = [];
  const pending: [number, number][] = count > 0 ? [[0, count - 1]] : [];
  while (pending.length > 0) {
    const [first, last] = pending.pop()!;
    const error = await probe(first, last);
    if (error === undefined) continue;
    if (first === last) found.push({ index: first, error });
    else {
      const middle = (first + last) >> 1;
      pending.push([middle + 1, last], [first, middle]);
    }
    checkBudget(found.length, error);
  }
  return found;
}

/**
 * Fails every combination that reads an unattributable attempt, which could be anyone's: of its
 * topic (of any topic when the topic could not be read either), on its day and the 27 after it
 * (whose improvement reads it), within the window, computed or stored. They are taken out of
 * agg_computed, so their stored rows stay as they were. The unknown student's own combination
 * of the attempt's day fails too, as user `*`: `failed` counts what is left unrefreshed.
 */
async function failUnattributable(
  session: Session,
  unattributable: Unattributable,
  window: Window,
  params: readonly unknown[],
  alreadyFailed: readonly FailedCombination[],
  fail: (combination: FailedCombination) => void,
): Promise<void> {
  const keyOf = (user: string, topic: string, date: string) => `${user}\u0000${topic}\u0000${date}`;
  const seen = new Set(alreadyFailed.map((f) => keyOf(f.userId, f.topicId, f.date)));
  const failOnce = (combination: FailedCombination) => {
    const key = keyOf(combination.userId, combination.topicId, combination.date);
    if (seen.has(key)) return;
    seen.add(key);
    fail(combination);
  };
  for (const { day, topic, at, error } of unattributable.slices) {
    const message = `the attempt at ${at}${topic === null ? '' : ` in topic ${topic}`} cannot be attributed to a student (${error})`;
    const scope = [day, window.since, window.anchor, topic];
    const rows = await session.query<{ user_id: string; topic_id: string; date: string }>(unattributableCombinations, [
      ...scope,
      params[3],
      params[4],
    ]);
    await session.query(dropUnattributable, scope);
    for (const row of rows.rows) failOnce({ userId: row.user_id, topicId: row.topic_id, date: row.date, error: message });
    if (day >= window.since) failOnce({ userId: '*', topicId: topic ?? '*', date: day, error: message });
  }
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

export interface UpsertCounts {
  readonly inserted: number;
  readonly updated: number;
  readonly failures: FailedCombination[];
}

/**
 * Writes agg_computed into features_topic_daily (see upsertComputed). A row the table refuses
 * (a key too large for its index, say) fails only its combination, found by the same halving
 * as computeIsolated; its stored row is left as it was.
 */
export async function upsertIsolated(
  session: Session,
  runTimestamp: string,
  includeTheta: boolean,
  checkpoint: () => void,
): Promise<UpsertCounts> {
  let inserted = 0;
  let updated = 0;
  const attempt = async (users: string[] | null, topic: string | null, date: string | null): Promise<unknown> => {
    checkpoint();
    await session.query('savepoint agg_upsert');
    try {
      const result = await session.query<{ inserted: number; updated: number }>(upsertComputed, [
        runTimestamp,
        includeTheta,
        users,
        topic,
        date,
      ]);
      await session.query('release savepoint agg_upsert');
      inserted += result.rows[0]!.inserted;
      updated += result.rows[0]!.updated;
      return undefined;
    } catch (err) {
      await session.query('rollback to savepoint agg_upsert');
      if (!isRowError(err) && sqlState(err) !== '54000') throw err;
      return err;
    }
  };

  if ((await attempt(null, null, null)) === undefined) return { inserted, updated, failures: [] };
  const failures: FailedCombination[] = [];
  const users = await session.query<{ user_id: string }>('select distinct user_id from agg_computed order by 1');
  const pending: string[][] = [users.rows.map((r) => r.user_id)];
  while (pending.length > 0) {
    const group = pending.pop()!;
    if (group.length === 0 || (await attempt(group, null, null)) === undefined) continue;
    if (group.length > 1) {
      pending.push(group.slice(0, group.length >> 1), group.slice(group.length >> 1));
      continue;
    }
    const rows = await session.query<{ topic_id: string; date: string }>(
      'select topic_id, date::text as date from agg_computed where user_id = $1 order by 1, 2',
      [group[0]],
    );
    for (const { topic_id: topic, date } of rows.rows) {
      const error = await attempt(group, topic, date);
      if (error !== undefined) failures.push({ userId: group[0]!, topicId: topic, date, error: messageOf(error) });
    }
  }
  return { inserted, updated, failures };
}
