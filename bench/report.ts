/**
 * The report: one markdown table of every measurement, the machine, the command and the date,
 * and the issue's targets checked against the largest size measured. Written to bench/out/ and,
 * for a full run, into the marked results block of BENCHMARKS.md.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { Options } from './options.js';
import { quietSummary } from './quiet.js';
import type { SizeResult, Measured } from './scenarios.js';

export interface Machine {
  readonly cores: number;
  readonly memoryGiB: number;
  readonly cpu: string;
  readonly postgres: string;
  readonly settings: Record<string, string>;
  readonly node: string;
  readonly rssMethod: string;
  /** The commit of the job measured. */
  readonly source: string;
}

const marker = (block: string, end: 'start' | 'end') => `<!-- bench:${block}:${end} -->`;

const fmt = (value: number | undefined, digits = 2) => (value === undefined || !Number.isFinite(value) ? '' : value.toFixed(digits));
const int = (value: number | undefined) =>
  value === undefined || !Number.isFinite(value) ? '' : Math.round(value).toLocaleString('en-US');

function line(m: Measured, baselineRowsPerSecond: number | undefined): string {
  const rowsPerSecond = m.rows !== undefined && m.wallMs !== undefined ? m.rows / (m.wallMs / 1000) : undefined;
  const isJob = m.scenario.startsWith('job');
  const ratio = m.floorMs !== undefined && m.wallMs !== undefined && m.scenario.startsWith('job') ? m.wallMs / m.floorMs : undefined;
  const speedUp = isJob && rowsPerSecond !== undefined && baselineRowsPerSecond ? rowsPerSecond / baselineRowsPerSecond : undefined;
  const honestRatio = m.honestFloorMs !== undefined && m.wallMs !== undefined && isJob ? m.wallMs / m.honestFloorMs : undefined;
  const cpuRatio = isJob && m.cpuMs !== undefined && m.floorCpuMs !== undefined ? m.cpuMs / m.floorCpuMs : undefined;
  const s = (ms: number | undefined) => fmt(ms === undefined ? undefined : ms / 1000);
  return `| ${m.size} | ${m.scenario} | ${int(m.windowAttempts)} | ${int(m.rows)} | ${s(m.wallMs)} | ${s(m.jobMs)} | ${int(rowsPerSecond)} | ${fmt(ratio)} | ${fmt(honestRatio)} | ${s(m.cpuMs)} | ${fmt(cpuRatio)} | ${speedUp === undefined ? '' : `${int(speedUp)}×`} | ${fmt(m.rssMb, 0)} | ${m.note ?? ''} |`;
}

interface Target {
  readonly name: string;
  readonly measured: string;
  readonly met: boolean | undefined;
}

function targets(results: SizeResult[]): Target[] {
  const largest = results.at(-1);
  if (!largest) return [];
  const label = largest.size.label;
  const floor = largest.floor7?.floorMs;
  const first = largest.first;
  const rerun = largest.rerun;
  const late = largest.late;
  const out: Target[] = [];
  // The honest floor's ratio beside the old one (honest-floor.ts); the targets stay on the old floor.
  const honest = (scenario: string, wallMs: number) => {
    const h = largest.lines.find((m) => m.scenario === scenario)?.honestFloorMs;
    return h === undefined ? '' : `; × honest floor ${(wallMs / h).toFixed(2)}`;
  };
  if (first && floor)
    out.push({
      name: `first run at ${label} within 1.5× floor`,
      measured: `${(first.wallMs / floor).toFixed(2)}× (${fmt(first.wallMs / 1000)} s vs ${fmt(floor / 1000)} s)${honest('job: first run, empty target (lookback 7)', first.wallMs)}`,
      met: first.wallMs <= 1.5 * floor,
    });
  if (rerun && floor)
    out.push({
      name: `re-run, no new data, at ${label} within 1.2× floor`,
      measured: `${(rerun.wallMs / floor).toFixed(2)}× (${fmt(rerun.wallMs / 1000)} s)${honest('job: re-run, no new data', rerun.wallMs)}`,
      met: rerun.wallMs <= 1.2 * floor,
    });
  if (late && first)
    out.push({
      name: `late-data re-run at ${label} no slower than the first run`,
      measured: `${fmt(late.wallMs / 1000)} s vs ${fmt(first.wallMs / 1000)} s`,
      met: late.wallMs <= first.wallMs,
    });
  if (first && largest.baseline) {
    const speedUp = first.rows / (first.wallMs / 1000) / largest.baseline.rowsPerSecond;
    out.push({
      name: `≥ 100× the rows/s of the per-combination baseline (${label}, baseline with its best index)`,
      measured: `${int(speedUp)}×`,
      met: speedUp >= 100,
    });
  }
  if (first && largest.baselineNoIndex) {
    const speedUp = first.rows / (first.wallMs / 1000) / largest.baselineNoIndex.rowsPerSecond;
    out.push({
      name: `≥ 100× the rows/s of the per-combination baseline (${label}, on the source's attempt(completed_at) index only)`,
      measured: `${int(speedUp)}×`,
      met: speedUp >= 100,
    });
  }
  const rss = results.flatMap((r) => r.lines.filter((m) => m.scenario.startsWith('job') && m.rssMb !== undefined).map((m) => m.rssMb!));
  if (rss.length > 0)
    out.push({
      name: 'Node peak RSS < 150 MB against the server, every size',
      measured: `max ${Math.max(...rss).toFixed(0)} MB`,
      met: Math.max(...rss) < 150,
    });
  if (largest.shards && first) {
    const speedUp = first.wallMs / largest.shards.wallMs;
    out.push({
      name: `2 shards ≥ 1.5× faster than one (${label})`,
      measured: `${speedUp.toFixed(2)}× (${fmt(largest.shards.wallMs / 1000)} s vs ${fmt(first.wallMs / 1000)} s)`,
      met: speedUp >= 1.5,
    });
  }
  if (largest.serialShards) {
    const { wallMs, unshardedMs } = largest.serialShards;
    const speedUp = unshardedMs / wallMs;
    out.push({
      name: `2 shards ≥ 1.5× faster than one, both without parallel workers (${label})`,
      measured: `${speedUp.toFixed(2)}× (${fmt(wallMs / 1000)} s vs ${fmt(unshardedMs / 1000)} s)`,
      met: speedUp >= 1.5,
    });
  }
  const withFirst = results.filter((r) => r.first && r.floor7);
  if (withFirst.length >= 2) {
    const a = withFirst[0]!;
    const b = withFirst.at(-1)!;
    const perAttempt = (r: SizeResult) =>
      r.first!.wallMs / (r.lines.find((m) => m.scenario.startsWith('job: first run, empty'))?.windowAttempts ?? NaN);
    const growth = perAttempt(b) / perAttempt(a);
    out.push({
      name: 'time grows no worse than linearly with the window’s attempts',
      measured: `time per window attempt ${a.size.label} → ${b.size.label}: ×${growth.toFixed(2)}`,
      met: growth <= 1.1,
    });
  }
  return out;
}

/** The results block: machine, command, date, the table and the targets. */
export function renderResults(results: SizeResult[], machine: Machine, command: string, options: Options): string {
  const { reps, workMem } = options;
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const s = machine.settings;
  const rows = results.flatMap((r) => r.lines.map((m) => line(m, r.baseline?.rowsPerSecond)));
  const t = targets(results);
  const variants = results.flatMap((r) => {
    const shipped = r.variants?.[0]?.ms;
    return (r.variants ?? []).map(
      (v) =>
        `| ${r.size.label} | ${v.name} | ${fmt(v.ms / 1000)} | ${shipped ? fmt(shipped / v.ms) : ''} | ${fmt(v.cpuMs / 1000)} | ${int(v.rows)} | ${v.differing === 0 ? 'yes' : `**no: ${v.differing} rows differ**`} |`,
    );
  });
  return [
    marker('results', 'start'),
    `Measured ${date} with \`${command}\` on ${machine.source}.`,
    '',
    `Machine: ${machine.cores} cores (\`nproc\`), ${machine.memoryGiB} GiB RAM, ${machine.cpu}; PostgreSQL ${machine.postgres} on the same machine ` +
      `(shared_buffers ${s.shared_buffers}, max_parallel_workers_per_gather ${s.max_parallel_workers_per_gather}, jit ${s.jit}, synchronous_commit ${s.synchronous_commit}); Node ${machine.node}. ` +
      `Job and floor session: work_mem ${workMem}. Wall time is the median of ${reps} runs, from spawning the CLI to its exit (warm cache); "job s" is the Summary line's duration_ms. ` +
      `Peak RSS: ${machine.rssMethod}. "CPU s" is the CPU time of the work (the job: its Node process plus its PostgreSQL backends and parallel workers, from /proc; the floor: its backends), the median; ` +
      `other load on the machine inflates it far less than wall time. ` +
      `"× floor" divides by the floor as PostgreSQL plans it (reads only); "× honest floor" by the honest floor: each floor statement under the fastest of PostgreSQL's plan, hash aggregation off and sorts off, ` +
      `plus an INSERT of the job's rows into an empty copy of features_topic_daily with its indexes (first runs, backfills) or one scan of the window's stored rows (re-runs, verify). ${quietSummary()}`,
    '',
    '| size | scenario | attempts in window | rows | wall s | job s | rows/s | × floor | × honest floor | CPU s | × floor CPU | × baseline rows/s | Node peak RSS MB | notes |',
    '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|',
    ...rows,
    '',
    ...(t.length === 0
      ? []
      : [
          'The performance targets (largest size measured):',
          '',
          '| target | measured | met |',
          '|---|---|---|',
          ...t.map((x) => `| ${x.name} | ${x.measured} | ${x.met === undefined ? '?' : x.met ? 'yes' : '**no**'} |`),
          '',
        ]),
    ...(variants.length === 0
      ? []
      : [
          'Compute statement variants (bench/variants.ts): creating the temporary agg_computed alone (CREATE TABLE … AS, as the job does, unless the variant says INSERT … SELECT), lookback 7, unsharded, median; "same rows" compares with the shipped statement (EXCEPT ALL both ways).',
          '',
          '| size | variant | s | speed-up | CPU s | rows | same rows |',
          '|---|---|--:|--:|--:|--:|---|',
          ...variants,
          '',
        ]),
    ...results.flatMap((r) =>
      (r.equivalence ?? []).length === 0
        ? []
        : [
            `Shipped vs first-release rows (${r.size.label}; union of the shipped statement's shards against the first release's unsharded statement): ` +
              r
                .equivalence!.map(
                  (e) => `${e.label}: ${int(e.rows)} rows, ${e.differing === 0 ? 'identical' : `**${e.differing} differ**`}`,
                )
                .join('; ') +
              '.',
            '',
          ],
    ),
    marker('results', 'end'),
  ].join('\n');
}

/** Replaces the results block of BENCHMARKS.md, or appends it. */
export function writeResultsIntoDocs(path: string, block: string, name = 'results'): void {
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n';
  const start = text.indexOf(marker(name, 'start'));
  const end = text.indexOf(marker(name, 'end'));
  const next =
    start >= 0 && end > start
      ? text.slice(0, start) + block + text.slice(end + marker(name, 'end').length)
      : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(path, next);
}
