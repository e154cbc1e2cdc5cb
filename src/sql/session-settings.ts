/**
 * The statements that set a session's settings for the rest of its life: `set_config(…, false)`
 * rather than `set`, so that the value is a bound parameter like every other value.
 */
import { sql, type Sql } from './tag.js';

/** Sets work_mem to `value` (e.g. `256MB`). */
export function setWorkMem(value: string): Sql {
  return sql`select set_config('work_mem', ${value}, false)`;
}

/** Sets statement_timeout to `ms` milliseconds. */
export function setStatementTimeout(ms: number): Sql {
  return sql`select set_config('statement_timeout', ${String(ms)}, false)`;
}

/** Float output as the shortest exact text (the PostgreSQL 12+ default). */
export const shortestExactFloats = sql`select set_config('extra_float_digits', '1', false)`;

/** Sets lock_timeout to `ms` milliseconds. */
export function setLockTimeout(ms: number): Sql {
  return sql`select set_config('lock_timeout', ${String(ms)}, false)`;
}

/** Sets the JIT threshold `name` (jit_above_cost and the inlining and optimizing ones) to `cost`. */
export function setJitThreshold(name: string, cost: number): Sql {
  return sql`select set_config(${name}, ${String(cost)}, false)`;
}

/** Checks the client every 250 ms while a statement runs; a server before 14 has no such setting, so nothing is set there. */
export const checkClientEvery250ms = sql`select set_config('client_connection_check_interval', '250', false) where current_setting('server_version_num')::int >= 140000`;
