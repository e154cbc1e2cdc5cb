/**
 * Metrics of a writing command (run, backfill): published where configured, on success and on
 * failure alike; a failure to publish is only a warning.
 */
import type { Config } from '../config.js';
import { ExitCode } from '../errors.js';
import { publishMetrics, type RunOutcome } from '../metrics.js';
import { maskPasswords } from '../redact.js';
import { unsharded, type Shard } from '../work.js';
import type { CommandContext } from './context.js';

type Measurable = NonNullable<RunOutcome['counts']> & { window: NonNullable<RunOutcome['window']>; durationMs: number };

async function publish(ctx: CommandContext, config: Config, outcome: RunOutcome): Promise<void> {
  if (config.metrics.pushgatewayUrl === undefined && config.metrics.textfile === undefined) return;
  for (const warning of await publishMetrics(outcome, config.metrics))
    ctx.emit({ type: 'message', level: 'warn', message: maskPasswords(warning, ctx.passwords) });
}

/**
 * Runs a writing command and reports its metrics: the one place where run results become
 * metrics. A result with failed combinations sets exit code 1.
 */
export async function measured<T extends Measurable>(
  ctx: CommandContext,
  config: Config,
  what: { command: RunOutcome['command']; shard: Shard | undefined },
  work: () => Promise<T>,
  extra: (result: T) => Partial<RunOutcome> = () => ({}),
): Promise<T> {
  const started = Date.now();
  const shard = what.shard ?? unsharded;
  let result: T;
  try {
    result = await work();
  } catch (err) {
    await publish(ctx, config, { command: what.command, shard, success: false, durationMs: Date.now() - started, finishedAt: Date.now() });
    throw err;
  }
  await publish(ctx, config, {
    command: what.command,
    shard,
    success: result.failed === 0,
    durationMs: result.durationMs,
    finishedAt: Date.now(),
    counts: result,
    window: result.window,
    ...extra(result),
  });
  if (result.failed > 0) ctx.exitCode = ExitCode.failed;
  return result;
}
