/**
 * A deterministic history of attempts over many days (a seeded PRNG, no fast-check), for the
 * tests of commands that work on ranges of days: backfill, verify, report, metrics.
 */
import type { OracleAttempt } from '../oracle/oracle.js';

/** mulberry32: a small seeded PRNG, the same sequence everywhere. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The day `offset` days after `day` (YYYY-MM-DD, UTC arithmetic on day numbers). */
export function addDays(day: string, offset: number): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + offset * 86_400_000).toISOString().slice(0, 10);
}

export interface HistoryOptions {
  readonly first: string;
  readonly days: number;
  readonly students?: number;
  readonly topics?: readonly string[];
  readonly seed?: number;
  /** Chance that a student practises a topic on a day. */
  readonly activity?: number;
}

/** Attempts on `days` days from `first`: a few per active (student, topic, day), at UTC times. */
export function history(options: HistoryOptions): OracleAttempt[] {
  const random = prng(options.seed ?? 1);
  const students = options.students ?? 6;
  const topics = options.topics ?? ['algebra', 'geometry', 'fractions'];
  const attempts: OracleAttempt[] = [];
  for (let d = 0; d < options.days; d++) {
    const day = addDays(options.first, d);
    for (let s = 1; s <= students; s++) {
      for (const topic of topics) {
        if (random() > (options.activity ?? 0.45)) continue;
        const count = 1 + Math.floor(random() * 6);
        for (let i = 0; i < count; i++) {
          const ms = Math.floor(random() * 86_400_000);
          attempts.push({
            student_id: `s${s}`,
            topic_id: topic,
            completed_at: new Date(Date.parse(`${day}T00:00:00Z`) + ms).toISOString(),
            correct: random() < 0.08 ? null : random() < 0.4 + s * 0.05,
            response_time_ms: random() < 0.05 ? null : Math.floor(random() * 60_000),
            hint_used: random() < 0.2,
          });
        }
      }
    }
  }
  return attempts;
}
