/**
 * Statements that narrow a failing computation down to the combinations it comes from (SPEC
 * §7: a failure confined to some rows fails only those combinations). The attempts source is
 * replaced by a subquery filtered on students (and optionally topics); the filter is a scan
 * qual, so PostgreSQL evaluates it before computing a view's columns for a row, and a row that
 * raises outside the scope is never computed.
 */
import { quoteIdent, type QualifiedName } from '../identifiers.js';
import { inShard } from './compute.js';

/**
 * The source restricted to students `$first` (text[]) and, unless `$first+1` is NULL, topics
 * `$first+1` (text[]). The parameters come after the computation's own.
 */
export function scopedSource(source: QualifiedName, first: number): QualifiedName {
  const sql = `(select * from ${source.sql}
      where student_id::text = any($${first}::text[])
        and ($${first + 1}::text[] is null or topic_id::text = any($${first + 1}::text[]))) as ${quoteIdent('scoped_source')}`;
  return { ...source, sql };
}

/**
 * The students with attempts in the range the window reads, in this shard. Reads only key and
 * time columns, so a view that raises computing another column still answers.
 * $1 since, $2 anchor, $3 time zone, $4 shard count, $5 shard index.
 */
export const listStudents = `
select distinct student_id::text as user_id
from {{source}}
where completed_at >= (($1::date - 27)::timestamp at time zone $3::text)
  and completed_at <  (($2::date + 1)::timestamp at time zone $3::text)
  and student_id is not null and student_id::text <> ''
  and ${inShard('student_id::text', '$4', '$5')}
order by 1`;

/**
 * The days of the window on which one student has attempts. Reads only the student and the
 * time, so a view that raises computing a topic still answers.
 * $1 since, $2 anchor, $3 time zone, $4 student.
 */
export const listStudentDays = `
select distinct (completed_at at time zone $3::text)::date::text as date
from {{source}}
where completed_at >= ($1::date::timestamp at time zone $3::text)
  and completed_at <  (($2::date + 1)::timestamp at time zone $3::text)
  and student_id::text = $4::text
order by 1`;

/**
 * The (topic, day) combinations of one student in the window. $1 since, $2 anchor, $3 time
 * zone, $4 student.
 */
export const listStudentCombinations = `
select distinct topic_id::text as topic_id, (completed_at at time zone $3::text)::date::text as date
from {{source}}
where completed_at >= ($1::date::timestamp at time zone $3::text)
  and completed_at <  (($2::date + 1)::timestamp at time zone $3::text)
  and student_id::text = $4::text
  and topic_id is not null and topic_id::text <> ''
order by 1, 2`;
