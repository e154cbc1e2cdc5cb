/**
 * Attempts whose student_id raises: they cannot be attributed to a student, so halving the
 * students cannot find them. They are found by day, topic and instant, left out of the source,
 * and every combination that would have read them fails (it could be anyone's).
 */
import { RunFailedError, messageOf } from '../../errors.js';
import {
  dropUnattributable,
  listDayInstants,
  listDayTopics,
  probeDaysStudents,
  probeInstantsStudents,
  readDays,
  sampleInstants,
  unattributableCombinations,
  type Exclusions,
} from '../../sql/scope.js';
import { probes, type FailedCombination, type Narrowing } from './narrowing.js';

/** Attempts whose student cannot be read, found by their instant (and topic, where it can be read). */
export interface Unattributable extends Exclusions {
  readonly slices: { readonly day: string; readonly topic: string | null; readonly at: string; readonly error: string }[];
}

/**
 * Finds the attempts of the days the window reads whose student_id raises: halves the days
 * until single days fail, then tries each topic of such a day (all of them at once when its
 * topics cannot be read either), then halves its instants down to the attempts that raise.
 * Each statement reads only completed_at and topic_id besides the student, so it costs a
 * logarithmic number of statements per bad attempt, within the isolation budget.
 */
export async function findUnattributable(n: Narrowing, firstError: unknown): Promise<Unattributable> {
  const { work } = n;
  const { source, timezone } = work;
  await refuseUnreadable(n, firstError);
  const days = await n.list<{ day: string }>(readDays(work));
  if (!Array.isArray(days)) throw days.error;
  const badDays = await halve(
    days.length,
    async (first, last) => {
      const probe = await n.list(probeDaysStudents({ source, timezone, from: days[first]!.day, to: days[last]!.day }));
      return Array.isArray(probe) ? undefined : probe.error;
    },
    (found, error) => n.checkBudget(found, error),
  );
  if (badDays.length === 0) throw firstError;

  const slices: Unattributable['slices'][number][] = [];
  for (const { index } of badDays) {
    const day = days[index]!.day;
    const topics = await n.list<{ topic_id: string }>(listDayTopics(source, day, timezone));
    // A topic that cannot be read either: the day's attempts are told apart by instant only.
    const scopes: (string | null)[] = Array.isArray(topics) ? topics.map((r) => r.topic_id) : [null];
    for (const topic of scopes) {
      const instants = await n.list<{ at: string }>(listDayInstants(source, day, timezone, topic));
      if (!Array.isArray(instants)) throw instants.error;
      const bad = await halve(
        instants.length,
        async (first, last) => {
          const probe = await n.list(probeInstantsStudents(source, instants[first]!.at, instants[last]!.at, topic));
          return Array.isArray(probe) ? undefined : probe.error;
        },
        (found, error) => n.checkBudget(slices.length + found, error),
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
async function refuseUnreadable(n: Narrowing, firstError: unknown): Promise<void> {
  const { work } = n;
  const sample = await n.list<{ at: string | null }>(sampleInstants(work, probes));
  if (!Array.isArray(sample)) throw sample.error;
  const instants = [...new Set(sample.flatMap((r) => (r.at === null ? [] : [r.at])))];
  if (instants.length < probes) return;
  let error: unknown = firstError;
  for (const at of instants) {
    const probe = await n.list(probeInstantsStudents(work.source, at, at, null));
    if (Array.isArray(probe)) return;
    error = probe.error;
  }
  throw new RunFailedError(
    `the source ${n.config.source.sql} is broken wholesale: the student_id of every one of the ${probes} attempts it probed (spread over the window) cannot be read, e.g. ${messageOf(error)}; nothing of ${work.since}..${work.anchor} was written. Fix the source and re-run`,
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
export async function failUnattributable(
  n: Narrowing,
  unattributable: Unattributable,
  alreadyFailed: readonly FailedCombination[],
  fail: (combination: FailedCombination) => void,
): Promise<void> {
  const { session, work } = n;
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
    const reading = { day, since: work.since, anchor: work.anchor, topic };
    const rows = await session.query<{ user_id: string; topic_id: string; date: string }>(unattributableCombinations(reading, work));
    await session.query(dropUnattributable(reading, work));
    for (const row of rows.rows) failOnce({ userId: row.user_id, topicId: row.topic_id, date: row.date, error: message });
    if (day >= work.since) failOnce({ userId: '*', topicId: topic ?? '*', date: day, error: message });
  }
}
