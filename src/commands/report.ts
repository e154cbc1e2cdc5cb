/** `report`: the verdict, coverage, theta, recent rows and last runs (text, --json or --html). */
import type { Command } from 'commander';
import type { CommandContext } from '../program/context.js';
import { wholeNumber, wholeNumberOption, settingOption } from '../program/options.js';
import { ConfigError, ExitCode } from '../errors.js';
import { inertJson } from '../format.js';
import { collectReport } from '../report/collect.js';
import { writeReportPage } from '../report/html.js';
import { formatReport } from '../report/text.js';

interface ReportFlags {
  days: number;
  date?: string;
  limit: number;
  json?: boolean;
  html?: string;
  check?: boolean;
  failOnWarn?: boolean;
  width?: string;
}

export function registerReport(program: Command, ctx: CommandContext): void {
  program
    .command('report')
    .description(
      'a verdict (OK/WARN/FAIL with reasons), coverage per day with bars, theta coverage, recent rows and the last runs (or --json, --html FILE)',
    )
    .addOption(wholeNumberOption('--days <n>', 'days covered, ending at --date', 1, 366, 7))
    .option('--date <YYYY-MM-DD>', 'last day covered (default: yesterday in AGG_TIMEZONE, or the newest day with rows)')
    .addOption(wholeNumberOption('--limit <n>', 'rows listed in the recent-rows and last-runs sections', 0, 1000, 10))
    .option('--json', 'print one JSON document instead of tables')
    .option('--html <file>', 'also write a self-contained HTML page with charts to <file>')
    .option('--check', 'exit 1 when the verdict is FAIL (for a monitoring probe)')
    .option('--fail-on-warn', 'with --check: exit 1 on WARN too')
    .option('--width <n>', 'line width of the text (default: the terminal width, else 100)')
    .addOption(settingOption('AGG_TIMEZONE'))
    .action(async (opts: ReportFlags) => {
      const config = ctx.config({ date: opts.date });
      const { days, limit } = opts;
      const width = opts.width === undefined ? (ctx.io.columns ?? 100) : wholeNumber(opts.width, '--width', 40, 1000);
      if (opts.failOnWarn && !opts.check) throw new ConfigError('--fail-on-warn needs --check');
      const report = await collectReport(await ctx.session(config), config, { days, date: opts.date, limit });
      if (opts.json) ctx.io.stdout(inertJson(report, 2) + '\n');
      else ctx.io.stdout(formatReport(report, width).join('\n') + '\n');
      if (opts.html !== undefined) {
        await writeReportPage(opts.html, report);
        ctx.emit({ type: 'message', level: 'info', message: `Wrote the report page to ${opts.html}` });
      }
      const status = report.verdict.status;
      if (opts.check && (status === 'FAIL' || (status === 'WARN' && opts.failOnWarn))) ctx.exitCode = ExitCode.failed;
    });
}
