/**
 * The frozen description of the work a statement does, shared by every step and command: what
 * is computed and read (the source, the time zone, the theta plan), over which window, for
 * which shard. Statements (sql/) are functions of it; nothing passes parameters by position.
 */
import type { Session } from './database/db.js';
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

/*
 * What differs between the databases a run can be connected to (database/backend.ts implements
 * it), and the shapes its statements read and return. Declared here, beside the work they take,
 * so that the statements (sql/) and the backends import them from one place.
 */

/** How the computation groups the user (`student_id`) and makes the grouped `user_id` text again. */
export interface UserKey {
  group(kind: KeyKind): Sql;
  text(kind: KeyKind): Sql;
}

/** Where a run stages its computed and failed combinations (sql/staging.ts: temporary tables, or on Citus distributed ones). */
export interface Staging {
  /** One row per computed combination, the output table's columns. */
  readonly computed: Sql;
  /** Combinations that could not be computed (user_id, topic_id, date), whose stored rows stay. */
  readonly failed: Sql;
  /**
   * The window's keys compared with its stored rows in one pass (sql/compare.ts), created with
   * `failed`; undefined on Citus, where each statement reads the stored rows shard by shard.
   */
  readonly compared?: Sql | undefined;
  /** Created at the start of each write transaction (the temporary `failed`); none where the tables exist. */
  readonly createInTransaction: readonly Sql[];
  /** Computes the window into `computed`. */
  stageComputed(work: Work): Sql;
  /** Creates `computed` empty for the narrowing path that fills it piece by piece; undefined where it exists. */
  createComputedEmpty(work: Work): Sql | undefined;
  /**
   * Gives the planner statistics of `computed` before the statements that write from it, once
   * the comparison found something to write (a re-run that changes nothing skips it). None on Citus: the distributed
   * staging table is shared by concurrent shard runs, and ANALYZE takes a lock that conflicts
   * with itself until the transaction ends (they would queue).
   */
  readonly analyzeComputed: readonly Sql[];
  /** Empties the tables of the run's own rows before it commits; none for temporary ones (dropped at commit). */
  readonly clear: readonly Sql[];
}

/** What the dry run's statements return: one row of counts (see dryRunCounts). */
export interface DryRunRow extends Omit<Counts, 'failed'> {
  skipped_student_topic_theta: number | null;
  skipped_mirt_ability: number | null;
  stored_rows: number;
  /** The shrink guard's days: the rows and attempts stored, and the attempts the run would leave. */
  days: { date: string; rows: number; stored: number; current: number }[];
}

/** The value columns a difference shows, each as text (NULL stays NULL). */
export const valueColumns = [
  'attempts',
  'correct',
  'avg_time_ms',
  'rt_median',
  'hints',
  'improvement',
  'last_seen_at',
  'theta_estimate',
  'theta_sd',
] as const;
export type ValueColumn = (typeof valueColumns)[number];

/** What verify finds in a window: the counts, and the first differing rows (the sample). */
export interface VerifyCompared {
  expected_rows: number;
  stored_rows: number;
  differs: number;
  missing: number;
  unexpected: number;
  sample: VerifySampleRow[];
}

/** A differing row, its stored and expected values as text (valuesAsText); null where the row is missing. */
export interface VerifySampleRow {
  user_id: string;
  topic_id: string;
  date: string;
  kind: 'differs' | 'missing' | 'unexpected';
  stored: Record<ValueColumn, string | null> | null;
  expected: Record<ValueColumn, string | null> | null;
}

export interface Backend {
  /** Where the run stages its rows, and the statements that create, fill and empty those tables. */
  readonly staging: Staging;
  /** How the computation groups the user. */
  readonly userKey: UserKey;
  /** Throws ConfigError when the theta tables cannot be joined with the computation here. */
  checkThetaTables(session: Session, theta: Pick<ThetaPlan, 'estimates' | 'mirt'>): Promise<void>;
  /** The dry run's counts of `work`, read-only: one row, with the skipped estimates when theta is enabled. */
  dryRunCounts(session: Session, work: Work): Promise<DryRunRow>;
  /** verify's comparison of `work` with the stored rows, read-only, with at most `limit` differing rows shown. */
  compare(session: Session, work: Work, limit: number): Promise<VerifyCompared>;
}
