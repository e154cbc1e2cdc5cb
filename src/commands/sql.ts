/** `sql "select …"`: one reading statement, printed as an aligned table or JSON. */
import type { Command } from 'commander';
import type { CommandContext } from '../program/context.js';
import { formatTable, inertJson } from '../format.js';
import { runReadOnly } from '../query/read-only-query.js';
import { checkReadingStatement } from '../query/reading-statement.js';

export function registerSql(program: Command, ctx: CommandContext): void {
  program
    .command('sql')
    .description(
      'run one reading statement (select, with, values, table, explain) read-only, bounded by AGG_SQL_TIMEOUT_MS, and print an aligned table',
    )
    .argument('<statement>', 'one SQL statement, e.g. "select count(*) from features_topic_daily"')
    .option('--json', 'print the rows as a JSON array')
    .action(async (statement: string, opts: { json?: boolean }) => {
      const config = ctx.config();
      // Refused before anything is sent, before even connecting.
      checkReadingStatement(statement);
      const result = await runReadOnly(await ctx.session(config), config, statement);
      const count = `(${result.rows.length} ${result.rows.length === 1 ? 'row' : 'rows'})`;
      if (opts.json) ctx.io.stdout(inertJson(result.rows, 2) + '\n');
      else ctx.io.stdout([...formatTable(result.rows, result.columns), count].join('\n') + '\n');
    });
}
