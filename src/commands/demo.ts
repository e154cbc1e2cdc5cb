/** `demo`: generated attempts in an embedded database, the job run on them, the result shown. */
import type { Command } from 'commander';
import type { CommandContext } from '../program/context.js';
import { wholeNumberOption } from '../program/options.js';
import { parseDay } from '../config/index.js';
import { demoNextCommands, demoSummary, runDemo } from '../source/demo.js';

interface DemoFlags {
  dir: string;
  students: number;
  days: number;
  date: string;
}

export function registerDemo(program: Command, ctx: CommandContext): void {
  program
    .command('demo')
    .description('generate realistic attempts in an embedded database, run the job, show the result')
    .option('--dir <directory>', 'embedded database directory', './.data/demo')
    .addOption(wholeNumberOption('--students <n>', 'number of students', 1, 100_000, 2500))
    .addOption(wholeNumberOption('--days <n>', 'days of history', 1, 400, 35))
    .option('--date <YYYY-MM-DD>', "last day of the generated history (the run's anchor)", '2025-11-01')
    .action(async (opts: DemoFlags) => {
      const config = ctx.config({}, { DATABASE_URL: `pglite:${opts.dir}` });
      const { students, days } = opts;
      parseDay(opts.date, '--date');
      const print = (line: string) => ctx.io.stdout(line + '\n');
      print(`[demo] opening the embedded database in ${opts.dir} …`);
      const session = await ctx.session(config, { create: true });
      const result = await runDemo(session, config, { students, days, lastDay: opts.date, print }, ctx.events);
      print(`\n[demo] done: ${demoSummary(result)}`);
      print(`[demo] try next, on this directory (from the project's directory):`);
      for (const command of demoNextCommands(opts.dir, opts.date, result.example)) print(`  ${command}`);
    });
}
