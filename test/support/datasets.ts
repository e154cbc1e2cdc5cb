/** Reads a real dataset's attempts.csv (../shared/datasets, never copied into the repository) in the oracle's shape. */
import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import type { OracleAttempt } from '../oracle/oracle.js';

export function readAttempts(file: string): OracleAttempt[] {
  const records = parse<Record<string, string>>(readFileSync(file), { columns: true });
  const bool = (v: string | undefined) => (v === '' || v === undefined ? null : v === 'true');
  return records.map((r) => ({
    student_id: r.student_id || null,
    topic_id: r.topic_id || null,
    completed_at: r.completed_at!,
    correct: bool(r.correct),
    response_time_ms: r.response_time_ms === '' || r.response_time_ms === undefined ? null : Number(r.response_time_ms),
    hint_used: bool(r.hint_used),
  }));
}
