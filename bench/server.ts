/**
 * The PostgreSQL server side of the benchmark: connection URLs, a `pg` client for set-up,
 * and psql for the floor (the issue asks for the floor through psql, the tool a DBA would use).
 */
import { spawn } from 'node:child_process';
import pg from 'pg';

pg.types.setTypeParser(pg.types.builtins.DATE, (v) => v);

/** The server's URL without a database name, e.g. postgres://root@127.0.0.1:5432. */
export function serverUrl(env: NodeJS.ProcessEnv): string {
  return (env.BENCH_PG_URL ?? 'postgres://root@127.0.0.1:5432').replace(/\/+$/, '');
}

export function databaseUrl(server: string, database: string): string {
  return `${server}/${database}`;
}

export async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: 'afd-bench' });
  await client.connect();
  return client;
}

/** Creates the database unless it exists. */
export async function ensureDatabase(server: string, database: string): Promise<void> {
  const admin = await connect(databaseUrl(server, 'postgres'));
  try {
    const exists = await admin.query('select 1 from pg_database where datname = $1', [database]);
    if (exists.rowCount === 0) await admin.query(`create database "${database.replaceAll('"', '""')}"`);
  } finally {
    await admin.end();
  }
}

export async function dropDatabase(server: string, database: string): Promise<void> {
  const admin = await connect(databaseUrl(server, 'postgres'));
  try {
    await admin.query(`drop database if exists "${database.replaceAll('"', '""')}" with (force)`);
  } finally {
    await admin.end();
  }
}

export interface ServerFacts {
  readonly version: string;
  readonly settings: Record<string, string>;
}

export async function serverFacts(client: pg.Client): Promise<ServerFacts> {
  const version = (await client.query<{ server_version: string }>('show server_version')).rows[0]!.server_version;
  const names = ['shared_buffers', 'work_mem', 'max_parallel_workers_per_gather', 'effective_cache_size', 'jit', 'synchronous_commit'];
  const rows = await client.query<{ name: string; setting: string }>(
    'select name, current_setting(name) as setting from pg_settings where name = any($1)',
    [names],
  );
  return { version, settings: Object.fromEntries(rows.rows.map((r) => [r.name, r.setting])) };
}

/**
 * Runs SQL statements in one psql session with `\timing on` and returns each statement's
 * server-reported time in ms, in order. `preamble` (session settings) is not timed.
 */
export async function psqlTimed(
  url: string,
  preamble: string[],
  statements: string[],
  applicationName = 'afd-bench-psql',
): Promise<number[]> {
  const script = [
    ...preamble.map((s) => s.trim().replace(/;?$/, ';')),
    '\\timing on',
    ...statements.map((s) => s.trim().replace(/;?$/, ';')),
  ];
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn('psql', ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', url], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, PGAPPNAME: applicationName },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`psql exited with ${code}: ${stderr.trim()}`))));
    child.stdin.end(script.join('\n') + '\n');
  });
  const times = [...out.matchAll(/^Time: ([\d.]+) ms/gm)].map((m) => Number(m[1]));
  if (times.length !== statements.length)
    throw new Error(`psql reported ${times.length} timings for ${statements.length} statements:\n${out}`);
  return times;
}

/** Runs a psql meta-command line (e.g. `\copy … to 'file'`). */
export async function psqlCommand(url: string, command: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', command], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`psql exited with ${code}: ${stderr.trim()}`))));
  });
}
