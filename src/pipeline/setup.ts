/**
 * The setup every computing command shares, written once: hold the schema (writers), check it,
 * check the source and the theta tables, apply the session settings, refuse a day after today,
 * take the writer lock (writers). run, backfill, verify and explain go through it.
 */
import type { Config } from '../config/index.js';
import type { Session } from '../database/db.js';
import { ConfigError } from '../errors.js';
import type { Emit } from '../observe/events.js';
import { acquireWriterLock, holdSchema } from '../database/lock.js';
import { checkSchema } from '../database/migrate.js';
import { applySessionSettings } from '../database/session-settings.js';
import { chooseBackend } from '../database/backend.js';
import { checkSource } from '../source/source.js';
import { checkThetaTables } from '../source/theta-tables.js';
import { today } from '../window.js';
import type { Computation, Shard } from '../work.js';

/** A day the command refuses when it lies after today in AGG_TIMEZONE (unless allowed). */
export interface FutureDay {
  readonly day: string;
  /** The refusal's message, given today. */
  readonly refusal: (today: string) => string;
}

export interface SetupOptions {
  /** A writing run of this shard: it holds the schema and takes the shard's writer lock. */
  readonly writes?: { readonly shard: Shard } | undefined;
  readonly refuseFuture?: FutureDay | undefined;
}

/** What the setup made: the run's computation, and the locks to let go of at the end. */
export interface Setup {
  readonly computation: Computation;
  /** Releases the writer lock and the schema hold (never throws). */
  release(): Promise<void>;
}

/**
 * Checks the source's contract (columns and types, exit 2 when broken) and the theta tables
 * when theta is enabled (exit 2 when missing), warns about what the checks found (a missing
 * lookup index, say) and returns what the run computes and reads.
 */
export async function prepareComputation(session: Session, config: Config, emit: Emit): Promise<Computation> {
  const source = await checkSource(session, config.source, { timezone: config.sourceTimezone });
  const theta = config.includeTheta ? await checkThetaTables(session) : undefined;
  const backend = await chooseBackend(session);
  if (theta) await backend.checkThetaTables(session, theta);
  for (const message of [...source.warnings, ...(theta?.warnings ?? [])]) emit({ type: 'message', level: 'warn', message });
  return Object.freeze({
    source: source.relation,
    keys: source.keys,
    timezone: config.timezone,
    theta: theta && { estimates: theta.estimates, mirt: theta.mirt, thetaMode: config.improvementMode === 'theta' },
    backend,
  });
}

/** Runs the shared setup on `session`; on failure, lets go of what it took and rethrows. */
export async function setUp(session: Session, config: Config, emit: Emit, options: SetupOptions = {}): Promise<Setup> {
  const releases: (() => Promise<void>)[] = [];
  const release = async () => {
    for (const undo of releases.reverse().splice(0)) await undo().catch(() => undefined);
  };
  try {
    if (options.writes) releases.push(await holdSchema(session));
    await checkSchema(session);
    const computation = await prepareComputation(session, config, emit);
    await applySessionSettings(session, config);
    if (options.refuseFuture) {
      const current = await today(session, config.timezone);
      if (options.refuseFuture.day > current) throw new ConfigError(options.refuseFuture.refusal(current));
    }
    if (options.writes) releases.push(await acquireWriterLock(session, options.writes.shard.index, options.writes.shard.count));
    return { computation, release };
  } catch (err) {
    await release();
    throw err;
  }
}
