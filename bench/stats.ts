/** Small numeric helpers of the benchmark. */
import { waitForQuiet } from './quiet.js';

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Runs `measure` `reps` times in sequence, each after `prepare` (not timed) and an idle machine. */
export async function repeat<T>(reps: number, prepare: (rep: number) => Promise<void>, measure: (rep: number) => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  for (let rep = 0; rep < reps; rep++) {
    await prepare(rep);
    await waitForQuiet();
    results.push(await measure(rep));
  }
  return results;
}

/** Day arithmetic on YYYY-MM-DD strings, in UTC (the benchmark's calendar). */
export function addDays(day: string, delta: number): string {
  const t = Date.parse(`${day}T00:00:00Z`) + delta * 86_400_000;
  return new Date(t).toISOString().slice(0, 10);
}
