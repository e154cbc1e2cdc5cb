/**
 * Configuration, read once: defaults, then the environment, then flags (SPEC §8). The result
 * is a frozen, typed object; nothing else in the job reads `process.env`.
 */
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { parseQualifiedName, type QualifiedName } from './identifiers.js';
import { redactUrl } from './redact.js';

/** Where the job's database is: a PostgreSQL server, or an embedded PGlite directory. */
export type DatabaseTarget =
  | { readonly kind: 'postgres'; readonly connectionString: string; readonly redacted: string }
  | { readonly kind: 'pglite'; readonly directory: string; readonly redacted: string };

export type ImprovementMode = 'accuracy' | 'theta';
export type LogFormat = 'text' | 'json';

/** Everything a command needs to know, validated. */
export interface Config {
  readonly database: DatabaseTarget | undefined;
  readonly source: QualifiedName;
  readonly lookbackDays: number;
  readonly includeTheta: boolean;
  readonly improvementMode: ImprovementMode;
  readonly timezone: string;
  readonly debug: boolean;
  readonly logFormat: LogFormat;
  /** `work_mem` for the run's session, e.g. `256MB`; undefined keeps the server's. */
  readonly workMem: string | undefined;
  /** Per-statement timeout of the run's session, in ms (0 = none). */
  readonly statementTimeoutMs: number;
  /** How long a statement waits for a row or table lock, in ms (0 = forever). */
  readonly lockTimeoutMs: number;
  /** How many times a run is tried when it fails transiently (connection loss, deadlock, serialization). */
  readonly runAttempts: number;
  /** How many times to try connecting before giving up with exit code 4. */
  readonly connectAttempts: number;
  /** Per-attempt connect timeout, in ms. */
  readonly connectTimeoutMs: number;
  /** Where the metrics of writing runs go (both, either or neither). */
  readonly metrics: MetricsConfig;
  /** The shrink guard: what a run may lose of a day's stored attempts before it refuses. */
  readonly shrink: ShrinkConfig;
  /** The zone of a `timestamp without time zone` completed_at column; undefined: such a column is refused. */
  readonly sourceTimezone: string | undefined;
  /** The bound on narrowing failures down to combinations; past it the run fails wholesale. */
  readonly isolation: IsolationConfig;
  /** The thresholds of `report`'s verdict (docs/operations.md, "Report"). */
  readonly report: ReportThresholds;
}

/** The shrink guard's thresholds. */
export interface ShrinkConfig {
  /** AGG_SHRINK_MAX_DROP: a day may lose at most this share (0 … 1) of its stored attempts. */
  readonly maxDrop: number;
  /** AGG_SHRINK_MIN_ATTEMPTS: days with fewer stored attempts are too small to judge. */
  readonly minAttempts: number;
}

/** The budget of failure isolation. */
export interface IsolationConfig {
  /** AGG_MAX_FAILED: more failed combinations than this means the source is broken wholesale. */
  readonly maxFailed: number;
  /** AGG_ISOLATION_BUDGET_MS: at most this long narrowing down failures (per window). */
  readonly budgetMs: number;
}

/** When `report` says WARN or FAIL. */
export interface ReportThresholds {
  /** FAIL when the last successful nightly run finished longer ago than this (hours). */
  readonly maxAgeHours: number;
  /** WARN when a day's users or attempts fall below this percentage of the median of the days before it. */
  readonly dropPercent: number;
  /** How many days before each day its median is taken over. */
  readonly baselineDays: number;
  /** With theta enabled: WARN when fewer rows than this percentage have a theta estimate. */
  readonly minThetaPercent: number;
}

/** Prometheus metrics of a writing run: pushed to a Pushgateway and/or written for node_exporter. */
export interface MetricsConfig {
  /** PUSHGATEWAY_URL, e.g. http://pushgateway:9091; undefined = no push. */
  readonly pushgatewayUrl: string | undefined;
  /** PUSHGATEWAY_JOB: the `job` the metrics are pushed under. */
  readonly pushgatewayJob: string;
  /** METRICS_TEXTFILE: a `.prom` file in node_exporter's textfile directory; undefined = none. */
  readonly textfile: string | undefined;
}

/** Flags that override the environment. */
export interface Flags {
  readonly date?: string | undefined;
  /** Values of the variables' flags (`--lookback-days`), by variable name; they override the environment. */
  readonly settings?: Readonly<Record<string, string | undefined>> | undefined;
}

/**
 * What `--help` and the README say about one environment variable. Declared once, next to its
 * parser in `envSchema` below, so the help, the README's table (checked by a test) and the
 * parsing cannot drift apart: a new variable is one line there.
 */
export interface Variable {
  readonly name: string;
  /** The value used when the variable is unset or empty, as a person writes it; undefined: none. */
  readonly default: string | undefined;
  /** A command-line flag that overrides the variable, e.g. `--lookback-days`. */
  readonly flag?: string | undefined;
  /** One line for `--help`. */
  readonly help: string;
}

interface Doc<D extends string | undefined> {
  readonly default: D;
  readonly flag?: string;
  readonly help: string;
}

/** A parser of one setting: returns the value or throws ConfigError naming `label` (`NAME="value"` or `--flag "value"`). */
type Parse<T> = (value: string, label: string) => T;

const declared: Variable[] = [];
const parsers = new Map<string, Parse<unknown>>();

/** Every environment variable the job reads, in the order of `envSchema` (the order of `--help`). */
export const variables: readonly Variable[] = declared;

/**
 * Declares one variable: its documentation, and a zod field that parses it (the default when
 * unset) with `parse`. With a default the parsed value is never undefined.
 */
function setting<T, const D extends string | undefined>(name: string, doc: Doc<D>, parse: Parse<T>) {
  declared.push(Object.freeze({ name, default: doc.default, flag: doc.flag, help: doc.help }));
  parsers.set(name, parse);
  return z
    .string()
    .optional()
    .transform((value, ctx) => {
      const raw = value ?? doc.default;
      if (raw === undefined) return undefined;
      try {
        return parse(raw, `${name}=${JSON.stringify(raw)}`);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        ctx.addIssue({ code: 'custom', message: err.message });
        return z.NEVER;
      }
    }) as unknown as z.ZodType<D extends string ? T : T | undefined, string | undefined>;
}

const booleanWords: Record<string, boolean> = {
  true: true,
  '1': true,
  yes: true,
  false: false,
  '0': false,
  no: false,
};

function booleanVar<const D extends string | undefined>(name: string, doc: Doc<D>) {
  return setting(name, doc, (value, label) => {
    const parsed = booleanWords[value.trim().toLowerCase()];
    if (parsed === undefined) throw new ConfigError(`${label} is not a boolean: use true/false, 1/0 or yes/no`);
    return parsed;
  });
}

function integerVar<const D extends string | undefined>(name: string, min: number, max: number, doc: Doc<D>) {
  return setting(name, doc, (value, label) => {
    const trimmed = value.trim();
    const parsed = Number(trimmed);
    if (!/^-?\d+$/.test(trimmed) || parsed < min || parsed > max) {
      throw new ConfigError(`${label} is not accepted: use a whole number from ${min} to ${max}`);
    }
    return parsed;
  });
}

function enumVar<const T extends readonly string[], const D extends string | undefined>(name: string, values: T, doc: Doc<D>) {
  return setting(name, doc, (value, label) => {
    const lowered = value.trim().toLowerCase();
    const known = values.find((v): v is T[number] => v === lowered);
    if (known === undefined) throw new ConfigError(`${label} is not accepted: use one of ${values.join(', ')}`);
    return known;
  });
}

/** A text variable, trimmed; checked further where it is used. */
function textVar<const D extends string | undefined>(name: string, doc: Doc<D>) {
  return setting(name, doc, (value) => value.trim());
}

/** A share from 0 to 1, e.g. 0.5 (50% also accepted). */
function shareVar<const D extends string | undefined>(name: string, doc: Doc<D>) {
  return setting(name, doc, (value, label) => {
    const trimmed = value.trim();
    const percent = /^(\d+(\.\d+)?)\s*%$/.exec(trimmed);
    const parsed = percent ? Number(percent[1]) / 100 : /^\d*\.?\d+$/.test(trimmed) ? Number(trimmed) : NaN;
    if (!(parsed >= 0 && parsed <= 1)) throw new ConfigError(`${label} is not accepted: use a share from 0 to 1, e.g. 0.5 (or 50%)`);
    return parsed;
  });
}

const envSchema = z.object({
  DATABASE_URL: setting(
    'DATABASE_URL',
    { default: undefined, help: 'postgres://user:password@host:5432/db, or pglite:<directory> (required)' },
    (value) => value,
  ),
  AGG_SOURCE: textVar('AGG_SOURCE', { default: 'attempt', help: 'the attempts table or view: name or schema.name, as in SQL' }),
  AGG_LOOKBACK_DAYS: integerVar('AGG_LOOKBACK_DAYS', 0, 366, {
    default: '7',
    flag: '--lookback-days',
    help: 'days before the anchor that are recomputed too (0 … 366)',
  }),
  AGG_INCLUDE_THETA: booleanVar('AGG_INCLUDE_THETA', { default: 'false', help: 'fill theta_estimate and theta_sd (true/false)' }),
  AGG_IMPROVEMENT_MODE: enumVar('AGG_IMPROVEMENT_MODE', ['accuracy', 'theta'] as const, {
    default: 'accuracy',
    help: 'accuracy, or theta (needs AGG_INCLUDE_THETA=true)',
  }),
  AGG_TIMEZONE: setting(
    'AGG_TIMEZONE',
    { default: 'UTC', flag: '--timezone', help: 'the IANA zone days are cut in, e.g. Europe/Berlin' },
    parseTimezone,
  ),
  DEBUG: booleanVar('DEBUG', { default: 'false', help: 'one [DEBUG] line per combination (true/false)' }),
  LOG_FORMAT: enumVar('LOG_FORMAT', ['text', 'json'] as const, { default: 'text', help: 'text, or json (one object per line)' }),
  AGG_WORK_MEM: textVar('AGG_WORK_MEM', { default: '256MB', help: "work_mem of the run's session (64kB … 2TB), or default" }),
  AGG_STATEMENT_TIMEOUT_MS: integerVar('AGG_STATEMENT_TIMEOUT_MS', 0, 86_400_000, {
    default: '3600000',
    help: 'bound on every statement of a run, in ms (0: none)',
  }),
  AGG_LOCK_TIMEOUT_MS: integerVar('AGG_LOCK_TIMEOUT_MS', 0, 86_400_000, {
    default: '60000',
    help: 'how long a statement waits for a table or row lock, in ms (0: forever)',
  }),
  AGG_RUN_ATTEMPTS: integerVar('AGG_RUN_ATTEMPTS', 1, 20, {
    default: '3',
    help: 'tries of a run that fails transiently (connection loss, deadlock)',
  }),
  AGG_CONNECT_ATTEMPTS: integerVar('AGG_CONNECT_ATTEMPTS', 1, 100, { default: '5', help: 'connection attempts before exit 4' }),
  AGG_CONNECT_TIMEOUT_MS: integerVar('AGG_CONNECT_TIMEOUT_MS', 100, 600_000, { default: '10000', help: 'per connection attempt, in ms' }),
  PUSHGATEWAY_URL: textVar('PUSHGATEWAY_URL', { default: undefined, help: "push each writing run's metrics to this Pushgateway" }),
  PUSHGATEWAY_JOB: textVar('PUSHGATEWAY_JOB', { default: 'aggregate_features_daily', help: 'the job label the metrics are pushed under' }),
  METRICS_TEXTFILE: textVar('METRICS_TEXTFILE', { default: undefined, help: 'write the same metrics to this node_exporter .prom file' }),
  AGG_SHRINK_MAX_DROP: shareVar('AGG_SHRINK_MAX_DROP', {
    default: '0.5',
    help: "the share of a day's stored attempts a run may lose before it refuses to write (0 … 1, or 50%)",
  }),
  AGG_SHRINK_MIN_ATTEMPTS: integerVar('AGG_SHRINK_MIN_ATTEMPTS', 0, 1_000_000_000, {
    default: '50',
    help: 'days with fewer stored attempts than this are not judged by the shrink guard',
  }),
  AGG_SOURCE_TIMEZONE: setting(
    'AGG_SOURCE_TIMEZONE',
    { default: undefined, help: "the zone of a source's completed_at of type timestamp (without time zone)" },
    parseTimezone,
  ),
  AGG_MAX_FAILED: integerVar('AGG_MAX_FAILED', 0, 10_000_000, {
    default: '1000',
    help: 'more failed combinations than this means the source is broken wholesale',
  }),
  AGG_ISOLATION_BUDGET_MS: integerVar('AGG_ISOLATION_BUDGET_MS', 0, 86_400_000, {
    default: '600000',
    help: 'at most this long narrowing down failing combinations, in ms',
  }),
  AGG_REPORT_MAX_AGE_HOURS: integerVar('AGG_REPORT_MAX_AGE_HOURS', 1, 8_784, {
    default: '30',
    help: 'report: FAIL when the last successful nightly run finished longer ago than this (hours)',
  }),
  AGG_REPORT_DROP_PERCENT: integerVar('AGG_REPORT_DROP_PERCENT', 0, 100, {
    default: '50',
    help: "report: WARN when a day's users or attempts fall below this % of the median of the days before",
  }),
  AGG_REPORT_BASELINE_DAYS: integerVar('AGG_REPORT_BASELINE_DAYS', 1, 90, {
    default: '7',
    help: 'report: how many days before each day its median is taken over',
  }),
  AGG_REPORT_MIN_THETA_PERCENT: integerVar('AGG_REPORT_MIN_THETA_PERCENT', 0, 100, {
    default: '50',
    help: 'report, with theta on: WARN when fewer rows than this % have a theta estimate',
  }),
});

/**
 * The log format before the configuration is loaded, or when it cannot be (a usage error is a
 * log line too): LOG_FORMAT read by its own parser; text when unset or not accepted.
 */
export function logFormatOf(env: Record<string, string | undefined>): LogFormat {
  const value = env.LOG_FORMAT;
  if (value === undefined || value.trim() === '') return 'text';
  try {
    return parsers.get('LOG_FORMAT')!(value, 'LOG_FORMAT') as LogFormat;
  } catch {
    return 'text';
  }
}

/** Reads the configuration from an environment (usually `process.env`) and flags. */
export function loadConfig(env: Record<string, string | undefined>, flags: Flags = {}): Config {
  // An empty variable counts as unset: Kubernetes manifests often render optional values as "".
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== ''));
  for (const [name, value] of Object.entries(flags.settings ?? {})) {
    if (value === undefined) continue;
    const variable = variables.find((v) => v.name === name);
    // A flag's bad value is reported under the flag's name, not the variable's.
    parsers.get(name)?.(value, `${variable?.flag ?? name} ${JSON.stringify(value)}`);
    present[name] = value;
  }
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues[0]?.message ?? 'invalid configuration');
  }
  const e = parsed.data;

  const includeTheta = e.AGG_INCLUDE_THETA;
  const improvementMode = e.AGG_IMPROVEMENT_MODE;
  if (improvementMode === 'theta' && !includeTheta) {
    throw new ConfigError('AGG_IMPROVEMENT_MODE=theta needs AGG_INCLUDE_THETA=true: the theta index reads the ability estimates');
  }
  if (flags.date !== undefined) parseDay(flags.date, '--date');

  return Object.freeze({
    database: e.DATABASE_URL === undefined ? undefined : parseDatabaseUrl(e.DATABASE_URL),
    source: parseQualifiedName(e.AGG_SOURCE, 'AGG_SOURCE'),
    lookbackDays: e.AGG_LOOKBACK_DAYS,
    includeTheta,
    improvementMode,
    timezone: e.AGG_TIMEZONE,
    debug: e.DEBUG,
    logFormat: e.LOG_FORMAT,
    workMem: parseWorkMem(e.AGG_WORK_MEM),
    statementTimeoutMs: e.AGG_STATEMENT_TIMEOUT_MS,
    lockTimeoutMs: e.AGG_LOCK_TIMEOUT_MS,
    runAttempts: e.AGG_RUN_ATTEMPTS,
    connectAttempts: e.AGG_CONNECT_ATTEMPTS,
    connectTimeoutMs: e.AGG_CONNECT_TIMEOUT_MS,
    metrics: Object.freeze({
      pushgatewayUrl: e.PUSHGATEWAY_URL === undefined ? undefined : parsePushgatewayUrl(e.PUSHGATEWAY_URL),
      pushgatewayJob: parsePushgatewayJob(e.PUSHGATEWAY_JOB),
      textfile: e.METRICS_TEXTFILE === undefined ? undefined : parseTextfile(e.METRICS_TEXTFILE),
    }),
    shrink: Object.freeze({ maxDrop: e.AGG_SHRINK_MAX_DROP, minAttempts: e.AGG_SHRINK_MIN_ATTEMPTS }),
    sourceTimezone: e.AGG_SOURCE_TIMEZONE,
    isolation: Object.freeze({ maxFailed: e.AGG_MAX_FAILED, budgetMs: e.AGG_ISOLATION_BUDGET_MS }),
    report: Object.freeze({
      maxAgeHours: e.AGG_REPORT_MAX_AGE_HOURS,
      dropPercent: e.AGG_REPORT_DROP_PERCENT,
      baselineDays: e.AGG_REPORT_BASELINE_DAYS,
      minThetaPercent: e.AGG_REPORT_MIN_THETA_PERCENT,
    }),
  });
}

function parsePushgatewayUrl(value: string): string {
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

function parsePushgatewayJob(value: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/.test(value)) {
    throw new ConfigError(
      `PUSHGATEWAY_JOB=${JSON.stringify(value)} is not accepted: use letters, digits, _, . and - (e.g. aggregate_features_daily)`,
    );
  }
  return value;
}

function parseTextfile(value: string): string {
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

function parseTimezone(value: string, label: string): string {
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

function parseWorkMem(value: string): string | undefined {
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
