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

/**
 * The source without the attempts whose student cannot be read (see findUnattributable in
 * isolate.ts): those at the instants in `$first+1` (timestamptz[]; their topic could not be
 * read either), and those whose `completed_at::text|topic_id` is in `$first` (text[]). Plain
 * scan quals, so a row they remove never has its student_id computed.
 */
export function excludedSource(source: QualifiedName, first: number): QualifiedName {
  const sql = `(select * from ${source.sql}
      where not (completed_at = any($${first + 1}::timestamptz[])
                 or (completed_at::text || '|' || topic_id::text) = any($${first}::text[]))) as ${quoteIdent('attributable_source')}`;
  return { ...source, sql };
}

/**
 * Reads the students of the local days $1..$2 (time zone $3): fails when a row of those days
 * raises computing student_id. Reads nothing else.
 */
export const probeDaysStudents = `
select count(distinct student_id::text)::int as n
from {{source}}
where completed_at >= ($1::date::timestamp at time zone $3::text)
  and completed_at <  (($2::date + 1)::timestamp at time zone $3::text)`;

/** The topics of local day $1 (time zone $2). */
export const listDayTopics = `
select distinct topic_id::text as topic_id
from {{source}}
where completed_at >= ($1::date::timestamp at time zone $2::text)
  and completed_at <  (($1::date + 1)::timestamp at time zone $2::text)
  and topic_id is not null
order by 1`;

/**
 * The instants (as text) of the attempts of local day $1 (time zone $2) of topic $3 (of any
 * topic when NULL). Reads only completed_at and topic_id.
 */
export const listDayInstants = `
select distinct completed_at::text as at
from {{source}}
where completed_at >= ($1::date::timestamp at time zone $2::text)
  and completed_at <  (($1::date + 1)::timestamp at time zone $2::text)
  and ($3::text is null or topic_id::text = $3::text)
order by 1`;

/** Reads the students of the attempts from instant $1 to $2 of topic $3 (any when NULL). */
export const probeInstantsStudents = `
select count(distinct student_id::text)::int as n
from {{source}}
where completed_at between $1::timestamptz and $2::timestamptz
  and ($3::text is null or topic_id::text = $3::text)`;

/** The local days the window reads: the 27 before since ($1) up to anchor ($2). */
export const readDays = `
select d::date::text as day from generate_series($1::date - 27, $2::date, interval '1 day') d order by 1`;

/**
 * The combinations of the window that read attempts of local day $1 of topic $4 (of any topic
 * when NULL): that day and the 27 after it, within since $2 … anchor $3, computed
 * (agg_computed) or stored for this shard ($5 count, $6 index).
 */
export const unattributableCombinations = `
select user_id, topic_id, date::text as date from (
  select user_id, topic_id, date from agg_computed
  union
  select f.user_id, f.topic_id, f.date from features_topic_daily f
  where f.date between $2::date and $3::date and ${inShard('f.user_id', '$5', '$6')}
) c
where c.date between greatest($1::date, $2::date) and least($1::date + 27, $3::date)
  and ($4::text is null or c.topic_id = $4::text)
order by 1, 2, 3`;

/** Removes those combinations from agg_computed (parameters as unattributableCombinations, less the shard). */
export const dropUnattributable = `
delete from agg_computed
where date between greatest($1::date, $2::date) and least($1::date + 27, $3::date)
  and ($4::text is null or topic_id = $4::text)`;

/**
 * $3 instants (as text) spread evenly over the attempts the window reads (since $1, anchor
 * $2, time zone $4). Reads only completed_at.
 */
export const sampleInstants = `
select unnest(percentile_disc((select array_agg((i - 0.5) / $3::int) from generate_series(1, $3::int) i))
                within group (order by completed_at))::text as at
from {{source}}
where completed_at >= (($1::date - 27)::timestamp at time zone $4::text)
  and completed_at <  (($2::date + 1)::timestamp at time zone $4::text)`;
