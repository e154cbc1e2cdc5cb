/**
 * The shrink guard's comparison: per day of the window (and shard), the attempts
 * stored in features_topic_daily against the attempts a run would leave there.
 */
import type { Shard } from '../work.js';
import { daysOf, inDays, inShard } from './compute.js';
import { sql, type Sql } from './tag.js';

/**
 * One row per day of the window: `rows` and `stored` = count(*) and sum(attempts) of its stored
 * rows (0 when none), `current` = sum(attempts) of the computed combinations (`computed`, a
 * relation with the output table's columns) plus the stored attempts of combinations that
 * failed and are left as they were (`failed`, agg_failed's shape, or none in a dry run, which
 * does not narrow failures). Every day is listed, also one with neither stored nor computed
 * attempts: the source memory remembers what each written day held, and a newest day the
 * source delivered nothing for is judged too.
 */
export function shrinkDays(
  computed: Sql,
  failed: Sql | undefined,
  range: { readonly since: string; readonly anchor: string; readonly shard: Shard },
): Sql {
  const kept = failed
    ? sql`sum(f.attempts) filter (where exists (
           select 1 from ${failed} x
           where x.user_id = f.user_id and (x.topic_id = f.topic_id or x.topic_id = '*')
             and (x.date = f.date or x.date is null)))`
    : sql`0`;
  return sql`
with stored as (
  select f.date, count(*) as rows, sum(f.attempts) as stored, coalesce(${kept}, 0) as kept
  from features_topic_daily f
  where ${inDays(sql`f.date`, range)}
    and ${inShard(sql`f.user_id`, range.shard)}
  group by f.date
),
computed_days as (
  select cd.date, sum(cd.attempts) as attempts from ${computed} cd group by cd.date
),
days as (
  ${daysOf(range)}
)
select d.date::text as date, coalesce(s.rows, 0)::float8 as rows, coalesce(s.stored, 0)::float8 as stored,
       (coalesce(n.attempts, 0) + coalesce(s.kept, 0))::float8 as current
from days d
left join stored s on s.date = d.date
left join computed_days n on n.date = d.date
order by d.date`;
}
