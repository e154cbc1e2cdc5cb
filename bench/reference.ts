/**
 * The oracle of the benchmark's row checks (issue 14): the rows of days [from, to] by their
 * definition (README, What it computes), day by day, written independently of the job's SQL —
 * no window frames, no shared text. Each day's aggregates come from a plain GROUP BY; each
 * row's 14-day halves are summed from the per-day answered/correct counts of its (student,
 * topic) by an index lookup of the 28 days that end on it. A job's rows are checked against
 * these with EXCEPT ALL both ways (every value column but computed_at and theta).
 */
import type pg from 'pg';

const valueColumns = 'user_id, topic_id, date, attempts, correct, avg_time_ms, rt_median, hints, last_seen_at, improvement';

/**
 * Fills table `bench_expected` (dropped first) with the expected rows of [from, to] of
 * `table`, days in UTC. Returns how many rows.
 */
export async function computeExpected(client: pg.Client, table: string, from: string, to: string): Promise<number> {
  const valid = `student_id is not null and student_id::text <> '' and topic_id is not null and topic_id <> ''`;
  const day = `(completed_at at time zone 'UTC')::date`;
  await client.query('drop table if exists bench_expected, bench_expected_counts');
  await client.query("set work_mem = '512MB'");
  try {
    await client.query(
      `create unlogged table bench_expected_counts as
       select student_id::text as user_id, topic_id, ${day} as day,
              count(correct)::numeric as answered, (count(*) filter (where correct))::numeric as correct
       from "${table}"
       where completed_at >= (($1::date - 27)::timestamp at time zone 'UTC')
         and completed_at <  (($2::date + 1)::timestamp at time zone 'UTC') and ${valid}
       group by 1, 2, 3`,
      [from, to],
    );
    await client.query('create index on bench_expected_counts (user_id, topic_id, day)');
    await client.query('analyze bench_expected_counts');
    const created = await client.query(
      `create unlogged table bench_expected as
       select r.user_id, r.topic_id, r.date, r.attempts, r.correct, r.avg_time_ms, r.rt_median, r.hints, r.last_seen_at,
              (case when h.n_r > 0 and h.n_p > 0 then
                 round(greatest(-1, least(1,
                   ((h.c_r * h.n_p - h.c_p * h.n_r) * least(h.n_r, 30)
                     * (100 * h.n_r * h.n_r - least(50 * h.n_r * h.n_r, 196 * sqrt((h.c_r * (h.n_r - h.c_r) * h.n_r)::numeric(1000, 40)))))
                   / (h.n_r * h.n_p * 3000 * h.n_r * h.n_r))), 3)
               end)::numeric(6,3) as improvement
       from (
         select student_id::text as user_id, topic_id, ${day} as date,
                count(*)::int as attempts,
                (count(*) filter (where correct))::int as correct,
                round(avg(response_time_ms) filter (where response_time_ms >= 0))::int as avg_time_ms,
                round((percentile_cont(0.5) within group (order by response_time_ms) filter (where response_time_ms >= 0))::numeric)::int as rt_median,
                (count(*) filter (where hint_used))::int as hints,
                max(completed_at) as last_seen_at
         from "${table}"
         where completed_at >= ($1::date::timestamp at time zone 'UTC')
           and completed_at <  (($2::date + 1)::timestamp at time zone 'UTC') and ${valid}
         group by 1, 2, 3
       ) r
       cross join lateral (
         select coalesce(sum(c.answered) filter (where c.day > r.date - 14), 0) as n_r,
                coalesce(sum(c.correct)  filter (where c.day > r.date - 14), 0) as c_r,
                coalesce(sum(c.answered) filter (where c.day <= r.date - 14), 0) as n_p,
                coalesce(sum(c.correct)  filter (where c.day <= r.date - 14), 0) as c_p
         from bench_expected_counts c
         where c.user_id = r.user_id and c.topic_id = r.topic_id and c.day between r.date - 27 and r.date
       ) h`,
      [from, to],
    );
    await client.query('drop table bench_expected_counts');
    await client.query('analyze bench_expected');
    return created.rowCount ?? 0;
  } finally {
    await client.query('reset work_mem');
  }
}

/**
 * Rows of features_topic_daily on [from, to] that differ from bench_expected's (both ways,
 * counted with multiplicity): 0 = the job wrote exactly the expected rows.
 */
export async function countDiffering(client: pg.Client, from: string, to: string): Promise<number> {
  const r = await client.query<{ n: string }>(
    `select count(*) as n from (
       (select ${valueColumns} from features_topic_daily where date between $1::date and $2::date
        except all
        select ${valueColumns} from bench_expected where date between $1::date and $2::date)
       union all
       (select ${valueColumns} from bench_expected where date between $1::date and $2::date
        except all
        select ${valueColumns} from features_topic_daily where date between $1::date and $2::date)
     ) d`,
    [from, to],
  );
  return Number(r.rows[0]!.n);
}
