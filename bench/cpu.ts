/**
 * CPU time of the PostgreSQL backends doing a measured piece of work, a companion to wall
 * time that other load on a shared machine inflates much less. While the work runs, a
 * separate connection polls pg_stat_activity every 20 ms for the backends of one
 * application_name in one database (and their parallel workers, by leader_pid) and reads
 * each one's utime + stime from /proc/<pid>/stat (the server runs on this machine). The last
 * reading of each process counts, so up to 20 ms per process can be missed; a parallel worker
 * shorter than that can be missed entirely.
 */
import { readFileSync } from 'node:fs';
import type pg from 'pg';

const ticksPerSecond = 100; // getconf CLK_TCK on Linux

function cpuMsOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return ((utime + stime) * 1000) / ticksPerSecond;
  } catch {
    return undefined;
  }
}

/** Whether backend CPU can be read here (Linux, server on this machine). */
export function canReadCpu(): boolean {
  return cpuMsOf(process.pid) !== undefined;
}

export interface CpuMonitor {
  /** Stops polling; resolves to the CPU ms of every backend seen. */
  stop(): Promise<number>;
}

/**
 * Starts watching the backends of `applicationName` in `database`, or the backend `pid` and its
 * parallel workers. For `pid` (a reused connection) only the CPU it uses from now on counts.
 */
export function watchBackends(monitor: pg.Client, target: { database: string; applicationName?: string; pid?: number }): CpuMonitor {
  const seen = new Map<number, { first: number; last: number }>();
  let stopped = false;
  if (target.pid !== undefined) {
    const now = cpuMsOf(target.pid);
    if (now !== undefined) seen.set(target.pid, { first: now, last: now });
  }
  let polling: Promise<void> = Promise.resolve();
  const poll = async () => {
    const rows = await monitor.query<{ pid: number }>(
      `select a.pid from pg_stat_activity a
       where a.datname = $1
         and (a.application_name = $2 or a.pid = $3
              or a.leader_pid in (select b.pid from pg_stat_activity b where b.application_name = $2 or b.pid = $3))`,
      [target.database, target.applicationName ?? null, target.pid ?? null],
    );
    for (const { pid } of rows.rows) {
      const ms = cpuMsOf(pid);
      if (ms === undefined) continue;
      const entry = seen.get(pid);
      // Backends first seen here are new (the job's, their parallel workers): count all their CPU.
      if (entry) entry.last = ms;
      else seen.set(pid, { first: 0, last: ms });
    }
  };
  const loop = async () => {
    while (!stopped) {
      await poll().catch(() => undefined);
      await new Promise((done) => setTimeout(done, 20));
    }
  };
  polling = loop();
  return {
    async stop() {
      stopped = true;
      await polling;
      await poll().catch(() => undefined);
      let total = 0;
      for (const { first, last } of seen.values()) total += last - first;
      return total;
    },
  };
}
