/**
 * Configuration, read once: defaults, then the environment, then flags. The result
 * is a frozen, typed object; nothing else in the job reads `process.env`.
 */
import { z } from 'zod';
import {
  parseDatabaseUrl,
  parseDay,
  parsePushgatewayJob,
  parsePushgatewayUrl,
  parseTextfile,
  parseTimezone,
  parseWorkMem,
  type DatabaseTarget,
} from './values.js';
import { booleanVar, enumVar, integerVar, parsers, setting, shareVar, textVar, variables } from './variables.js';
import { ConfigError } from '../errors.js';
import { parseQualifiedName, type QualifiedName } from '../sql/identifiers.js';

export { parseDatabaseUrl, parseDay, workMemLimitsKb, type DatabaseTarget } from './values.js';
export { variables, type Variable } from './variables.js';

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
  /** The newest-day check: how a day without stored rows is judged against the same weekday of the weeks before. */
  readonly completeness: CompletenessConfig;
  /** The zone of a `timestamp without time zone` completed_at column; undefined: such a column is refused. */
  readonly sourceTimezone: string | undefined;
  /** The bound on narrowing failures down to combinations; past it the run fails wholesale. */
  readonly isolation: IsolationConfig;
  /** The thresholds of `report`'s verdict (docs/operations.md, "Report"). */
  readonly report: ReportThresholds;
  /** How `sql` runs its one statement (docs/security.md, "The sql command"). */
  readonly sql: SqlSettings;
}

/** The bounds of the `sql` command. */
export interface SqlSettings {
  /** AGG_SQL_TIMEOUT_MS: the statement's own timeout, in ms. */
  readonly timeoutMs: number;
  /** AGG_SQL_ROLE: the reader role a privileged connection switches to for the statement. */
  readonly role: string;
}

/** The shrink guard's thresholds. */
export interface ShrinkConfig {
  /** AGG_SHRINK_MAX_DROP: a day may lose at most this share (0 … 1) of its stored attempts. */
  readonly maxDrop: number;
  /** AGG_SHRINK_MIN_ATTEMPTS: days with fewer stored attempts are too small to judge. */
  readonly minAttempts: number;
}

/** The newest-day check's thresholds (docs/operations.md, "What the job remembers"). */
export interface CompletenessConfig {
  /** AGG_NEWEST_MAX_DROP: a new day may fall at most this share (0 … 1) below its baseline. */
  readonly maxDrop: number;
  /** AGG_NEWEST_MAX_RISE_PERCENT: a day above its baseline by more than this percentage is a warning. */
  readonly maxRisePercent: number;
  /** AGG_NEWEST_WEEKS: the baseline is the median of the same weekday of this many weeks before. */
  readonly weeks: number;
  /** AGG_NEWEST_MIN_WEEKS: with fewer of those weeks on record, the day is not judged. */
  readonly minWeeks: number;
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
  /** Hours after a night ends by which its run is expected to have covered it. */
  readonly nightGraceHours: number;
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
  AGG_NEWEST_MAX_DROP: shareVar('AGG_NEWEST_MAX_DROP', {
    default: '0.4',
    help: 'a day with no stored rows yet is refused as incomplete when it falls more than this share below the same weekday of the weeks before (0 … 1)',
  }),
  AGG_NEWEST_MAX_RISE_PERCENT: integerVar('AGG_NEWEST_MAX_RISE_PERCENT', 0, 100_000, {
    default: '60',
    help: 'a day more than this % above the same weekday of the weeks before is a warning (double delivery)',
  }),
  AGG_NEWEST_WEEKS: integerVar('AGG_NEWEST_WEEKS', 1, 26, {
    default: '4',
    help: "how many weeks before a day its baseline is taken over (the median of the same weekday's attempts)",
  }),
  AGG_NEWEST_MIN_WEEKS: integerVar('AGG_NEWEST_MIN_WEEKS', 1, 26, {
    default: '2',
    help: 'with fewer of those weeks on record a day is not judged (said in the log)',
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
  AGG_REPORT_NIGHT_GRACE_HOURS: integerVar('AGG_REPORT_NIGHT_GRACE_HOURS', 0, 168, {
    default: '6',
    help: "report: FAIL when yesterday's night is not covered by a successful run this many hours after it ended",
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
  AGG_SQL_TIMEOUT_MS: integerVar('AGG_SQL_TIMEOUT_MS', 1, 86_400_000, {
    default: '30000',
    help: 'sql: bound on its one statement, in ms',
  }),
  AGG_SQL_ROLE: textVar('AGG_SQL_ROLE', {
    default: 'aggregate_features_readonly',
    help: "sql on a superuser's (or file-reading, program-running, signalling) connection: the reader role it switches to",
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
    completeness: Object.freeze({
      maxDrop: e.AGG_NEWEST_MAX_DROP,
      maxRisePercent: e.AGG_NEWEST_MAX_RISE_PERCENT,
      weeks: e.AGG_NEWEST_WEEKS,
      minWeeks: e.AGG_NEWEST_MIN_WEEKS,
    }),
    sourceTimezone: e.AGG_SOURCE_TIMEZONE,
    isolation: Object.freeze({ maxFailed: e.AGG_MAX_FAILED, budgetMs: e.AGG_ISOLATION_BUDGET_MS }),
    report: Object.freeze({
      maxAgeHours: e.AGG_REPORT_MAX_AGE_HOURS,
      nightGraceHours: e.AGG_REPORT_NIGHT_GRACE_HOURS,
      dropPercent: e.AGG_REPORT_DROP_PERCENT,
      baselineDays: e.AGG_REPORT_BASELINE_DAYS,
      minThetaPercent: e.AGG_REPORT_MIN_THETA_PERCENT,
    }),
    sql: Object.freeze({ timeoutMs: e.AGG_SQL_TIMEOUT_MS, role: e.AGG_SQL_ROLE }),
  });
}
