/**
 * The window of a run: anchor = --date or yesterday in the job's time zone,
 * since = anchor − lookback, both ends included. Day arithmetic happens in SQL, so calendar
 * dates never pass through a JS Date.
 */
import type { Session } from './database/db.js';
import { ConfigError, sqlState } from './errors.js';
import { sql } from './sql/tag.js';

export interface Window {
  readonly since: string;
  readonly anchor: string;
  /** The since the configuration asked for, when missed runs widened the window. */
  readonly requestedSince: string;
  /** Days in the window, both ends included. */
  readonly days: number;
  /** Unix time (seconds) of the start of `since` in the job's time zone. */
  readonly startsAt: number;
  /** Unix time (seconds) of the end of `anchor` (the start of the next day) in the job's time zone. */
  readonly endsAt: number;
}

export interface WindowRequest {
  readonly date: string | undefined;
  readonly lookbackDays: number;
  readonly timezone: string;
  /** The anchor of the last successful run of this shard, if any (missed runs heal). */
  readonly lastSuccessAnchor?: string | undefined;
  /** At most this many days are added to heal missed runs. */
  readonly maxCatchUpDays?: number;
}

/** Plans the window. Throws ConfigError if PostgreSQL does not know the time zone. */
export async function planWindow(session: Session, request: WindowRequest): Promise<Window> {
  const date = request.date ?? null;
  const zone = request.timezone;
  const last = request.lastSuccessAnchor ?? null;
  try {
    const result = await session.query<{ anchor: string; requested_since: string; since: string }>(
      sql`with a as (
         select coalesce(${date}::date, (now() at time zone ${zone}::text)::date - 1) as anchor
       ), r as (
         select anchor, anchor - ${request.lookbackDays}::int as requested_since from a
       )
       select anchor, requested_since,
              -- Widen back to the day after the last success, at most maxCatchUpDays further.
              case when ${last}::date is not null and ${last}::date < requested_since - 1 and ${last}::date < anchor
                   then greatest(${last}::date + 1, requested_since - ${request.maxCatchUpDays ?? 0}::int)
                   else requested_since end as since
       from r`,
    );
    const row = result.rows[0]!;
    const range = await planRange(session, { from: row.since, to: row.anchor, timezone: request.timezone });
    return { ...range, requestedSince: row.requested_since };
  } catch (err) {
    throw timezoneError(err, request.timezone);
  }
}

/**
 * The bounds of the days from `from` to `to` (both included) in a time zone: a window with
 * since = from and anchor = to, as the backfill and verify use it. Throws ConfigError if the
 * database does not know the time zone.
 */
export async function planRange(session: Session, request: { from: string; to: string; timezone: string }): Promise<Window> {
  const { from, to, timezone: zone } = request;
  try {
    const result = await session.query<{ days: number; starts_at: number; ends_at: number }>(
      sql`select (${to}::date - ${from}::date + 1) as days,
              extract(epoch from (${from}::date::timestamp at time zone ${zone}::text))::float8 as starts_at,
              extract(epoch from ((${to}::date + 1)::timestamp at time zone ${zone}::text))::float8 as ends_at`,
    );
    const row = result.rows[0]!;
    return {
      since: request.from,
      anchor: request.to,
      requestedSince: request.from,
      days: row.days,
      startsAt: row.starts_at,
      endsAt: row.ends_at,
    };
  } catch (err) {
    throw timezoneError(err, request.timezone);
  }
}

/** Each day from `from` to `to` as a one-day window (since = anchor = the day), oldest first. */
export async function dayWindows(session: Session, request: { from: string; to: string; timezone: string }): Promise<Window[]> {
  const { from, to, timezone: zone } = request;
  try {
    const result = await session.query<{ day: string; starts_at: number; ends_at: number }>(
      sql`select (${from}::date + i)::text as day,
              extract(epoch from ((${from}::date + i)::timestamp at time zone ${zone}::text))::float8 as starts_at,
              extract(epoch from ((${from}::date + i + 1)::timestamp at time zone ${zone}::text))::float8 as ends_at
       from generate_series(0, ${to}::date - ${from}::date) i
       order by i`,
    );
    return result.rows.map((r) => ({
      since: r.day,
      anchor: r.day,
      requestedSince: r.day,
      days: 1,
      startsAt: r.starts_at,
      endsAt: r.ends_at,
    }));
  } catch (err) {
    throw timezoneError(err, request.timezone);
  }
}

/**
 * The first day of the nightly window as of now: yesterday in the job's time zone minus
 * `lookbackDays`. Days before it are history the source finished delivering long ago.
 */
export async function nightlyWindowStart(session: Session, timezone: string, lookbackDays: number): Promise<string> {
  try {
    const result = await session.query<{ since: string }>(
      sql`select ((now() at time zone ${timezone}::text)::date - 1 - ${lookbackDays}::int)::text as since`,
    );
    return result.rows[0]!.since;
  } catch (err) {
    throw timezoneError(err, timezone);
  }
}

/** Today in the job's time zone (the day that has not ended yet). */
export async function today(session: Session, timezone: string): Promise<string> {
  try {
    const result = await session.query<{ today: string }>(sql`select (now() at time zone ${timezone}::text)::date::text as today`);
    return result.rows[0]!.today;
  } catch (err) {
    throw timezoneError(err, timezone);
  }
}

function timezoneError(err: unknown, timezone: string): unknown {
  if (sqlState(err) === '22023') {
    return new ConfigError(
      `AGG_TIMEZONE=${JSON.stringify(timezone)} is not known to the database server: use an IANA name it lists in pg_timezone_names`,
      { cause: err },
    );
  }
  return err;
}
