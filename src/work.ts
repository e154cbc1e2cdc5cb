/**
 * The frozen description of the work a statement does, shared by every step and command: what
 * is computed and read (the source, the time zone, the theta plan), over which window, for
 * which shard. Statements (sql/) are functions of it; nothing passes parameters by position.
 */
import type { Backend } from './database/backend.js';
import type { QualifiedName } from './sql/identifiers.js';
import type { Sql } from './sql/tag.js';

/** Shard `index` of `count` (1-based); 1 of 1 is an unsharded run. */
export interface Shard {
  readonly index: number;
  readonly count: number;
}

/** The whole set of students: an unsharded run. */
export const unsharded: Shard = Object.freeze({ index: 1, count: 1 });

/** "2/4": how the run log and the lock messages name a shard. */
export function shardName(shard: Shard): string {
  return `${shard.index}/${shard.count}`;
}

/** The theta tables a run reads and how it uses them; undefined: theta disabled. */
export interface ThetaPlan {
  /** student_topic_theta, the topic-level estimates. */
  readonly estimates: QualifiedName;
  /** mirt_ability, the user-level fallback; undefined when it does not exist. */
  readonly mirt: QualifiedName | undefined;
  /** AGG_IMPROVEMENT_MODE=theta. */
  readonly thetaMode: boolean;
}

/**
 * How a key column of the source (student_id, topic_id) is grouped on, from its type
 * (source.ts): 'text' (text, varchar) as it is; 'native' (uuid, integer types) in its own type,
 * made text once per output row — each value has one text form, so the groups are the same,
 * and no text is built for every attempt read; 'cast' (other string types: char(n), …) cast to
 * text per attempt, as the output compares it.
 */
export type KeyKind = 'text' | 'native' | 'cast';

/** The keys of a computation whose source types are not known: cast, right for every type. */
export const castKeys: Keys = Object.freeze({ student: 'cast', topic: 'cast' });

export interface Keys {
  readonly student: KeyKind;
  readonly topic: KeyKind;
}

/** What a run computes and reads, fixed for the run. */
export interface Computation {
  /** How student_id and topic_id are grouped on; undefined: castKeys. */
  readonly keys?: Keys | undefined;
  /** The attempts relation the statements read: the quoted source, or a wrapper subquery of it. */
  readonly source: Sql;
  /** AGG_TIMEZONE: where days are cut. */
  readonly timezone: string;
  readonly theta: ThetaPlan | undefined;
  /** What differs on the database the run is connected to (database/backend.ts), chosen once at setup. */
  readonly backend: Backend;
}

/** A computation over the days since..anchor (both included) of one shard: what one statement does. */
export interface Work extends Computation {
  readonly since: string;
  readonly anchor: string;
  readonly shard: Shard;
}

/** The frozen work of `computation` over `window` for `shard`. */
export function workOf(computation: Computation, window: { readonly since: string; readonly anchor: string }, shard: Shard): Work {
  return Object.freeze({
    keys: computation.keys,
    source: computation.source,
    timezone: computation.timezone,
    theta: computation.theta,
    backend: computation.backend,
    since: window.since,
    anchor: window.anchor,
    shard,
  });
}

/** Rows by what writing (or dry-running) a window did, or would do, to them. */
export interface RowCounts {
  readonly inserted: number;
  readonly updated: number;
  readonly unchanged: number;
  readonly deleted: number;
}

/** What a window's write did: its combinations, their rows, and those that failed. */
export interface Counts extends RowCounts {
  readonly combinations: number;
  readonly failed: number;
}

/** Counts of nothing, to sum days onto. */
export const noCounts: Counts = Object.freeze({ combinations: 0, inserted: 0, updated: 0, unchanged: 0, deleted: 0, failed: 0 });

/** The sum of two counts. */
export function addCounts(a: Counts, b: Counts): Counts {
  return {
    combinations: a.combinations + b.combinations,
    inserted: a.inserted + b.inserted,
    updated: a.updated + b.updated,
    unchanged: a.unchanged + b.unchanged,
    deleted: a.deleted + b.deleted,
    failed: a.failed + b.failed,
  };
}

/**
 * With theta enabled: the invalid estimates (theta NULL, not finite, or not fitting
 * numeric(6,3) after rounding) in the history of the window's (user, topic) pairs up to the
 * end of the anchor day, by table (mirt_ability: of the window's users; 0 when it does not
 * exist).
 */
export interface SkippedEstimates {
  readonly studentTopicTheta: number;
  readonly mirtAbility: number;
}
