/**
 * The night `report` expects to be written, and the newest night each shard's successful
 * writing runs have covered. Read-only; the verdict (report/night.ts) compares the two.
 */
import { currentShards } from './report.js';
import { raw, sql, type Sql } from './tag.js';

/** What the newest-night check needs to know. */
export interface NightRequest {
  /** The zone days are cut in (AGG_TIMEZONE). */
  readonly timezone: string;
  /** Hours after a night ends before its run is expected to have finished (AGG_REPORT_NIGHT_GRACE_HOURS). */
  readonly graceHours: number;
  /** The report's --date: the night to check when it is older than the expected one. */
  readonly date: string | undefined;
}

/**
 * One row per shard of the current layout (the shard count of the newest nightly run, as in
 * `runHealth`): the expected night, and the newest night its successful runs and backfills
 * covered completely. A run covers the days up to its anchor, but only those that had ended
 * when it finished: a run anchored on a day that was still going (`--date` today) covers the
 * day before. The expected night is yesterday in the zone once the grace hours of today have
 * passed (the day before yesterday until then), or --date when that is older. Both by the
 * database's clock, as the run log's timestamps are.
 */
export function nightCoverage(request: NightRequest): Sql {
  return sql`
with ${raw(currentShards)},
expected as (
  select least(((now() - make_interval(hours => ${request.graceHours}::int)) at time zone ${request.timezone})::date - 1,
               coalesce(${request.date ?? null}::date, 'infinity'::date)) as night
)
select e.night::text as expected_night, s.shard,
       c.covered::text as covered_through, (c.covered + 1)::text as first_missing, c.anchor::text as anchor, c.finished_at::text as finished_at
from expected e
cross join shards s
left join lateral (
  select least(anchor, (finished_at at time zone ${request.timezone})::date - 1) as covered, anchor, finished_at
  from aggregate_features_runs
  where shard = s.shard and command in ('run', 'backfill') and outcome = 'success' and finished_at is not null
  order by covered desc, finished_at desc
  limit 1
) c on true
order by s.shard`;
}
