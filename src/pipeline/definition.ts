/**
 * The table's definition (migration 003): the time zone that cuts its days and the improvement
 * mode its rows were computed in. Recorded by the first run that writes; a run with other values
 * would mix two definitions in one table (attempts counted in two days), so it refuses with
 * exit 2 and nothing written. Changing the definition on purpose is a rebuild of the history:
 * `backfill --redefine` over every stored day (docs/operations.md, "Changing the time zone").
 */
import type { Config } from '../config/index.js';
import type { Session } from '../database/db.js';
import { ConfigError } from '../errors.js';
import {
  finishRebuild,
  forgetAllDays,
  readDefinition,
  recordDefinition,
  startOver,
  startRebuild,
  storedSpan,
  tableIsEmpty,
  type DefinitionRow,
} from '../sql/source-memory.js';
import { inTransaction } from '../database/transaction.js';
import type { Shard } from '../work.js';

/** The definition a run computes in. */
function definitionOf(config: Config): { timezone: string; improvementMode: string } {
  return { timezone: config.timezone, improvementMode: config.improvementMode };
}

function rebuildCommand(config: Config, from: string, to: string): string {
  return `AGG_TIMEZONE=${config.timezone} AGG_IMPROVEMENT_MODE=${config.improvementMode} aggregate-features-daily backfill --redefine --from ${from} --to ${to}`;
}

/**
 * Checks the run's definition against the recorded one, and records it when none is (`record`:
 * the run's timestamp; called right before the transaction that writes, so that the one row is
 * not locked for the whole write). ConfigError (exit 2) when they
 * differ, or when a rebuild is unfinished and this run is not that rebuild. An empty table has
 * no definition yet: a writing run records its own and forgets what was remembered of the source
 * (a table emptied on purpose starts over; every shard's memory, since the table is every
 * shard's: a shard whose first write commits meanwhile only loses its memory of that night). Returns whether the table is empty, so the
 * judgement of the source can leave that memory out (the dry run, which forgets nothing).
 */
export async function checkDefinition(
  session: Session,
  config: Config,
  options: { record?: string | undefined; rebuilding?: boolean } = {},
): Promise<{ tableEmpty: boolean }> {
  const wanted = definitionOf(config);
  const stored = (await session.query<DefinitionRow>(readDefinition)).rows[0];
  if ((await session.query<{ empty: boolean }>(tableIsEmpty)).rows[0]!.empty) {
    if (options.record !== undefined && !options.rebuilding) {
      const same =
        stored?.timezone === wanted.timezone && stored.improvement_mode === wanted.improvementMode && stored.rebuild_from === null;
      if (!same) await session.query(startOver({ ...wanted, at: options.record }));
      await session.query(forgetAllDays);
    }
    return { tableEmpty: true };
  }
  if (stored === undefined) {
    if (options.record !== undefined) await session.query(recordDefinition({ ...wanted, at: options.record }));
    return { tableEmpty: false };
  }
  const differs: string[] = [];
  const instead: string[] = [];
  if (stored.timezone !== wanted.timezone) {
    differs.push(`AGG_TIMEZONE=${stored.timezone}`);
    instead.push(`AGG_TIMEZONE=${wanted.timezone}`);
  }
  if (stored.improvement_mode !== wanted.improvementMode) {
    differs.push(`AGG_IMPROVEMENT_MODE=${stored.improvement_mode}`);
    instead.push(`AGG_IMPROVEMENT_MODE=${wanted.improvementMode}`);
  }
  if (differs.length > 0) {
    const span = (await session.query<{ first: string; last: string }>(storedSpan)).rows[0]!;
    throw new ConfigError(
      `features_topic_daily was computed with ${differs.join(' and ')} (recorded ${stored.recorded_at}), not ${instead.join(' and ')}; nothing was written. Set the recorded value${differs.length > 1 ? 's' : ''} back, or rebuild the history in the new definition: ${rebuildCommand(config, span.first, span.last)}`,
    );
  }
  if (stored.rebuild_from !== null && !options.rebuilding) {
    throw new ConfigError(
      `a rebuild of features_topic_daily in AGG_TIMEZONE=${stored.timezone}, AGG_IMPROVEMENT_MODE=${stored.improvement_mode} is unfinished; nothing was written. Finish it first: ${rebuildCommand(config, stored.rebuild_from, stored.rebuild_to!)}`,
    );
  }
  return { tableEmpty: false };
}

/**
 * Starts `backfill --redefine --from --to` (exit 2 when it cannot): when the recorded definition
 * differs from the run's (or a rebuild is unfinished), the range must cover every stored day and
 * the run must be unsharded; then the definition becomes the run's, marked unfinished until
 * finishRedefine, and the memory of the old days is forgotten (they are not the new days). In
 * one transaction. Returns whether a rebuild is under way.
 */
export async function beginRedefine(
  session: Session,
  config: Config,
  options: { from: string; to: string; shard: Shard; at: string },
): Promise<boolean> {
  const stored = (await session.query<DefinitionRow>(readDefinition)).rows[0];
  const wanted = definitionOf(config);
  if (
    stored !== undefined &&
    stored.timezone === wanted.timezone &&
    stored.improvement_mode === wanted.improvementMode &&
    stored.rebuild_from === null
  ) {
    return false;
  }
  if (options.shard.count !== 1) {
    throw new ConfigError('--redefine rebuilds the whole table: run it without --shard');
  }
  const span = (await session.query<{ first: string | null; last: string | null }>(storedSpan)).rows[0]!;
  if (span.first !== null && (options.from > span.first || options.to < span.last!)) {
    throw new ConfigError(
      `--redefine must rebuild every stored day (${span.first}..${span.last}), or the table would hold two definitions: use --from ${span.first < options.from ? span.first : options.from} --to ${span.last! > options.to ? span.last : options.to}`,
    );
  }
  await inTransaction(session, async () => {
    await session.query(startRebuild({ ...wanted, at: options.at, from: options.from, to: options.to }));
    await session.query(forgetAllDays);
  });
  return true;
}

/** Marks the rebuild started by beginRedefine finished: from now on the daily run writes in the new definition. */
export async function finishRedefine(session: Session): Promise<void> {
  await session.query(finishRebuild);
}
