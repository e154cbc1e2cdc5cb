/**
 * The outcome of a writing command (run, backfill), on success and on failure alike, emitted
 * for the metrics (metrics.ts consumes it; a failure to publish is only a warning).
 */
import { ExitCode, HeldBackError } from '../errors.js';
import type { RunOutcome } from '../observe/events.js';
import { unsharded, type Shard } from '../work.js';
import type { CommandContext } from './context.js';

type Measurable = NonNullable<RunOutcome['counts']> & { window: NonNullable<RunOutcome['window']>; durationMs: number };

/**
 * Runs a writing command and emits its outcome: the one place where run results become
 * metrics. Waits for the metrics to be published before returning or rethrowing, so their
 * warnings come before the run's last line. A result with failed combinations sets exit code 1.
 */
export async function measured<T extends Measurable>(
  ctx: CommandContext,
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
    ctx.emit({
      type: 'run_outcome',
      outcome: {
        command: what.command,
        shard,
        success: false,
        durationMs: Date.now() - started,
        finishedAt: Date.now(),
        heldBackDays: err instanceof HeldBackError ? err.days.length : 0,
      },
    });
    await ctx.settled();
    throw err;
  }
  ctx.emit({
    type: 'run_outcome',
    outcome: {
      command: what.command,
      shard,
      success: result.failed === 0,
      durationMs: result.durationMs,
      finishedAt: Date.now(),
      counts: result,
      window: result.window,
      ...extra(result),
    },
  });
  await ctx.settled();
  if (result.failed > 0) ctx.exitCode = ExitCode.failed;
  return result;
}
