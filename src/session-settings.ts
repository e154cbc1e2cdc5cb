/**
 * The session settings of every command that computes: memory for sorts and hashes, bounds on
 * every statement and lock wait, and float output as the shortest exact text (the PostgreSQL
 * 12+ default; set because theta read from double precision columns is taken as that text,
 * see sql/theta.ts).
 */
import type { Config } from './config.js';
import type { Session } from './db.js';

/** Applies the settings to `session` for the rest of its life (set_config(…, false)). */
export async function applySessionSettings(session: Session, config: Config): Promise<void> {
  if (config.workMem !== undefined) await session.query("select set_config('work_mem', $1, false)", [config.workMem]);
  await session.query("select set_config('statement_timeout', $1, false)", [String(config.statementTimeoutMs)]);
  await session.query("select set_config('extra_float_digits', '1', false)");
  await session.query("select set_config('lock_timeout', $1, false)", [String(config.lockTimeoutMs)]);
  // A client killed mid-statement (kill -9) must not leave its statement, and with it the
  // writer lock, running on the server until it ends: check the client every 250 ms (PG 14+).
  await session.query(
    "select set_config('client_connection_check_interval', '250', false) where current_setting('server_version_num')::int >= 140000",
  );
}
