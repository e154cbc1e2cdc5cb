/**
 * `report --html FILE`: the report as one self-contained page (inline CSS and SVG, no script,
 * no network access needed): the verdict and its checks, then charts of coverage per day
 * (users, attempts), theta coverage per day, the distribution of `improvement` over the
 * period, and the durations of the last runs. Readable on a laptop screen: two charts a row.
 */
import { writeFile } from 'node:fs/promises';
import { ConfigError, messageOf } from '../errors.js';
import { displayValue } from '../format.js';
import type { Report } from './collect.js';
import { barChart, escapeXml } from './svg.js';

const statusColor = { OK: '#2e7d32', WARN: '#b26a00', FAIL: '#c62828' } as const;

/** The page's charts, as SVG. */
function charts(report: Report): {
  users: string;
  attempts: string;
  theta: string;
  improvement: string;
  durations: string;
  withoutImprovement: number;
  runsStarted: string;
} {
  const days = [...report.coverage].reverse(); // oldest first, left to right
  const short = (date: string) => date.slice(5);
  const percent = (v: number) => `${Math.round(v)}%`;
  const users = barChart({
    id: 'coverage-users',
    bars: days.map((d) => ({ label: short(d.date), value: d.users, title: `${d.date}: ${d.users} users, ${d.rows} rows` })),
  });
  const attempts = barChart({
    id: 'coverage-attempts',
    color: '#5b8c5a',
    bars: days.map((d) => ({ label: short(d.date), value: d.attempts, title: `${d.date}: ${d.attempts} attempts` })),
  });
  const theta = barChart({
    id: 'theta-coverage',
    color: '#8a63a8',
    max: 100,
    format: percent,
    bars: days.map((d) => {
      const share = d.rows === 0 ? 0 : (100 * d.theta_rows) / d.rows;
      return {
        label: short(d.date),
        value: share,
        title: `${d.date}: ${d.theta_rows} of ${d.rows} rows with theta (${share.toFixed(1)}%)`,
      };
    }),
  });
  const bins = Array.from({ length: 20 }, (_, i) => report.improvement.find((b) => b.bin === i + 1)?.rows ?? 0);
  const withoutImprovement = report.improvement.find((b) => b.bin === null)?.rows ?? 0;
  const improvement = barChart({
    id: 'improvement',
    color: '#c07a2c',
    bars: bins.map((rows, i) => {
      const from = -1 + i / 10;
      return { label: from.toFixed(1), value: rows, title: `${from.toFixed(1)} … ${(from + 0.1).toFixed(1)}: ${rows} rows` };
    }),
  });
  const oldestFirst = [...report.runs].reverse();
  const started = startLabels(oldestFirst.map((r) => displayValue(r.started_at)));
  const runs = oldestFirst.map((r, i) => {
    const outcome = displayValue(r.outcome);
    return {
      label: displayValue(r.command),
      sublabel: started[i]!,
      value: typeof r.duration_s === 'number' ? r.duration_s : 0,
      title: `${displayValue(r.command)} ${displayValue(r.anchor)} started ${displayValue(r.started_at)}: ${outcome}, ${displayValue(r.duration_s)} s`,
      color: outcome === 'success' ? '#2e7d32' : outcome === 'failed' ? '#c62828' : '#888888',
    };
  });
  // A whole row: each bar is labelled with its command and start time, two lines wide.
  const durations = barChart({ id: 'run-durations', bars: runs, format: (v) => `${v.toFixed(1)} s`, width: 1120 });
  return { users, attempts, theta, improvement, durations, withoutImprovement, runsStarted: started.caption };
}

/**
 * The runs' start times (`2025-03-24 10:15:03.12+00`, as the run log prints them) as short as
 * they can be while telling the runs apart: the time of day, with the month and day when the
 * runs span several days, and the seconds when two start in the same minute. The caption says
 * what is left out.
 */
export function startLabels(starts: readonly string[]): string[] & { caption: string } {
  const stamps = starts.map((s) => s.replace(/\.\d+/, ''));
  const days = new Set(stamps.map((s) => s.slice(0, 10)));
  const minutes = stamps.map((s) => s.slice(0, 16));
  const seconds = new Set(minutes).size < minutes.length;
  const zone = stamps[0]?.slice(19) ?? '';
  const labels = stamps.map((s) => `${days.size > 1 ? `${s.slice(5, 10)} ` : ''}${s.slice(11, seconds ? 19 : 16)}`);
  const on = days.size === 1 ? ` on ${[...days][0]}` : '';
  return Object.assign(labels, { caption: `labelled by command and start time${on}${zone === '' ? '' : ` (UTC${zone})`}` });
}

/** The page as HTML text. */
export function reportPage(report: Report): string {
  const { verdict, period } = report;
  const { users, attempts, theta, improvement, durations, withoutImprovement, runsStarted } = charts(report);
  const reasons = verdict.reasons
    .map((r) => `<li class="${r.status.toLowerCase()}"><b>${r.status}</b> ${escapeXml(r.message)}</li>`)
    .join('');
  const notes = report.notes.map((n) => `<p class="note">${escapeXml(n)}</p>`).join('');
  const figure = (title: string, svg: string, caption = '', wide = false) =>
    `<figure${wide ? ' class="wide"' : ''}><figcaption>${escapeXml(title)}</figcaption>${svg}${caption ? `<p class="caption">${escapeXml(caption)}</p>` : ''}</figure>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>features_topic_daily ${escapeXml(verdict.status)} ${escapeXml(period.from)}..${escapeXml(period.to)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px auto;max-width:1200px;padding:0 16px;color:#222}
h1{font-size:20px;margin:0 0 4px}.verdict{display:inline-block;padding:2px 10px;border-radius:4px;color:#fff;background:${statusColor[verdict.status]}}
ul{padding-left:20px}li.fail b{color:${statusColor.FAIL}}li.warn b{color:${statusColor.WARN}}li.ok b{color:${statusColor.OK}}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:16px}
figure{margin:0;border:1px solid #ddd;border-radius:6px;padding:8px}figure.wide{grid-column:1/-1}figcaption{font-weight:600;margin-bottom:4px}
svg.chart{width:100%;height:auto}svg .grid{stroke:#e4e4e4}svg text{font-size:11px;fill:#555}.caption,.note{color:#555;margin:4px 0}
</style></head><body>
<h1><span class="verdict" id="verdict">${escapeXml(verdict.status)}</span> features_topic_daily, ${escapeXml(period.from)} … ${escapeXml(period.to)} (${period.days} days, ${escapeXml(period.timezone)})</h1>
${notes}<ul id="reasons">${reasons}</ul>
<div class="grid2">
${figure('Users per day', users)}
${figure('Attempts per day', attempts)}
${figure('Theta coverage per day (rows with theta_estimate)', theta, report.theta.enabled ? '' : 'AGG_INCLUDE_THETA=false: theta is not computed by this job')}
${figure('Distribution of improvement', improvement, `${withoutImprovement} rows without an improvement (no previous 14 days) are not shown`)}
${figure('Run durations (last runs, oldest first; red: failed)', durations, report.runs.length === 0 ? '' : runsStarted, true)}
</div>
</body></html>
`;
}

/** Writes the page to `file`; a path that cannot be written is a usage error (exit 2). */
export async function writeReportPage(file: string, report: Report): Promise<void> {
  try {
    await writeFile(file, reportPage(report));
  } catch (err) {
    throw new ConfigError(`cannot write --html ${file}: ${messageOf(err)}; choose a writable path`, { cause: err });
  }
}
