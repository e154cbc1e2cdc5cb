/**
 * Runs the job's CLI as a user would (a separate Node process) and measures it: wall time
 * from spawn to exit, the job's own Summary line, and the process's peak RSS — from GNU
 * `/usr/bin/time -f %M` when it is installed, otherwise by polling VmHWM in /proc/<pid>/status.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import type pg from 'pg';
import { watchBackends } from './cpu.js';

export interface JobRun {
  readonly wallMs: number;
  /** duration_ms of the job's Summary line. */
  readonly jobMs: number;
  readonly processed: number;
  readonly inserted: number;
  readonly updated: number;
  readonly unchanged: number;
  readonly deleted: number;
  /** Peak resident set size of the Node process, in MB. */
  readonly rssMb: number;
  /** CPU of the Node process (user + system), ms; NaN without GNU time. */
  readonly nodeCpuMs: number;
  /** CPU of the job's PostgreSQL backends and their parallel workers, ms; NaN when not watched. */
  readonly backendCpuMs: number;
  readonly stderr: string;
}

const timeBinary = '/usr/bin/time';
let gnuTime: boolean | undefined;

function haveGnuTime(): boolean {
  if (gnuTime === undefined) gnuTime = existsSync(timeBinary);
  return gnuTime;
}

/** How peak RSS is measured on this machine, for the report. */
export function rssMethod(): string {
  return haveGnuTime() ? '`/usr/bin/time -f %M` (peak RSS of the node process)' : 'VmHWM of /proc/<pid>/status, polled every 20 ms';
}

function readHwmKb(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmHWM:\s+(\d+) kB/m.exec(status);
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** The application_name the job's CLI gives its connections (src/database/db.ts). */
export const jobApplicationName = 'aggregate-features-daily';

/**
 * Runs `node <cli> <args>` with the environment; rejects unless it exits with code 0. With
 * `watch`, the CPU of the job's backends in that database is measured too (cpu.ts).
 */
export async function runCli(
  cli: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  watch?: { monitor: pg.Client; database: string },
): Promise<JobRun> {
  const marker = 'AFD_BENCH_TIME=';
  const useTime = haveGnuTime();
  const command = useTime ? timeBinary : process.execPath;
  const commandArgs = useTime ? ['-f', `${marker}%M %U %S`, process.execPath, cli, ...args] : [cli, ...args];
  const cpu = watch ? watchBackends(watch.monitor, { database: watch.database, applicationName: jobApplicationName }) : undefined;
  const started = performance.now();
  const child = spawn(command, commandArgs, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let polledKb = 0;
  const poller = useTime
    ? undefined
    : setInterval(() => {
        if (child.pid !== undefined) polledKb = Math.max(polledKb, readHwmKb(child.pid) ?? 0);
      }, 20);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  const wallMs = performance.now() - started;
  const backendCpuMs = cpu ? await cpu.stop() : NaN;
  if (poller) clearInterval(poller);
  if (code !== 0) throw new Error(`node ${cli} ${args.join(' ')} exited with ${code}:\n${stderr}${stdout}`);
  const time = useTime ? new RegExp(`${marker}(\\d+) ([\\d.]+) ([\\d.]+)`).exec(stderr) : null;
  const rssKb = useTime ? Number(time?.[1] ?? NaN) : polledKb;
  const nodeCpuMs = time ? (Number(time[2]) + Number(time[3])) * 1000 : NaN;
  const summary = /Summary: processed=(\d+), failed=(\d+), duration_ms=(\d+)/.exec(stderr);
  const rows = /Rows: inserted=(\d+), updated=(\d+), unchanged=(\d+), deleted=(\d+)/.exec(stderr);
  return {
    wallMs,
    jobMs: Number(summary?.[3] ?? NaN),
    processed: Number(summary?.[1] ?? 0),
    inserted: Number(rows?.[1] ?? 0),
    updated: Number(rows?.[2] ?? 0),
    unchanged: Number(rows?.[3] ?? 0),
    deleted: Number(rows?.[4] ?? 0),
    rssMb: rssKb / 1024,
    nodeCpuMs,
    backendCpuMs,
    stderr: stderr.replace(new RegExp(`${marker}[^\\n]*\\n?`), ''),
  };
}

/** The environment of a job run against a database URL. */
export function jobEnv(
  databaseUrl: string,
  settings: { lookbackDays: number; workMem: string; source?: string | undefined },
): NodeJS.ProcessEnv {
  return {
    ...(settings.source === undefined ? {} : { AGG_SOURCE: settings.source }),
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DATABASE_URL: databaseUrl,
    AGG_LOOKBACK_DAYS: String(settings.lookbackDays),
    AGG_WORK_MEM: settings.workMem,
    AGG_TIMEZONE: 'UTC',
    LOG_FORMAT: 'text',
  };
}
