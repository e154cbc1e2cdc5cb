/** Parsing of the flags several commands share: usage errors (exit 2) that name the flag. */
import { ConfigError } from '../errors.js';
import type { Shard } from '../work.js';

/** A whole-number flag within bounds, or a usage error naming it. */
export function wholeNumber(value: string, flag: string, min: number, max: number): number {
  const parsed = Number(value);
  if (!/^\d+$/.test(value) || parsed < min || parsed > max) {
    throw new ConfigError(`${flag} ${JSON.stringify(value)} is not accepted: use a whole number from ${min} to ${max}`);
  }
  return parsed;
}

/** --shard i/N. */
export function parseShard(value: string): Shard {
  const match = /^(\d+)\/(\d+)$/.exec(value);
  const index = Number(match?.[1]);
  const count = Number(match?.[2]);
  if (!match || count < 1 || count > 1024 || index < 1 || index > count) {
    throw new ConfigError(`--shard ${JSON.stringify(value)} is not accepted: use i/N with 1 ≤ i ≤ N ≤ 1024, e.g. 1/4`);
  }
  return { index, count };
}

/** --shard when given. */
export function optionalShard(value: string | undefined): Shard | undefined {
  return value === undefined ? undefined : parseShard(value);
}

/** --chunk-days when given: days computed per statement by backfill and verify. */
export function optionalChunkDays(value: string | undefined): number | undefined {
  return value === undefined ? undefined : wholeNumber(value, '--chunk-days', 1, 366);
}
