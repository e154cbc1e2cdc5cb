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
  /** The thresholds of `report`'s verdict (docs/operations.md, "Report"). */
  readonly report: ReportThresholds;
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
  readonly dryRun?: boolean | undefined;
}

const booleanWords: Record<string, boolean> = {
  true: true,
  '1': true,
  yes: true,
  false: false,
  '0': false,
  no: false,
};

function booleanVar(name: string) {
  return z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined) return undefined;
      const parsed = booleanWords[value.trim().toLowerCase()];
      if (parsed === undefined) {
        ctx.addIssue({ code: 'custom', message: `${name}=${JSON.stringify(value)} is not a boolean: use true/false, 1/0 or yes/no` });
        return z.NEVER;
      }
      return parsed;
    });
}

function integerVar(name: string, min: number, max: number) {
  return z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined) return undefined;
      const trimmed = value.trim();
      const parsed = Number(trimmed);
      if (!/^-?\d+$/.test(trimmed) || parsed < min || parsed > max) {
        ctx.addIssue({
          code: 'custom',
          message: `${name}=${JSON.stringify(value)} is not accepted: use a whole number from ${min} to ${max}`,
        });
        return z.NEVER;
      }
      return parsed;
    });
}

function enumVar<const T extends readonly string[]>(name: string, values: T) {
  return z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined) return undefined;
      const lowered = value.trim().toLowerCase();
      const known = values.find((v): v is T[number] => v === lowered);
      if (known === undefined) {
        ctx.addIssue({ code: 'custom', message: `${name}=${JSON.stringify(value)} is not accepted: use one of ${values.join(', ')}` });
        return z.NEVER;
      }
      return known;
    });
}

const envSchema = z.object({
  DATABASE_URL: z.string().optional(),
  AGG_SOURCE: z.string().optional(),
  AGG_LOOKBACK_DAYS: integerVar('AGG_LOOKBACK_DAYS', 0, 366),
  AGG_INCLUDE_THETA: booleanVar('AGG_INCLUDE_THETA'),
  AGG_IMPROVEMENT_MODE: enumVar('AGG_IMPROVEMENT_MODE', ['accuracy', 'theta'] as const),
  AGG_TIMEZONE: z.string().optional(),
  DEBUG: booleanVar('DEBUG'),
  LOG_FORMAT: enumVar('LOG_FORMAT', ['text', 'json'] as const),
  AGG_WORK_MEM: z.string().optional(),
  AGG_STATEMENT_TIMEOUT_MS: integerVar('AGG_STATEMENT_TIMEOUT_MS', 0, 86_400_000),
  AGG_LOCK_TIMEOUT_MS: integerVar('AGG_LOCK_TIMEOUT_MS', 0, 86_400_000),
  AGG_RUN_ATTEMPTS: integerVar('AGG_RUN_ATTEMPTS', 1, 20),
  AGG_CONNECT_ATTEMPTS: integerVar('AGG_CONNECT_ATTEMPTS', 1, 100),
  AGG_CONNECT_TIMEOUT_MS: integerVar('AGG_CONNECT_TIMEOUT_MS', 100, 600_000),
  PUSHGATEWAY_URL: z.string().optional(),
  PUSHGATEWAY_JOB: z.string().optional(),
  METRICS_TEXTFILE: z.string().optional(),
  AGG_REPORT_MAX_AGE_HOURS: integerVar('AGG_REPORT_MAX_AGE_HOURS', 1, 8_784),
  AGG_REPORT_DROP_PERCENT: integerVar('AGG_REPORT_DROP_PERCENT', 0, 100),
  AGG_REPORT_BASELINE_DAYS: integerVar('AGG_REPORT_BASELINE_DAYS', 1, 90),
  AGG_REPORT_MIN_THETA_PERCENT: integerVar('AGG_REPORT_MIN_THETA_PERCENT', 0, 100),
});

/** Reads the configuration from an environment (usually `process.env`) and flags. */
export function loadConfig(env: Record<string, string | undefined>, flags: Flags = {}): Config {
  // An empty variable counts as unset: Kubernetes manifests often render optional values as "".
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== ''));
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues[0]?.message ?? 'invalid configuration');
  }
  const e = parsed.data;

  const includeTheta = e.AGG_INCLUDE_THETA ?? false;
  const improvementMode = e.AGG_IMPROVEMENT_MODE ?? 'accuracy';
  if (improvementMode === 'theta' && !includeTheta) {
    throw new ConfigError('AGG_IMPROVEMENT_MODE=theta needs AGG_INCLUDE_THETA=true: the theta index reads the ability estimates');
  }
  if (flags.date !== undefined) parseDay(flags.date, '--date');

  return Object.freeze({
    database: e.DATABASE_URL === undefined ? undefined : parseDatabaseUrl(e.DATABASE_URL),
    source: parseQualifiedName(e.AGG_SOURCE?.trim() ?? 'attempt', 'AGG_SOURCE'),
    lookbackDays: e.AGG_LOOKBACK_DAYS ?? 7,
    includeTheta,
    improvementMode,
    timezone: parseTimezone(e.AGG_TIMEZONE?.trim() ?? 'UTC'),
    debug: e.DEBUG ?? false,
    logFormat: e.LOG_FORMAT ?? 'text',
    workMem: parseWorkMem(e.AGG_WORK_MEM?.trim() ?? '256MB'),
    statementTimeoutMs: e.AGG_STATEMENT_TIMEOUT_MS ?? 3_600_000,
    lockTimeoutMs: e.AGG_LOCK_TIMEOUT_MS ?? 60_000,
    runAttempts: e.AGG_RUN_ATTEMPTS ?? 3,
    connectAttempts: e.AGG_CONNECT_ATTEMPTS ?? 5,
    connectTimeoutMs: e.AGG_CONNECT_TIMEOUT_MS ?? 10_000,
    metrics: Object.freeze({
      pushgatewayUrl: e.PUSHGATEWAY_URL === undefined ? undefined : parsePushgatewayUrl(e.PUSHGATEWAY_URL.trim()),
      pushgatewayJob: parsePushgatewayJob(e.PUSHGATEWAY_JOB?.trim() ?? 'aggregate_features_daily'),
      textfile: e.METRICS_TEXTFILE === undefined ? undefined : parseTextfile(e.METRICS_TEXTFILE.trim()),
    }),
    report: Object.freeze({
      maxAgeHours: e.AGG_REPORT_MAX_AGE_HOURS ?? 30,
      dropPercent: e.AGG_REPORT_DROP_PERCENT ?? 50,
      baselineDays: e.AGG_REPORT_BASELINE_DAYS ?? 7,
      minThetaPercent: e.AGG_REPORT_MIN_THETA_PERCENT ?? 50,
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
    // Validation only: the calendar date itself is never carried as a JS Date.
    const probe = new Date(Date.UTC(year, month - 1, day));
    if (year >= 1 && probe.getUTCFullYear() === year && probe.getUTCMonth() === month - 1 && probe.getUTCDate() === day) {
      return value;
    }
  }
  throw new ConfigError(`${what} ${JSON.stringify(value)} is not a calendar date: use YYYY-MM-DD, e.g. 2025-11-01`);
}

function parseTimezone(value: string): string {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: value });
  } catch {
    throw new ConfigError(`AGG_TIMEZONE=${JSON.stringify(value)} is not a time zone: use an IANA name such as UTC or Europe/Berlin`);
  }
  return value;
}

function parseWorkMem(value: string): string | undefined {
  if (value.toLowerCase() === 'default') return undefined;
  if (!/^\d+(kB|MB|GB)$/.test(value)) {
    throw new ConfigError(
      `AGG_WORK_MEM=${JSON.stringify(value)} is not accepted: use a size such as 64MB, 256MB or 1GB, or "default" for the server's setting`,
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
  if (url.hostname === '' && !url.searchParams.has('host')) {
    throw new ConfigError(`DATABASE_URL has no host (${redactUrl(trimmed)}): use postgres://user:password@host:5432/database`);
  }
  if (url.port !== '' && !(Number(url.port) > 0 && Number(url.port) < 65536)) {
    throw new ConfigError(`DATABASE_URL has an invalid port (${redactUrl(trimmed)})`);
  }
  return Object.freeze({ kind: 'postgres', connectionString, redacted: redactUrl(connectionString) });
}
