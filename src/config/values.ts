/**
 * Parsers of configuration values that need more than a type: URLs, names, sizes, days, time
 * zones. Each returns the value or throws a ConfigError that says what is accepted.
 */
import { ConfigError } from '../errors.js';
import { redactUrl } from '../database/redact.js';

/** Where the job's database is: a PostgreSQL server, or an embedded PGlite directory. */
export type DatabaseTarget =
  | { readonly kind: 'postgres'; readonly connectionString: string; readonly redacted: string }
  | { readonly kind: 'pglite'; readonly directory: string; readonly redacted: string };

export function parsePushgatewayUrl(value: string): string {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') {
    throw new ConfigError(
      `PUSHGATEWAY_URL is not accepted (${redactUrl(value)}): use the Pushgateway's base URL, e.g. http://pushgateway.monitoring:9091`,
    );
  }
  return value.replace(/\/+$/, '');
}

export function parsePushgatewayJob(value: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/.test(value)) {
    throw new ConfigError(
      `PUSHGATEWAY_JOB=${JSON.stringify(value)} is not accepted: use letters, digits, _, . and - (e.g. aggregate_features_daily)`,
    );
  }
  return value;
}

export function parseTextfile(value: string): string {
  // node_exporter's textfile collector reads only *.prom files.
  if (!/\.prom$/.test(value) || value.endsWith('/.prom')) {
    throw new ConfigError(
      `METRICS_TEXTFILE=${JSON.stringify(value)} is not accepted: name a .prom file in node_exporter's --collector.textfile.directory, e.g. /var/lib/node_exporter/textfile/aggregate_features_daily.prom`,
    );
  }
  return value;
}

/** Checks a `YYYY-MM-DD` string names a real calendar date; returns it unchanged. */
export function parseDay(value: string, what: string): string {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (match) {
    const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
    // Plain Gregorian arithmetic (a JS Date would read the years 0–99 as 1900–1999).
    const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
    const daysInMonth = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
    if (year >= 1 && daysInMonth !== undefined && day >= 1 && day <= daysInMonth) return value;
  }
  throw new ConfigError(`${what} ${JSON.stringify(value)} is not a calendar date: use YYYY-MM-DD, e.g. 2025-11-01`);
}

export function parseTimezone(value: string, label: string): string {
  const zone = value.trim();
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
  } catch {
    throw new ConfigError(`${label} is not a time zone: use an IANA name such as UTC or Europe/Berlin`);
  }
  return zone;
}

/** PostgreSQL's own bounds of work_mem, in kB (guc_tables.c: 64 … MAX_KILOBYTES = INT_MAX on 64-bit servers). */
export const workMemLimitsKb = { min: 64, max: 2_147_483_647 } as const;
const kilobytesPer: Record<string, number> = { kB: 1, MB: 1024, GB: 1024 ** 2, TB: 1024 ** 3 };

export function parseWorkMem(value: string): string | undefined {
  if (value.toLowerCase() === 'default') return undefined;
  const match = /^(\d+)(kB|MB|GB|TB)$/.exec(value);
  const kb = match ? Number(match[1]) * kilobytesPer[match[2]!]! : NaN;
  // Checked here rather than by the server, so a bad size is a configuration error (exit 2) before anything runs.
  if (!(kb >= workMemLimitsKb.min && kb <= workMemLimitsKb.max)) {
    throw new ConfigError(
      `AGG_WORK_MEM=${JSON.stringify(value)} is not accepted: use a size from 64kB to 2147483647kB (about 2TB) with a unit kB, MB, GB or TB, e.g. 256MB or 1GB, or "default" for the server's setting`,
    );
  }
  return value;
}

/**
 * Parses DATABASE_URL. Accepts `postgres://`, `postgresql://`, `postgresql+driver://` (the
 * suffix that SQLAlchemy URLs carry is dropped) and `pglite:<directory>`.
 */
export function parseDatabaseUrl(value: string): DatabaseTarget {
  const trimmed = value.trim();
  if (trimmed.startsWith('pglite:')) {
    const directory = trimmed.slice('pglite:'.length).replace(/^\/\/(?=\/)/, '');
    if (directory === '' || directory.startsWith('//')) {
      throw new ConfigError('DATABASE_URL=pglite: needs a directory, e.g. pglite:./.data/features');
    }
    return Object.freeze({ kind: 'pglite', directory, redacted: `pglite:${directory}` });
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(trimmed)?.[1]?.toLowerCase();
  if (scheme === undefined || !/^postgres(ql)?(\+[a-z0-9_]+)?$/.test(scheme)) {
    throw new ConfigError(
      `DATABASE_URL is not accepted (${redactUrl(trimmed)}): use postgres://user:password@host:5432/database, postgresql+psycopg2://… or pglite:<directory>`,
    );
  }
  const connectionString = 'postgresql://' + trimmed.slice(scheme.length + 3);
  let url: URL;
  try {
    url = new URL(connectionString);
  } catch {
    throw new ConfigError(`DATABASE_URL is not a valid URL (${redactUrl(trimmed)}): use postgres://user:password@host:5432/database`);
  }
  if ((url.pathname + url.search + url.hash).includes('@')) {
    // `postgres://u:2019/x@host/db` is host u, port 2019, database `x@host/db` to a URL parser,
    // but a password `2019/x` to a person: refuse it rather than guess (and print part of it).
    throw new ConfigError(
      `DATABASE_URL is ambiguous (${redactUrl(trimmed)}): an "@" after the host; percent-encode / ? # @ in the user name and password (p/ss@ is p%2Fss%40)`,
    );
  }
  if (url.hostname === '' && !url.searchParams.has('host')) {
    throw new ConfigError(`DATABASE_URL has no host (${redactUrl(trimmed)}): use postgres://user:password@host:5432/database`);
  }
  if (url.port !== '' && !(Number(url.port) > 0 && Number(url.port) < 65536)) {
    throw new ConfigError(`DATABASE_URL has an invalid port (${redactUrl(trimmed)})`);
  }
  return Object.freeze({ kind: 'postgres', connectionString, redacted: redactUrl(connectionString) });
}
