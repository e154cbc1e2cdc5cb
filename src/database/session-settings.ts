/**
 * The session settings of every command that computes: memory for sorts and hashes, bounds on
 * every statement and lock wait, JIT only for statements large enough to repay it, and float output as the shortest exact text (the PostgreSQL
 * 12+ default; set because theta read from double precision columns is taken as that text,
 * see sql/theta.ts).
 */
import type { Config } from '../config/index.js';
import type { Session } from './db.js';
import {
  checkClientEvery250ms,
  setJitThreshold,
  setLockTimeout,
  setStatementTimeout,
  setWorkMem,
  shortestExactFloats,
} from '../sql/session-settings.js';

/**
 * The planner cost above which the job's statements are JIT-compiled (jit_above_cost and the
 * inlining and optimizing thresholds). Compiling the compute statement took 0.6–0.85 s on an
 * idle machine (3.8 s on a busy one) and made it 14–25 % slower for windows of 0.2–0.7M
 * attempts and no faster at 2.2M (BENCHMARKS.md, JIT); the writes and checks are smaller
 * still, and were compiled too (the server's default threshold is 100,000). A statement
 * estimated above 5M cost units, about half a minute of work here, amortizes a compilation.
 */
export const jitAboveCost = 5_000_000;

/** Applies the settings to `session` for the rest of its life (set_config(…, false)). */
export async function applySessionSettings(session: Session, config: Config): Promise<void> {
  if (config.workMem !== undefined) await session.query(setWorkMem(config.workMem));
  await session.query(setStatementTimeout(config.statementTimeoutMs));
  await session.query(shortestExactFloats);
  await session.query(setLockTimeout(config.lockTimeoutMs));
  for (const name of ['jit_above_cost', 'jit_inline_above_cost', 'jit_optimize_above_cost'])
    await session.query(setJitThreshold(name, jitAboveCost));
  // A client killed mid-statement (kill -9) must not leave its statement, and with it the
  // writer lock, running on the server until it ends: check the client every 250 ms (PG 14+).
  await session.query(checkClientEvery250ms);
}
