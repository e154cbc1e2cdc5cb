/** `backfill`: recompute the days --from..--to, each in its own transaction, then the ripple. */
import { Option, type Command } from 'commander';
import type { CommandContext } from '../program/context.js';
import { measured } from '../program/measured.js';
import { optionalChunkDays, optionalShard, wholeNumberOption, settingOption } from '../program/options.js';
import { parseDay } from '../config/index.js';
import { checkBackfillRange, defaultMaxDays, runBackfill } from '../pipeline/backfill.js';
import { barProgress, lineProgress, progressConsumer } from '../observe/progress.js';
import { withRunRetries } from '../database/retry.js';

interface BackfillFlags {
  from: string;
  to: string;
  shard?: string;
  allowFuture?: boolean;
  maxDays: number;
  allowShrink?: boolean;
  allowEmptySource?: boolean;
  allowIncomplete?: boolean;
  redefine?: boolean;
  progressInterval: number;
  chunkDays?: string;
}

export function registerBackfill(program: Command, ctx: CommandContext): void {
  program
    .command('backfill')
    .description(
      'recompute the days --from..--to, a chunk of days per transaction (resumable: re-run the same command), then the improvement of the 27 days after them',
    )
    .requiredOption('--from <YYYY-MM-DD>', 'first day to recompute')
    .requiredOption('--to <YYYY-MM-DD>', 'last day to recompute (not after today in AGG_TIMEZONE, unless --allow-future)')
    .option('--shard <i/N>', 'process only shard i of N (students split by a stable hash of user_id)')
    .option('--allow-future', 'accept a range that ends after today')
    .addOption(wholeNumberOption('--max-days <n>', 'refuse ranges longer than n days', 1, 36_600, defaultMaxDays))
    .option('--allow-shrink', "let a day whose source lost most of its attempts (or all of them) delete that day's rows")
    .addOption(new Option('--allow-empty-source', 'the older name of --allow-shrink').hideHelp())
    .option('--allow-incomplete', 'publish a new day that fell far below the same weekday of the weeks before (a holiday)')
    .option(
      '--redefine',
      'rebuild the history in the current AGG_TIMEZONE and AGG_IMPROVEMENT_MODE when they differ from the recorded ones (the range must cover every stored day)',
    )
    .option('--chunk-days <n>', 'days computed per statement (default: as many as hold at most 12M attempts by estimate, 7 to 366)')
    .addOption(
      wholeNumberOption(
        '--progress-interval <seconds>',
        'seconds between progress lines when stderr is not a terminal (0: every day)',
        0,
        86_400,
        10,
      ),
    )
    .addOption(settingOption('AGG_TIMEZONE'))
    .action(async (opts: BackfillFlags) => {
      const config = ctx.config();
      parseDay(opts.from, '--from');
      parseDay(opts.to, '--to');
      const maxDays = opts.maxDays;
      const intervalMs = opts.progressInterval * 1000;
      const shard = optionalShard(opts.shard);
      const chunkDays = optionalChunkDays(opts.chunkDays);
      checkBackfillRange(opts.from, opts.to, maxDays);
      const progress =
        ctx.io.progressTerminal !== undefined && config.logFormat === 'text' && !config.debug
          ? barProgress(ctx.io.progressTerminal)
          : lineProgress(ctx.emit, intervalMs);
      // First, so that the bar ends its line before the log writes one below it.
      const stopProgress = ctx.events.subscribe(progressConsumer(progress), { first: true });
      try {
        const database = await ctx.database(config);
        const backfill = () =>
          withRunRetries(database, config.runAttempts, ctx.emit, ctx.io.signal, (session) =>
            runBackfill(
              session,
              config,
              {
                from: opts.from,
                to: opts.to,
                shard,
                allowFuture: opts.allowFuture ?? false,
                maxDays,
                allowShrink: opts.allowShrink ?? false,
                allowEmptySource: opts.allowEmptySource ?? false,
                allowIncomplete: opts.allowIncomplete ?? false,
                redefine: opts.redefine ?? false,
                runId: ctx.runId,
                chunkDays,
                signal: ctx.io.signal,
              },
              ctx.events,
            ),
          );
        await measured(ctx, { command: 'backfill', shard }, backfill, (result) => ({ rippleUpdated: result.ripple?.updated ?? 0 }));
      } finally {
        stopProgress();
        progress.stop();
      }
    });
}
