/**
 * The statements on what the job remembers (migration 003): per shard and day, the attempts the
 * source delivered (aggregate_features_source_days), and the definition the stored rows were
 * computed in (aggregate_features_definition). Both tables are small (a row per shard and day,
 * and one row); on Citus they stay local to the coordinator, like the run log.
 */
import { inShard } from './compute.js';
import { sql, type Sql } from './tag.js';
import type { Shard } from '../work.js';

/** The highest count remembered for each day of since..anchor of a shard (days without memory are absent). */
export function rememberedDays(shard: string, range: { readonly since: string; readonly anchor: string }): Sql {
  return sql`
select date::text as date, highest_attempts::float8 as highest
from aggregate_features_source_days
where shard = ${shard} and date between ${range.since}::date and ${range.anchor}::date`;
}

/**
 * For each day of `days` and each of the `weeks` weeks before it, the attempts of the same
 * weekday: its highest remembered count, or where the memory has no such day (it is younger
 * than the table: an installation that gained it by `migrate`) the stored rows' attempts of the
 * shard. A week with neither is absent: it is no history. Only the days the memory lacks are
 * summed from the stored rows, so once the memory is weeks old the stored rows are not read.
 */
export function weekdayHistory(shardName: string, shard: Shard, days: readonly string[], weeks: number): Sql {
  return sql`
with wanted as (
  select n.day, k.k, n.day - 7 * k.k as past
  from unnest(${days}::date[]) n(day), generate_series(1, ${weeks}::int) k(k)
),
remembered as (
  select m.date, m.highest_attempts as attempts
  from aggregate_features_source_days m
  where m.shard = ${shardName} and m.date in (select past from wanted)
),
stored as (
  select f.date, sum(f.attempts) as attempts
  from features_topic_daily f
  where f.date in (select w.past from wanted w where not exists (select 1 from remembered r where r.date = w.past))
    and ${inShard(sql`f.user_id`, shard)}
  group by f.date
)
select w.day::text as date, w.k as week, coalesce(r.attempts, s.attempts)::float8 as attempts
from wanted w
left join remembered r on r.date = w.past
left join stored s on s.date = w.past
where coalesce(r.attempts, s.attempts) is not null
order by w.day, w.k`;
}

/** What a write remembers of one day. */
export interface RememberedDay {
  readonly date: string;
  readonly attempts: number;
  /** Let through below its baseline by an operator's flag. */
  readonly accepted: boolean;
}

/**
 * Remembers the attempts of the written days of a shard, in the write's transaction: the first
 * count stays, the last is replaced, the highest rises; with `lower` (--allow-shrink: a loss
 * confirmed by the operator) the highest becomes the count now, so the confirmed correction
 * is not refused again. `at` is the run's timestamp (bound: Citus accepts no now() here).
 */
export function rememberDays(shard: string, days: readonly RememberedDay[], options: { lower: boolean; at: string }): Sql {
  const dates = days.map((d) => d.date);
  const attempts = days.map((d) => d.attempts);
  const accepted = days.map((d) => d.accepted);
  return sql`
insert into aggregate_features_source_days as m
  (shard, date, first_attempts, first_at, highest_attempts, highest_at, last_attempts, last_at, accepted)
select ${shard}, d.date, d.attempts, ${options.at}::timestamptz, d.attempts, ${options.at}::timestamptz,
       d.attempts, ${options.at}::timestamptz, d.accepted
from unnest(${dates}::date[], ${attempts}::bigint[], ${accepted}::boolean[]) d(date, attempts, accepted)
on conflict (shard, date) do update set
  highest_attempts = case when ${options.lower}::boolean or excluded.last_attempts > m.highest_attempts
                          then excluded.last_attempts else m.highest_attempts end,
  highest_at = case when ${options.lower}::boolean or excluded.last_attempts > m.highest_attempts
                    then excluded.last_at else m.highest_at end,
  last_attempts = excluded.last_attempts,
  last_at = excluded.last_at,
  accepted = m.accepted or excluded.accepted`;
}

/** Forgets everything remembered (a rebuild in a new definition: the old days are not the new ones). */
export const forgetAllDays = sql`delete from aggregate_features_source_days`;

/** The recorded definition, if any. */
export interface DefinitionRow {
  readonly timezone: string;
  readonly improvement_mode: string;
  readonly recorded_at: string;
  readonly rebuild_from: string | null;
  readonly rebuild_to: string | null;
}

/** The recorded definition (no row: nothing was written since the memory exists). */
export const readDefinition = sql`
select timezone, improvement_mode, recorded_at::text as recorded_at, rebuild_from::text as rebuild_from, rebuild_to::text as rebuild_to
from aggregate_features_definition`;

/** Records the definition of the first rows written (a concurrent first run of another shard may have done it: nothing then). */
export function recordDefinition(definition: { timezone: string; improvementMode: string; at: string }): Sql {
  return sql`
insert into aggregate_features_definition (timezone, improvement_mode, recorded_at)
values (${definition.timezone}, ${definition.improvementMode}, ${definition.at}::timestamptz)
on conflict (singleton) do nothing`;
}

/** An empty table takes the definition of the run that writes to it (whatever was recorded before). */
export function startOver(definition: { timezone: string; improvementMode: string; at: string }): Sql {
  return sql`
insert into aggregate_features_definition (timezone, improvement_mode, recorded_at)
values (${definition.timezone}, ${definition.improvementMode}, ${definition.at}::timestamptz)
on conflict (singleton) do update set
  timezone = excluded.timezone, improvement_mode = excluded.improvement_mode, recorded_at = excluded.recorded_at,
  rebuild_from = null, rebuild_to = null
where (aggregate_features_definition.timezone, aggregate_features_definition.improvement_mode, aggregate_features_definition.rebuild_from)
      is distinct from (excluded.timezone, excluded.improvement_mode, null)`;
}

/** Starts a rebuild in a new definition over from..to: the definition is the new one from now on, marked unfinished. */
export function startRebuild(definition: { timezone: string; improvementMode: string; at: string; from: string; to: string }): Sql {
  return sql`
insert into aggregate_features_definition (timezone, improvement_mode, recorded_at, rebuild_from, rebuild_to)
values (${definition.timezone}, ${definition.improvementMode}, ${definition.at}::timestamptz, ${definition.from}::date, ${definition.to}::date)
on conflict (singleton) do update set
  timezone = excluded.timezone, improvement_mode = excluded.improvement_mode, recorded_at = excluded.recorded_at,
  rebuild_from = excluded.rebuild_from, rebuild_to = excluded.rebuild_to`;
}

/** Marks the rebuild finished. */
export const finishRebuild = sql`update aggregate_features_definition set rebuild_from = null, rebuild_to = null`;

/** Whether features_topic_daily holds no row at all (one row read at most). */
export const tableIsEmpty = sql`select not exists (select 1 from features_topic_daily) as empty`;

/** The first and last stored day (null, null for an empty table): a rebuild must cover them. */
export const storedSpan = sql`select min(date)::text as first, max(date)::text as last from features_topic_daily`;

/**
 * `report`: each day of the period (newest first) with the attempts the source delivered at
 * its last write (summed over the shards of the newest layout), whether an operator accepted
 * it below its baseline, and the same weekday's attempts of the `weeks` weeks before (the
 * highest remembered, else the stored rows'). Days the memory does not hold have no attempts.
 */
export function memoryAgainstBaseline(period: { readonly anchor: string; readonly days: number }, weeks: number): Sql {
  const { anchor, days } = period;
  return sql`
with layout as (
  select split_part(shard, '/', 2) as n from aggregate_features_source_days order by last_at desc, shard limit 1
),
mem as (
  select m.date, sum(m.last_attempts)::float8 as last, sum(m.highest_attempts)::float8 as highest, bool_or(m.accepted) as accepted
  from aggregate_features_source_days m
  where split_part(m.shard, '/', 2) = (select n from layout)
    and m.date between ${anchor}::date - (${days}::int - 1) - 7 * ${weeks}::int and ${anchor}::date
  group by m.date
),
stored as (
  select f.date, sum(f.attempts)::float8 as attempts
  from features_topic_daily f
  where f.date between ${anchor}::date - (${days}::int - 1) - 7 * ${weeks}::int and ${anchor}::date - 7
  group by f.date
),
period as (
  select ${anchor}::date - i as date from generate_series(0, ${days}::int - 1) i
)
select p.date::text as date, m.last as attempts, coalesce(m.accepted, false) as accepted,
       array(select coalesce(pm.highest, ps.attempts)
             from generate_series(1, ${weeks}::int) k
             left join mem pm on pm.date = p.date - 7 * k
             left join stored ps on ps.date = p.date - 7 * k
             where coalesce(pm.highest, ps.attempts) is not null) as history
from period p
left join mem m on m.date = p.date
order by p.date desc`;
}

/**
 * `report`: the topics whose attempts on `day` fell more than `maxDrop` below the median of the
 * same weekday of the `weeks` weeks before (at least `minWeeks` of them with attempts, a median
 * of at least `minAttempts`), from the stored rows: one subject's ingestion broken within a day
 * whose total looks normal. Nothing when the day holds no rows (then the whole day is missing).
 */
export function topicDrops(
  day: string,
  thresholds: { weeks: number; minWeeks: number; maxDrop: number; minAttempts: number },
  limit: number,
): Sql {
  return sql`
with hist as (
  select f.topic_id, f.date, sum(f.attempts) as attempts
  from features_topic_daily f
  where f.date in (select ${day}::date - 7 * k from generate_series(1, ${thresholds.weeks}::int) k)
  group by f.topic_id, f.date
),
base as (
  select topic_id, percentile_cont(0.5) within group (order by attempts) as baseline, count(*) as weeks
  from hist group by topic_id
),
today as (
  select f.topic_id, sum(f.attempts) as attempts from features_topic_daily f where f.date = ${day}::date group by f.topic_id
)
select b.topic_id, coalesce(t.attempts, 0)::float8 as attempts, b.baseline::float8 as baseline, b.weeks::int as weeks
from base b
left join today t on t.topic_id = b.topic_id
where exists (select 1 from today)
  and b.weeks >= ${thresholds.minWeeks}::int
  and b.baseline >= ${thresholds.minAttempts}::int
  and coalesce(t.attempts, 0) < b.baseline * (1 - ${thresholds.maxDrop}::float8)
order by b.topic_id collate "C"
limit ${limit}::int`;
}
