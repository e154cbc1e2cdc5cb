/**
 * The shrink guard's comparison (SPEC §7): per day of the window (and shard), the attempts
 * stored in features_topic_daily against the attempts a run would leave there.
 */
import type { Shard } from '../work.js';
import { inDays, inShard } from './compute.js';
import { sql, type Sql } from './tag.js';

/**
 * One row per stored day of the window: `stored` = sum(attempts) of its stored rows, `current`
 * = sum(attempts) of the computed combinations (`computed`, a relation with the output
 * table's columns) plus the stored attempts of combinations that failed and are left as they
 * were (`failed`, agg_failed's shape, or none in a dry run, which does not narrow failures).
 * Days that hold no rows cannot shrink and are not listed.
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
  select f.date, sum(f.attempts) as stored, coalesce(${kept}, 0) as kept
  from features_topic_daily f
  where ${inDays(sql`f.date`, range)}
    and ${inShard(sql`f.user_id`, range.shard)}
  group by f.date
),
computed_days as (
  select cd.date, sum(cd.attempts) as attempts from ${computed} cd group by cd.date
)
select s.date::text as date, s.stored::float8 as stored, (coalesce(n.attempts, 0) + s.kept)::float8 as current
from stored s
left join computed_days n on n.date = s.date
order by s.date`;
}
