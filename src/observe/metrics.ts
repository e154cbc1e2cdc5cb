/**
 * Prometheus metrics of a writing run (the daily run and the backfill), built in one place from
 * the run's outcome, then pushed to a Pushgateway (PUSHGATEWAY_URL) and/or written as a
 * node_exporter textfile (METRICS_TEXTFILE). Batch-job style: gauges that describe the last
 * run, and the time of the last success, which is set only by a successful run so that "no
 * success in 26 hours" can be alerted on.
 *
 * Every series carries `command` (run, backfill) and `shard` ("1of1", "2of4": the Pushgateway's
 * URL grouping cannot hold a "/"). The push is a POST, which replaces only the metric families
 * it sends within the group (job, command, shard): a failed run sends no last_success and no
 * counts, so the previous success's values stay. The textfile is merged the same way.
 *
 * A consumer of the run's events: the command emits the outcome (`run_outcome`), this module
 * publishes it.
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import type { Gauge, Registry } from 'prom-client';
import type { MetricsConfig } from '../config/index.js';
import { messageOf } from '../errors.js';
import type { Consumer, RunOutcome } from './events.js';
import type { Shard } from '../work.js';

export type { RunOutcome };

const prefix = 'aggregate_features_';

/** The metric families: name (without prefix), help, and extra label names. */
const families = {
  run_duration_seconds: { help: 'Wall time of the last run, in seconds.', labels: [] },
  run_success: { help: '1 if the last run succeeded, 0 if it failed.', labels: [] },
  last_run_timestamp_seconds: { help: 'When the last run ended (success or failure), unix seconds.', labels: [] },
  last_success_timestamp_seconds: { help: 'When the last successful run ended, unix seconds. Set only on success.', labels: [] },
  combinations_processed: { help: '(user, topic, date) combinations computed by the last run that finished its work.', labels: [] },
  combinations_failed: { help: 'Combinations that failed in the last run that finished its work.', labels: [] },
  rows: {
    help: 'Rows of features_topic_daily by what the last run that finished its work did to them (inserted, updated, unchanged, deleted).',
    labels: ['result'],
  },
  window_start_timestamp_seconds: { help: 'Start of the first day of the last successful window, unix seconds.', labels: [] },
  window_end_timestamp_seconds: { help: 'End of the last day (anchor) of the last successful window, unix seconds.', labels: [] },
  ripple_rows_updated: { help: "Rows whose improvement the last backfill's ripple recomputed to a new value.", labels: [] },
  held_back_days: { help: 'Days the last run refused to publish (incomplete newest day or shrunk day).', labels: [] },
} as const satisfies Record<string, { help: string; labels: readonly string[] }>;
type Family = keyof typeof families;

/** The value of the `shard` label: "1of1", "2of4". */
export function shardLabel(shard: Shard): string {
  return `${shard.index}of${shard.count}`;
}

/** One sample: family, labels (command, shard and its own), value. */
interface Sample {
  readonly family: Family;
  readonly labels: Record<string, string>;
  readonly value: number;
}

/** The samples of an outcome: what this run has to say, and nothing it does not know. */
export function outcomeSamples(outcome: RunOutcome): Sample[] {
  const base = { command: outcome.command, shard: shardLabel(outcome.shard) };
  const samples: Sample[] = [];
  const add = (family: Family, value: number, extra: Record<string, string> = {}) =>
    samples.push({ family, labels: { ...base, ...extra }, value });
  const seconds = outcome.finishedAt / 1000;
  add('run_duration_seconds', outcome.durationMs / 1000);
  add('run_success', outcome.success ? 1 : 0);
  add('last_run_timestamp_seconds', seconds);
  if (outcome.success) add('last_success_timestamp_seconds', seconds);
  if (outcome.counts) {
    const c = outcome.counts;
    add('combinations_processed', c.combinations);
    add('combinations_failed', c.failed);
    for (const result of ['inserted', 'updated', 'unchanged', 'deleted'] as const) add('rows', c[result], { result });
  }
  if (outcome.success && outcome.window) {
    add('window_start_timestamp_seconds', outcome.window.startsAt);
    add('window_end_timestamp_seconds', outcome.window.endsAt);
  }
  if (outcome.rippleUpdated !== undefined) add('ripple_rows_updated', outcome.rippleUpdated);
  add('held_back_days', outcome.heldBackDays ?? 0);
  return samples;
}

/** prom-client, loaded once a run publishes metrics: loading it was 35 ms of every run's start. */
const promClient = () => import('prom-client');

/** A registry holding `samples`, for the exposition format. */
async function registryOf(samples: readonly Sample[]): Promise<Registry> {
  const prom = await promClient();
  const registry = new prom.Registry();
  const gauges = new Map<Family, Gauge>();
  for (const sample of samples) {
    let gauge = gauges.get(sample.family);
    if (gauge === undefined) {
      const family = families[sample.family];
      gauge = new prom.Gauge({
        name: prefix + sample.family,
        help: family.help,
        labelNames: ['command', 'shard', ...family.labels],
        registers: [registry],
      });
      gauges.set(sample.family, gauge);
    }
    gauge.set(sample.labels, sample.value);
  }
  return registry;
}

/** The outcome in Prometheus' text exposition format. */
export async function exposition(outcome: RunOutcome): Promise<string> {
  return (await registryOf(outcomeSamples(outcome))).metrics();
}

/**
 * Sends the outcome where the configuration says. Never throws: a metrics failure must not fail
 * a run, so each failure comes back as a warning for the log.
 */
export async function publishMetrics(outcome: RunOutcome, config: MetricsConfig): Promise<string[]> {
  const warnings: string[] = [];
  const samples = outcomeSamples(outcome);
  if (config.textfile !== undefined) {
    try {
      await writeTextfile(config.textfile, samples);
    } catch (err) {
      warnings.push(`could not write the metrics textfile ${config.textfile}: ${messageOf(err)}`);
    }
  }
  if (config.pushgatewayUrl !== undefined) {
    try {
      const { Pushgateway } = await promClient();
      const gateway = new Pushgateway(config.pushgatewayUrl, { timeout: 10_000 }, await registryOf(samples));
      await gateway.pushAdd({
        jobName: config.pushgatewayJob,
        groupings: { command: outcome.command, shard: shardLabel(outcome.shard) },
      });
    } catch (err) {
      warnings.push(`could not push metrics to the Pushgateway: ${messageOf(err) || 'request failed'}`);
    }
  }
  return warnings;
}

/**
 * The metrics as a consumer of events: publishes each `run_outcome` where `config` says, and
 * hands each warning (a failed push or write) to `warn`. Does nothing when nothing is configured.
 */
export function metricsConsumer(config: MetricsConfig, warn: (message: string) => void): Consumer {
  return async (event) => {
    if (event.type !== 'run_outcome') return;
    if (config.pushgatewayUrl === undefined && config.textfile === undefined) return;
    for (const warning of await publishMetrics(event.outcome, config)) warn(warning);
  };
}

/**
 * Writes the textfile atomically (a temporary file in the same directory, then rename, so
 * node_exporter never reads half a file), merged with the file it replaces: series of other
 * commands or shards, and families this run does not report (a failed run's last success), are
 * kept. Processes that write the same file at the same moment can lose each other's update:
 * give concurrent shards their own files.
 */
async function writeTextfile(path: string, samples: readonly Sample[]): Promise<void> {
  const mine = new Set(samples.map((s) => groupKey(s.family, s.labels)));
  const kept = readTextfile(path).filter((s) => !mine.has(groupKey(s.family, s.labels)));
  const text = await (await registryOf([...kept, ...samples])).metrics();
  // Not *.prom, so node_exporter ignores it until the rename.
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(temporary, text);
    renameSync(temporary, path);
  } catch (err) {
    rmSync(temporary, { force: true });
    throw err;
  }
}

/** A family's series of one (command, shard): what one run replaces. */
function groupKey(family: Family, labels: Record<string, string>): string {
  return JSON.stringify([family, labels.command, labels.shard]);
}

/** The samples of this job's families in an existing textfile; none if it does not exist. */
function readTextfile(path: string): Sample[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  const samples: Sample[] = [];
  for (const parsed of parseExposition(text)) {
    if (!parsed.name.startsWith(prefix)) continue;
    const family = parsed.name.slice(prefix.length);
    if (!(family in families)) continue;
    // Only series this module could have written: exactly its label names (a gauge refuses others).
    const names: readonly string[] = ['command', 'shard', ...families[family as Family].labels];
    const keys = Object.keys(parsed.labels);
    if (keys.length !== names.length || !names.every((n) => keys.includes(n))) continue;
    samples.push({ family: family as Family, labels: parsed.labels, value: parsed.value });
  }
  return samples;
}

/** Parses the sample lines of the text exposition format (comments and malformed lines are skipped). */
export function parseExposition(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?\s*$/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    const labelPattern = /([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*/g;
    for (const [, key, raw] of (match[2] ?? '').matchAll(labelPattern)) {
      labels[key!] = raw!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    const raw = match[3]!;
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
    if (!Number.isNaN(value) || raw === 'NaN') samples.push({ name: match[1]!, labels, value });
  }
  return samples;
}
