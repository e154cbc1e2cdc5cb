/** `verify`: recompute a window without writing and compare it with the table; exit 1 on drift. */
import type { Command } from 'commander';
import type { CommandContext } from '../program/context.js';
import { optionalChunkDays, optionalShard, wholeNumberOption, settingOption } from '../program/options.js';
import { parseDay } from '../config/index.js';
import { ConfigError, ExitCode } from '../errors.js';
import { runVerify } from '../pipeline/verify.js';
import { withRunRetries } from '../database/retry.js';

interface VerifyFlags {
  date?: string;
  from?: string;
  to?: string;
  shard?: string;
  limit: number;
  chunkDays?: string;
  failOnEmpty?: boolean;
}

/** Either --date or both --from and --to (in order), else a usage error. */
function checkRange(opts: VerifyFlags): void {
  if (opts.date !== undefined && (opts.from !== undefined || opts.to !== undefined)) {
    throw new ConfigError('verify takes either --date or --from and --to, not both');
  }
  if ((opts.from === undefined) !== (opts.to === undefined)) {
    throw new ConfigError('verify --from needs --to (and --to needs --from)');
  }
  if (opts.from !== undefined && opts.to !== undefined) {
    parseDay(opts.from, '--from');
    parseDay(opts.to, '--to');
    if (opts.from > opts.to) throw new ConfigError(`--from ${opts.from} is after --to ${opts.to}: the range must run forwards`);
  }
}

export function registerVerify(program: Command, ctx: CommandContext): void {
  program
    .command('verify')
    .description('recompute a window without writing and compare it with features_topic_daily; list differing rows, exit 1 on drift')
    .option('--date <YYYY-MM-DD>', 'anchor of the window checked (since = anchor - AGG_LOOKBACK_DAYS; default: yesterday)')
    .option('--from <YYYY-MM-DD>', 'first day of an explicit range (with --to, instead of --date)')
    .option('--to <YYYY-MM-DD>', 'last day of an explicit range')
    .option('--shard <i/N>', 'check only shard i of N')
    .addOption(wholeNumberOption('--limit <n>', 'list at most n differing rows', 0, 10_000, 20))
    .option('--fail-on-empty', 'exit 1 when the window has no rows on either side (nothing compared), as a scheduled check should')
    .option('--chunk-days <n>', 'days compared per statement (default: as many as hold at most 12M attempts by estimate, 7 to 366)')
    .addOption(settingOption('AGG_LOOKBACK_DAYS'))
    .addOption(settingOption('AGG_TIMEZONE'))
    .action(async (opts: VerifyFlags) => {
      const config = ctx.config({ date: opts.date });
      checkRange(opts);
      const shard = optionalShard(opts.shard);
      const chunkDays = optionalChunkDays(opts.chunkDays);
      const database = await ctx.database(config);
      const result = await withRunRetries(database, config.runAttempts, ctx.emit, ctx.io.signal, (session) =>
        runVerify(session, config, { date: opts.date, from: opts.from, to: opts.to, shard, limit: opts.limit, chunkDays }, ctx.events),
      );
      if (result.drift || (result.empty && opts.failOnEmpty)) ctx.exitCode = ExitCode.failed;
    });
}
