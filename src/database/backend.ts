/**
 * What differs between the databases a run can be connected to, chosen once at setup
 * (chooseBackend) and carried on the run's computation: the pipeline calls these and never
 * asks which one it has.
 *
 * Two backends: a plain server, and a Citus coordinator whose features_topic_daily is
 * distributed (citus.ts; docs/scale-out.md). PGlite is a plain server here: it runs the same
 * statements as PostgreSQL, and nothing the job does differs on it. A Citus coordinator whose
 * tables are still local is a plain server too.
 */
import type { Session } from './db.js';
import { checkJoinable, detectDistributed } from './citus.js';
import { userByDistributionColumn, userByKey } from '../sql/compute.js';
import { distributedStaging, temporaryStaging } from '../sql/staging.js';
import { verifyCountsDistributed, verifySampleDistributed, verifyWindow, type VerifySampleRow } from '../sql/verify.js';
import { dryRunCounts, dryRunCountsDistributed, dryRunSkipped } from '../sql/write.js';
import type { Backend, DryRunRow, ThetaPlan, VerifyCompared, Work } from '../work.js';

export type { Backend } from '../work.js';

/** A plain PostgreSQL server, or PGlite: temporary staging tables, and each read-only check in one statement. */
export const plainServer: Backend = Object.freeze({
  staging: temporaryStaging,
  userKey: userByKey,
  // Any table can be joined here.
  checkThetaTables: () => Promise.resolve(),
  dryRunCounts: async (session: Session, work: Work) => (await session.query<DryRunRow>(dryRunCounts(work))).rows[0]!,
  compare: async (session: Session, work: Work, limit: number) => (await session.query<VerifyCompared>(verifyWindow(work, limit))).rows[0]!,
});

/**
 * A Citus coordinator whose features_topic_daily is distributed: the computation keeps the
 * distribution column as it is (so Citus pushes it down whole, one task per shard), rows are
 * staged in tables distributed like the output table, the theta tables must be colocated (or
 * reference tables), and the dry run and verify compare per shard.
 */
export const citusCoordinator: Backend = Object.freeze({
  staging: distributedStaging,
  userKey: userByDistributionColumn,
  async checkThetaTables(session: Session, theta: Pick<ThetaPlan, 'estimates' | 'mirt'>) {
    await checkJoinable(session, theta.estimates, 'user_id');
    if (theta.mirt) await checkJoinable(session, theta.mirt, 'user_id');
  },
  async dryRunCounts(session: Session, work: Work) {
    const row = (await session.query<DryRunRow>(dryRunCountsDistributed(work))).rows[0]!;
    if (!work.theta) return row;
    // The skipped estimates are a statement of their own here (the counts stay per shard).
    const skipped = (
      await session.query<{ student_topic_theta: number; mirt_ability: number }>(dryRunSkipped({ ...work, theta: work.theta }))
    ).rows[0]!;
    return { ...row, skipped_student_topic_theta: skipped.student_topic_theta, skipped_mirt_ability: skipped.mirt_ability };
  },
  // The counts per shard, then, only when something differs, the sample.
  async compare(session: Session, work: Work, limit: number) {
    const counts = (await session.query<Omit<VerifyCompared, 'sample'>>(verifyCountsDistributed(work))).rows[0]!;
    if (counts.differs + counts.missing + counts.unexpected === 0) return { ...counts, sample: [] };
    const sample = await session.query<VerifySampleRow>(verifySampleDistributed(work, limit));
    return { ...counts, sample: sample.rows };
  },
});

/**
 * The backend of the database `session` is connected to, looked at once per run: Citus where
 * features_topic_daily is distributed (which also checks the staging tables and sets the
 * session up for concurrent shards, citus.ts), a plain server elsewhere.
 */
export async function chooseBackend(session: Session): Promise<Backend> {
  return (await detectDistributed(session)) ? citusCoordinator : plainServer;
}
