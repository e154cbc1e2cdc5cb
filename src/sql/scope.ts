/**
 * Statements that narrow a failing computation down to the combinations it comes from (SPEC
 * §7: a failure confined to some rows fails only those combinations). The attempts source is
 * replaced by a subquery filtered on students (and optionally topics); the filter is a scan
 * qual, so PostgreSQL evaluates it before computing a view's columns for a row, and a row that
 * raises outside the scope is never computed.
 */
import type { Work } from '../work.js';
import { inShard } from './compute.js';
import { ident, sql, type Sql } from './tag.js';

/** Students, and optionally topics, that a narrowed computation is restricted to. */
export interface Scope {
  readonly users: readonly string[];
  /** null: every topic of those students. */
  readonly topics: readonly string[] | null;
}

/** The source (a relation) restricted to the scope's students and topics, as a relation. */
export function scopedSource(source: Sql, scope: Scope): Sql {
  return sql`(select * from ${source}
      where student_id::text = any(${scope.users}::text[])
        and (${scope.topics}::text[] is null or topic_id::text = any(${scope.topics}::text[]))) as ${ident('scoped_source')}`;
}

/**
 * The students with attempts in the range the window reads, in this shard. Reads only key and
 * time columns, so a view that raises computing another column still answers.
 */
export function listStudents(work: Work): Sql {
  const { since, anchor, timezone: zone } = work;
  return sql`
select distinct student_id::text as user_id
from ${work.source}
where completed_at >= ((${since}::date - 27)::timestamp at time zone ${zone}::text)
  and completed_at <  ((${anchor}::date + 1)::timestamp at time zone ${zone}::text)
  and student_id is not null and student_id::text <> ''
  and ${inShard(sql`student_id::text`, work.shard)}
order by 1`;
}

/** One student's attempts in the days since..anchor. */
export interface StudentDays {
  readonly source: Sql;
  readonly timezone: string;
  readonly since: string;
  readonly anchor: string;
  readonly user: string;
}

/**
 * The days of the window on which one student has attempts. Reads only the student and the
 * time, so a view that raises computing a topic still answers.
 */
export function listStudentDays(days: StudentDays): Sql {
  const { since, anchor, timezone: zone, user } = days;
  return sql`
select distinct (completed_at at time zone ${zone}::text)::date::text as date
from ${days.source}
where completed_at >= (${since}::date::timestamp at time zone ${zone}::text)
  and completed_at <  ((${anchor}::date + 1)::timestamp at time zone ${zone}::text)
  and student_id::text = ${user}::text
order by 1`;
}

/** The (topic, day) combinations of one student in the days since..anchor. */
export function listStudentCombinations(days: StudentDays): Sql {
  const { since, anchor, timezone: zone, user } = days;
  return sql`
select distinct topic_id::text as topic_id, (completed_at at time zone ${zone}::text)::date::text as date
from ${days.source}
where completed_at >= (${since}::date::timestamp at time zone ${zone}::text)
  and completed_at <  ((${anchor}::date + 1)::timestamp at time zone ${zone}::text)
  and student_id::text = ${user}::text
  and topic_id is not null and topic_id::text <> ''
order by 1, 2`;
}
