/**
 * The statements of a backfill beyond the daily write path (which it reuses chunk by chunk): the
 * end of the ripple and the ripple itself.
 */
import type { Shard, Work } from '../work.js';
import { computeSelect, inDays, inShard } from './compute.js';
import { sql, type Sql } from './tag.js';

/** The day after `day`, where the ripple of a backfill ending on `day` starts. */
export function dayAfter(day: string): Sql {
  return sql`select (${day}::date + 1)::text as day`;
}

/**
 * The last day the ripple of a backfill ending at `to` recomputes: to + 27 (the improvement
 * index of day d reads days d−27 … d), but not beyond the latest stored day of the
 * shard, so the ripple never reaches days the table does not hold yet. NULL when no row is
 * stored after `to`.
 */
export function rippleEnd(to: string, shard: Shard): Sql {
  return sql`
-- max() is at most to + 27 by the WHERE clause, and NULL when no row is stored there.
select max(f.date)::text as ripple_end
from features_topic_daily f
where f.date > ${to}::date and f.date <= ${to}::date + 27
  and ${inShard(sql`f.user_id`, shard)}`;
}

/**
 * The ripple: recomputes only `improvement` of the rows already stored on the days after a
 * backfill, whose 14-day halves read the days it changed. One set-based UPDATE; only rows
 * whose improvement changes are written (and get the run's timestamp as computed_at). Rows are
 * neither inserted nor deleted and no other column is touched: those days were not backfilled
 * (the nightly run or a wider backfill owns them), so a stored row whose combination has no
 * attempts any more keeps its values.
 *
 * It reuses computeSelect as is, so the index is computed by the one definition the daily run
 * uses (also its exact rounding); the price is that the other aggregates of those days are
 * computed and thrown away, one range scan of the source over ripple days + 27.
 * `work` spans the ripple's days, and the stored rows are matched within them (joined on the
 * key alone, PostgreSQL may hash the whole table); `runTimestamp` is the backfill's.
 */
export function rippleImprovement(work: Work, runTimestamp: string): Sql {
  return sql`
with c as (${computeSelect(work)}),
updated as (
  update features_topic_daily f
  set improvement = c.improvement,
      computed_at = ${runTimestamp}::timestamptz
  from c
  where f.user_id = c.user_id and f.topic_id = c.topic_id and f.date = c.date
    and ${inDays(sql`f.date`, work)}
    and f.improvement is distinct from c.improvement
  returning 1
)
select count(*)::int as updated from updated`;
}
