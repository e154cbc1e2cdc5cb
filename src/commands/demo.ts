/** `demo`: generated attempts in an embedded database, the job run on them, the result shown. */
import type { Command } from 'commander';
import type { CommandContext } from '../cli/context.js';
import { parseDay } from '../config.js';
import { demoNextCommands, demoSummary, runDemo } from '../demo.js';
import { ConfigError } from '../errors.js';

interface DemoFlags {
  dir: string;
  students: string;
  days: string;
  date: string;
}

export function registerDemo(program: Command, ctx: CommandContext): void {
  program
    .command('demo')
    .description('generate realistic attempts in an embedded database, run the job, show the result')
    .option('--dir <directory>', 'embedded database directory', './.data/demo')
    .option('--students <n>', 'number of students', '2500')
    .option('--days <n>', 'days of history', '35')
    .option('--date <YYYY-MM-DD>', "last day of the generated history (the run's anchor)", '2025-11-01')
    .action(async (opts: DemoFlags) => {
      const config = ctx.config({}, { DATABASE_URL: `pglite:${opts.dir}` });
      const students = Number(opts.students);
      const days = Number(opts.days);
      if (!Number.isInteger(students) || students < 1 || students > 100_000)
        throw new ConfigError('--students must be a whole number from 1 to 100000');
      if (!Number.isInteger(days) || days < 1 || days > 400) throw new ConfigError('--days must be a whole number from 1 to 400');
      parseDay(opts.date, '--date');
      const print = (line: string) => ctx.io.stdout(line + '\n');
      print(`[demo] opening the embedded database in ${opts.dir} …`);
      const session = await ctx.session(config, { create: true });
      const result = await runDemo(session, config, { students, days, lastDay: opts.date, print }, ctx.emit);
      print(`\n[demo] done: ${demoSummary(result)}`);
      print(`[demo] try next, on this directory (from the project's directory):`);
      for (const command of demoNextCommands(opts.dir, opts.date, result.example)) print(`  ${command}`);
    });
}
