/**
 * The lists that narrow a failing write down to its combinations: the staged students, then
 * a student's staged combinations (the upsert retries halves of the students, then one
 * combination at a time), and the stored combinations of a student whose computation failed
 * (reported as left unrefreshed). Ordered, so the narrowing and its report are the same on
 * every run.
 */
import { sql, type Sql } from './tag.js';

/** The students of the computed staging table. */
export function stagedStudents(computed: Sql): Sql {
  return sql`select distinct user_id from ${computed} order by 1`;
}

/** The staged combinations of the student `user`. */
export function stagedCombinationsOf(computed: Sql, user: string | undefined): Sql {
  return sql`select topic_id, date::text as date from ${computed} where user_id = ${user} order by 1, 2`;
}

/** The stored combinations of the student `user` from `since` to `anchor`. */
export function storedCombinationsOf(scope: { user: string; since: string; anchor: string }): Sql {
  return sql`select topic_id, date::text as date from features_topic_daily
     where user_id = ${scope.user} and date between ${scope.since}::date and ${scope.anchor}::date order by date, topic_id`;
}
