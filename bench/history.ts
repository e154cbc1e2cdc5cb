/**
 * The target as it is after a year in production (scenario `history`): features_topic_daily
 * holds the window's rows plus 45 earlier 8-day blocks of them (a year of days, ~45× the
 * window's rows), and the job re-runs with no new data. The statements that look at the
 * window's stored rows (stale-row deletion, the stored count, the dry run) filter on `date`
 * alone, which is the second column of the (user_id, date) and (topic_id, date) indexes: they
 * scan a whole index, so their cost grows with the table's history instead of the window. The
 * re-run is measured as is and with an index on (date).
 */
import type pg from 'pg';
import { anchorDay } from './dataset.js';
import { explainRun } from './explain.js';
import { jobEnv, runCli } from './job.js';
import type { Context, Measured, Summary } from './scenarios.js';
import { resetTarget, summarize } from './scenarios.js';
import { addDays, repeat } from './stats.js';

export const historyBlocks = 45;
const dateIndex = 'bench_features_date_idx';

async function fillHistory(client: pg.Client): Promise<number> {
  const result = await client.query(
    `insert into features_topic_daily
       (user_id, topic_id, date, attempts, correct, avg_time_ms, hints, theta_estimate, theta_sd, rt_median, improvement, last_seen_at, computed_at)
     select user_id, topic_id, date - 8 * k, attempts, correct, avg_time_ms, hints, theta_estimate, theta_sd, rt_median, improvement,
            last_seen_at - make_interval(days => 8 * k), computed_at
     from features_topic_daily, generate_series(1, $1::int) k`,
    [historyBlocks],
  );
  await client.query('vacuum analyze features_topic_daily');
  return result.rowCount ?? 0;
}

/** Runs the history scenario; returns its report lines and hands the plans to `explain`. */
export async function runHistory(
  ctx: Context,
  floor: { floorMs?: number | undefined; floorCpuMs?: number | undefined },
  explain: (title: string, plan: string) => void,
): Promise<Measured[]> {
  const { options, client, size, log } = ctx;
  const env = jobEnv(ctx.databaseUrl, { lookbackDays: 7, workMem: options.workMem });
  const window = { since: addDays(anchorDay, -7), anchor: anchorDay };
  const args = ['--date', anchorDay];
  await resetTarget(client);
  await runCli(options.cli, args, env);
  const added = await fillHistory(client);
  const lines: Measured[] = [];
  const measure = async (label: string): Promise<Summary> => {
    if (options.scenarios.has('explain')) {
      explain(label, await explainRun(client, options.cli, window, options.workMem, { includeFloor: false }));
    }
    return summarize(
      await repeat(
        options.reps,
        () => Promise.resolve(),
        () => runCli(options.cli, args, env, { monitor: ctx.monitor, database: ctx.database }),
      ),
    );
  };
  try {
    const plain = await measure(`re-run, target with ${historyBlocks} more 8-day blocks of history`);
    await client.query(`create index ${dateIndex} on features_topic_daily (date)`);
    await client.query('analyze features_topic_daily');
    const indexed = await measure(`re-run, target with history and an index on (date)`);
    log(
      `  history (${added} more rows): re-run ${(plain.wallMs / 1000).toFixed(2)} s; with a (date) index ${(indexed.wallMs / 1000).toFixed(2)} s`,
    );
    for (const [name, s] of [
      [`job: re-run, no new data, target holding a year (+${added.toLocaleString('en-US')} rows)`, plain],
      ['job: the same with an index on features_topic_daily(date)', indexed],
    ] as const) {
      lines.push({
        size: size.label,
        scenario: name,
        rows: s.rows,
        wallMs: s.wallMs,
        jobMs: s.jobMs,
        ...floor,
        cpuMs: s.cpuMs,
        rssMb: s.rssMb,
      });
    }
  } finally {
    await client.query(`drop index if exists ${dateIndex}`);
    await resetTarget(client);
  }
  return lines;
}
