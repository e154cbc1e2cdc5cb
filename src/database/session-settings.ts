/**
 * The session settings of every command that computes: memory for sorts and hashes, bounds on
 * every statement and lock wait, JIT only for statements large enough to repay it, and float output as the shortest exact text (the PostgreSQL
 * 12+ default; set because theta read from double precision columns is taken as that text,
 * see sql/theta.ts).
 */
import type { Config } from '../config/index.js';
import type { Session } from './db.js';
import { sql } from '../sql/tag.js';

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
  if (config.workMem !== undefined) await session.query(sql`select set_config('work_mem', ${config.workMem}, false)`);
  await session.query(sql`select set_config('statement_timeout', ${String(config.statementTimeoutMs)}, false)`);
  await session.query("select set_config('extra_float_digits', '1', false)");
  await session.query(sql`select set_config('lock_timeout', ${String(config.lockTimeoutMs)}, false)`);
  for (const name of ['jit_above_cost', 'jit_inline_above_cost', 'jit_optimize_above_cost'])
    await session.query(sql`select set_config(${name}, ${String(jitAboveCost)}, false)`);
  // A client killed mid-statement (kill -9) must not leave its statement, and with it the
  // writer lock, running on the server until it ends: check the client every 250 ms (PG 14+).
  await session.query(
    "select set_config('client_connection_check_interval', '250', false) where current_setting('server_version_num')::int >= 140000",
  );
}
