/** `run` (the default command): the daily job for the window ending at --date. */
import { Option, type Command } from 'commander';
import type { CommandContext } from '../program/context.js';
import { measured } from '../program/measured.js';
import { optionalShard, settingOption, wholeNumberOption } from '../program/options.js';
import { runDaily } from '../pipeline/daily.js';
import { withRunRetries } from '../database/retry.js';

interface RunFlags {
  date?: string;
  dryRun?: boolean;
  shard?: string;
  allowShrink?: boolean;
  allowEmptySource?: boolean;
  allowIncomplete?: boolean;
  allowFuture?: boolean;
  maxCatchUpDays: number;
}

export function registerRun(program: Command, ctx: CommandContext): void {
  program
    .command('run', { isDefault: true })
    .description('run the daily job for the window ending at --date (default: yesterday in AGG_TIMEZONE)')
    .option('--date <YYYY-MM-DD>', 'anchor day (the last day of the window)')
    .option('--dry-run', 'compute and compare, write nothing; report would-insert/update/delete counts')
    .option('--shard <i/N>', 'process only shard i of N (students split by a stable hash of user_id)')
    .option(
      '--allow-shrink',
      "let a run whose source lost most of a day's attempts (or all of them) delete that day's rows: a deliberate correction",
    )
    .addOption(new Option('--allow-empty-source', 'the older name of --allow-shrink').hideHelp())
    .option(
      '--allow-incomplete',
      'publish a new day that fell far below the same weekday of the weeks before (a holiday): refused otherwise as incomplete',
    )
    .option('--allow-future', 'accept a --date after today in AGG_TIMEZONE (refused otherwise: such a day has no attempts yet)')
    .addOption(wholeNumberOption('--max-catch-up-days <n>', 'widen the window by at most n days to cover missed runs', 0, 366, 30))
    .addOption(settingOption('AGG_LOOKBACK_DAYS'))
    .addOption(settingOption('AGG_TIMEZONE'))
    .action(async (opts: RunFlags) => {
      const config = ctx.config({ date: opts.date });
      const shard = optionalShard(opts.shard);
      const database = await ctx.database(config);
      const run = () =>
        withRunRetries(database, config.runAttempts, ctx.emit, ctx.io.signal, (session) =>
          runDaily(
            session,
            config,
            {
              date: opts.date,
              dryRun: opts.dryRun ?? false,
              shard,
              allowShrink: opts.allowShrink ?? false,
              allowEmptySource: opts.allowEmptySource ?? false,
              allowIncomplete: opts.allowIncomplete ?? false,
              allowFuture: opts.allowFuture ?? false,
              maxCatchUpDays: opts.maxCatchUpDays,
              runId: ctx.runId,
              signal: ctx.io.signal,
            },
            ctx.events,
          ),
        );
      // A dry run writes nothing, so it has no metrics either.
      if (opts.dryRun) await run();
      else await measured(ctx, { command: 'run', shard }, run);
    });
}
