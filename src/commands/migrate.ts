/** `migrate`: create or upgrade the job's tables. */
import type { Command } from 'commander';
import type { CommandContext } from '../program/context.js';
import { distribute, distributeHint } from '../database/citus.js';
import { migrate } from '../database/migrate.js';

export function registerMigrate(program: Command, ctx: CommandContext): void {
  program
    .command('migrate')
    .description("create or upgrade the job's tables (adopts an existing features_topic_daily without losing rows)")
    .option(
      '--distribute',
      "on a Citus coordinator: distribute the job's tables by user, colocated with the source (which must be distributed by student_id)",
    )
    .action(async (opts: { distribute?: boolean }) => {
      const config = ctx.config();
      const session = await ctx.session(config, { create: true });
      const applied = await migrate(session);
      ctx.emit({
        type: 'message',
        level: 'info',
        message: applied.length === 0 ? 'Schema is up to date; nothing to apply.' : `Applied migrations: ${applied.join(', ')}`,
        fields: { applied },
      });
      if (!opts.distribute) {
        const hint = await distributeHint(session);
        if (hint) ctx.emit({ type: 'message', level: 'info', message: hint });
        return;
      }
      const done = await distribute(session, config.source);
      for (const message of done) ctx.emit({ type: 'message', level: 'info', message: `Citus: ${message}` });
      ctx.emit({
        type: 'message',
        level: 'info',
        message: `Citus: features_topic_daily and the staging tables are distributed and colocated with ${config.source.sql}${done.length === 0 ? ' (nothing to do)' : ''}; the run log and the migrations stay on the coordinator`,
      });
    });
}
