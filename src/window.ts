/**
 * The window of a run (SPEC §3): anchor = --date or yesterday in the job's time zone,
 * since = anchor − lookback, both ends included. Day arithmetic happens in SQL, so calendar
 * dates never pass through a JS Date.
 */
import type { Session } from './db.js';
import { ConfigError, sqlState } from './errors.js';

export interface Window {
  readonly since: string;
  readonly anchor: string;
  /** The since the configuration asked for, when missed runs widened the window. */
  readonly requestedSince: string;
  /** Days in the window, both ends included. */
  readonly days: number;
}

export interface WindowRequest {
  readonly date: string | undefined;
  readonly lookbackDays: number;
  readonly timezone: string;
  /** The anchor of the last successful run of this shard, if any (SPEC §7: missed runs heal). */
  readonly lastSuccessAnchor?: string | undefined;
  /** At most this many days are added to heal missed runs. */
  readonly maxCatchUpDays?: number;
}

/** Plans the window. Throws ConfigError if PostgreSQL does not know the time zone. */
export async function planWindow(session: Session, request: WindowRequest): Promise<Window> {
  try {
    const result = await session.query<{ anchor: string; requested_since: string; since: string }>(
      `with a as (
         select coalesce($1::date, (now() at time zone $2::text)::date - 1) as anchor
       ), r as (
         select anchor, anchor - $3::int as requested_since from a
       )
       select anchor, requested_since,
              -- Widen back to the day after the last success, at most $5 days further.
              case when $4::date is not null and $4::date < requested_since - 1 and $4::date < anchor
                   then greatest($4::date + 1, requested_since - $5::int)
                   else requested_since end as since
       from r`,
      [request.date ?? null, request.timezone, request.lookbackDays, request.lastSuccessAnchor ?? null, request.maxCatchUpDays ?? 0],
    );
    const row = result.rows[0]!;
    const days = await session.query<{ days: number }>('select ($1::date - $2::date + 1) as days', [row.anchor, row.since]);
    return { since: row.since, anchor: row.anchor, requestedSince: row.requested_since, days: days.rows[0]!.days };
  } catch (err) {
    if (sqlState(err) === '22023') {
      throw new ConfigError(
        `AGG_TIMEZONE=${JSON.stringify(request.timezone)} is not known to the database server: use an IANA name it lists in pg_timezone_names`,
        { cause: err },
      );
    }
    throw err;
  }
}
