/** `import-attempts FILE.csv`: load a CSV into the attempts table. */
import type { Command } from 'commander';
import type { CommandContext } from '../program/context.js';
import { importAttempts } from '../source/import-attempts.js';

export function registerImport(program: Command, ctx: CommandContext): void {
  program
    .command('import-attempts')
    .description('load a CSV (student_id,topic_id,completed_at,correct,response_time_ms,hint_used) into the attempts table')
    .argument('<file>', 'CSV file with a header line')
    .option('--replace', 'empty the table first (in the same transaction)')
    .option(
      '--allow-duplicates',
      "append even when rows equal to the file's are already in the table (refused otherwise: the same file imported twice)",
    )
    .action(async (file: string, opts: { replace?: boolean; allowDuplicates?: boolean }) => {
      const config = ctx.config();
      const table = config.source;
      const rows = await importAttempts(await ctx.session(config, { create: true }), {
        file,
        table,
        replace: opts.replace ?? false,
        allowDuplicates: opts.allowDuplicates ?? false,
        onSkipped: (skipped, firstLine) =>
          ctx.emit({
            type: 'message',
            level: 'warn',
            message: `Skipped ${skipped} rows without a student_id (the first on line ${firstLine}): the job ignores them, and a table distributed by student cannot store them`,
            fields: { skipped, first_line: firstLine },
          }),
      });
      ctx.emit({ type: 'message', level: 'info', message: `Imported ${rows} attempts from ${file} into ${table.sql}`, fields: { rows } });
    });
}
