/**
 * Statements that narrow a failing computation down to the combinations it comes from (a
 * failure confined to some rows fails only those combinations). The attempts source is
 * replaced by a subquery filtered on students (and optionally topics); the filter is a scan
 * qual, so PostgreSQL evaluates it before computing a view's columns for a row, and a row that
 * raises outside the scope is never computed.
 */
import type { Work } from '../work.js';
import { inDays, inShard } from './compute.js';
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

/** Attempts whose student cannot be read, left out of the source (see pipeline/isolate/unattributable.ts). */
export interface Exclusions {
  /** `completed_at::text|topic_id` of the attempts left out by instant and topic. */
  readonly keys: readonly string[];
  /** Instants at which every attempt is left out (their topic could not be read either). */
  readonly instants: readonly string[];
}

/**
 * The source (a relation) without the excluded attempts, as a relation. Plain scan quals, so a
 * row they remove never has its student_id computed.
 */
export function excludedSource(source: Sql, excluded: Exclusions): Sql {
  return sql`(select * from ${source}
      where not (completed_at = any(${excluded.instants}::timestamptz[])
                 or (completed_at::text || '|' || topic_id::text) = any(${excluded.keys}::text[]))) as ${ident('attributable_source')}`;
}

/** The attempts of the local days `from` … `to` (both included) of a source, days cut in `timezone`. */
export interface SourceDays {
  readonly source: Sql;
  readonly timezone: string;
  readonly from: string;
  readonly to: string;
}

/** Reads the students of the days: fails when a row of those days raises computing student_id. Reads nothing else. */
export function probeDaysStudents(days: SourceDays): Sql {
  const zone = days.timezone;
  return sql`
select count(distinct student_id::text)::int as n
from ${days.source}
where completed_at >= (${days.from}::date::timestamp at time zone ${zone}::text)
  and completed_at <  ((${days.to}::date + 1)::timestamp at time zone ${zone}::text)`;
}

/** The topics of local day `day`. */
export function listDayTopics(source: Sql, day: string, zone: string): Sql {
  return sql`
select distinct topic_id::text as topic_id
from ${source}
where completed_at >= (${day}::date::timestamp at time zone ${zone}::text)
  and completed_at <  ((${day}::date + 1)::timestamp at time zone ${zone}::text)
  and topic_id is not null
order by 1`;
}

/**
 * The instants (as text) of the attempts of local day `day` of `topic` (of any topic when
 * null). Reads only completed_at and topic_id.
 */
export function listDayInstants(source: Sql, day: string, zone: string, topic: string | null): Sql {
  return sql`
select distinct completed_at::text as at
from ${source}
where completed_at >= (${day}::date::timestamp at time zone ${zone}::text)
  and completed_at <  ((${day}::date + 1)::timestamp at time zone ${zone}::text)
  and (${topic}::text is null or topic_id::text = ${topic}::text)
order by 1`;
}

/** Reads the students of the attempts from instant `first` to `last` of `topic` (any when null). */
export function probeInstantsStudents(source: Sql, first: string, last: string, topic: string | null): Sql {
  return sql`
select count(distinct student_id::text)::int as n
from ${source}
where completed_at between ${first}::timestamptz and ${last}::timestamptz
  and (${topic}::text is null or topic_id::text = ${topic}::text)`;
}

/** The local days the window reads: the 27 before since up to anchor. */
export function readDays(window: { readonly since: string; readonly anchor: string }): Sql {
  return sql`
select d::date::text as day from generate_series(${window.since}::date - 27, ${window.anchor}::date, interval '1 day') d order by 1`;
}

/** Combinations of a window that read the attempts of local day `day` of `topic` (any when null). */
export interface ReadingDay {
  readonly day: string;
  readonly since: string;
  readonly anchor: string;
  readonly topic: string | null;
}

/**
 * The combinations of the window that read attempts of the day of the topic: that day and the
 * 27 after it, within since … anchor, computed (agg_computed) or stored for this shard.
 */
export function unattributableCombinations(reading: ReadingDay, work: Pick<Work, 'shard' | 'backend'>): Sql {
  const { day, since, anchor, topic } = reading;
  const shard = work.shard;
  return sql`
select user_id, topic_id, date::text as date from (
  select user_id, topic_id, date from ${work.backend.staging.computed}
  union
  select f.user_id, f.topic_id, f.date from features_topic_daily f
  where ${inDays(sql`f.date`, { since, anchor })} and ${inShard(sql`f.user_id`, shard)}
) c
where c.date between greatest(${day}::date, ${since}::date) and least(${day}::date + 27, ${anchor}::date)
  and (${topic}::text is null or c.topic_id = ${topic}::text)
order by 1, 2, 3`;
}

/** Removes those combinations from the staging table. */
export function dropUnattributable(reading: ReadingDay, work: Pick<Work, 'backend'>): Sql {
  const { day, since, anchor, topic } = reading;
  return sql`
delete from ${work.backend.staging.computed}
where date between greatest(${day}::date, ${since}::date) and least(${day}::date + 27, ${anchor}::date)
  and (${topic}::text is null or topic_id = ${topic}::text)`;
}

/** `count` instants (as text) spread evenly over the attempts the window reads. Reads only completed_at. */
export function sampleInstants(work: Pick<Work, 'source' | 'since' | 'anchor' | 'timezone'>, count: number): Sql {
  const zone = work.timezone;
  return sql`
select unnest(percentile_disc((select array_agg((i - 0.5) / ${count}::int) from generate_series(1, ${count}::int) i))
                within group (order by completed_at))::text as at
from ${work.source}
where completed_at >= ((${work.since}::date - 27)::timestamp at time zone ${zone}::text)
  and completed_at <  ((${work.anchor}::date + 1)::timestamp at time zone ${zone}::text)`;
}
