/** `explain`: how one row is made, term by term; exit 1 when the stored row differs from a recomputation. */
import type { Command } from 'commander';
import type { CommandContext } from '../program/context.js';
import { settingOption } from '../program/options.js';
import { ExitCode } from '../errors.js';
import { inertJson } from '../format.js';
import { explainRow } from '../explain/explain.js';
import { formatExplanation } from '../explain/text.js';

export function registerExplain(program: Command, ctx: CommandContext): void {
  program
    .command('explain')
    .description(
      'show how one row is made: its attempts, median, 14-day halves, theta, improvement terms; stored vs recomputed (exit 1 if they differ)',
    )
    .requiredOption('--user <user_id>', 'the user_id of the row')
    .requiredOption('--topic <topic_id>', 'the topic_id of the row')
    .requiredOption('--date <YYYY-MM-DD>', 'the day of the row')
    .option('--json', 'print one JSON document instead of text')
    .addOption(settingOption('AGG_TIMEZONE'))
    .action(async (opts: { user: string; topic: string; date: string; json?: boolean }) => {
      const config = ctx.config({ date: opts.date });
      const session = await ctx.session(config);
      const explanation = await explainRow(session, config, { user: opts.user, topic: opts.topic, date: opts.date }, ctx.emit);
      if (opts.json) ctx.io.stdout(inertJson(explanation, 2) + '\n');
      else ctx.io.stdout(formatExplanation(explanation).join('\n') + '\n');
      if (explanation.differences.length > 0) ctx.exitCode = ExitCode.failed;
    });
}
