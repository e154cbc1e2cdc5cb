/**
 * A shared machine makes timings lie: tests of other work running on the same two cores
 * doubled some of our numbers. Before every timed measurement the benchmark waits until the
 * machine is idle (CPU busy below a threshold over one second, from /proc/stat), and counts
 * the measurements that had to proceed on a busy machine after the maximum wait; the report
 * states that count.
 *
 * Before it waits, it asks the server for a CHECKPOINT: writing 1.5M rows fills enough WAL to
 * start one, and a checkpoint begun by one measurement's writes slowed the next (the same
 * INSERT of 1,492,340 rows took 9.3 s in one run and 14.3 s in the next). A role that may not
 * checkpoint (PostgreSQL 15: superuser or pg_checkpoint) skips it.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { databaseUrl, serverUrl } from './server.js';

const threshold = 0.15;
let maxWaitMs = 300_000;
let waitedMs = 0;
let busyMeasurements = 0;
let measurements = 0;

function cpuTimes(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const [, ...fields] = line.trim().split(/\s+/);
    const v = fields.map(Number);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

/** Fraction of CPU time busy over the next `ms` milliseconds, or undefined off Linux. */
async function busyFraction(ms: number): Promise<number | undefined> {
  const a = cpuTimes();
  await sleep(ms);
  const b = cpuTimes();
  if (!a || !b || b.total === a.total) return undefined;
  return (b.busy - a.busy) / (b.total - a.total);
}

export function setMaxQuietWait(ms: number): void {
  maxWaitMs = ms;
}

/** Writes the server's dirty buffers out now (see the module comment); a refusal is ignored. */
function checkpoint(): void {
  spawnSync('psql', ['-X', '-q', '-d', databaseUrl(serverUrl(process.env), 'postgres'), '-c', 'checkpoint'], { stdio: 'ignore' });
}

/** Checkpoints, then waits until the machine is idle (or the maximum wait passed); call right before timing. */
export async function waitForQuiet(): Promise<void> {
  measurements++;
  checkpoint();
  const started = Date.now();
  for (;;) {
    const busy = await busyFraction(1000);
    if (busy === undefined || busy < threshold) break;
    if (Date.now() - started > maxWaitMs) {
      busyMeasurements++;
      break;
    }
    await sleep(4000);
  }
  waitedMs += Date.now() - started;
}

/** How many measurements so far started on a busy machine. */
export function busyCount(): number {
  return busyMeasurements;
}

/** For the report. */
export function quietSummary(): string {
  const waited = `waited ${Math.round(waitedMs / 1000)} s in total`;
  return busyMeasurements === 0
    ? `Each of the ${measurements} timed measurements started on an idle machine (< ${threshold * 100}% CPU busy over 1 s; ${waited}).`
    : `**${busyMeasurements} of ${measurements} timed measurements started on a busy machine** (other processes kept the CPU over ${threshold * 100}% busy for ${Math.round(maxWaitMs / 1000)} s; ${waited}): treat those numbers as upper bounds.`;
}
