/** `migrate`: create or upgrade the job's tables. */
import type { Command } from 'commander';
import type { CommandContext } from '../cli/context.js';
import { migrate } from '../migrate.js';

export function registerMigrate(program: Command, ctx: CommandContext): void {
  program
    .command('migrate')
    .description("create or upgrade the job's tables (adopts an existing features_topic_daily without losing rows)")
    .action(async () => {
      const config = ctx.config();
      const applied = await migrate(await ctx.session(config, { create: true }));
      ctx.emit({
        type: 'message',
        level: 'info',
        message: applied.length === 0 ? 'Schema is up to date; nothing to apply.' : `Applied migrations: ${applied.join(', ')}`,
        fields: { applied },
      });
    });
}
