/** Parsing of the flags several commands share: usage errors (exit 2) that name the flag. */
import { Option } from 'commander';
import { variables } from '../config/index.js';
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

/**
 * An option that takes a whole number within bounds, parsed as it is read (a usage error naming
 * the flag otherwise). Its default is a number, so help prints `(default: 30)`, and the command
 * receives a number whether the flag was given or not.
 */
export function wholeNumberOption(flags: string, description: string, min: number, max: number, fallback?: number): Option {
  const option = new Option(flags, description);
  const name = option.long ?? flags;
  option.argParser((value: string) => wholeNumber(value, name, min, max));
  if (fallback !== undefined) option.default(fallback);
  return option;
}

/**
 * The flag of a variable (`--lookback-days` for AGG_LOOKBACK_DAYS), for a command whose work it
 * changes; each command lists only those. Built from the definition the configuration is parsed
 * with, which also validates its value (naming the flag).
 */
export function settingOption(name: string): Option {
  const variable = variables.find((v) => v.name === name);
  if (variable?.flag === undefined) throw new Error(`${name} has no flag`);
  return new Option(`${variable.flag} <value>`, `${variable.help} (overrides ${variable.name})`);
}

/** The values of the variables' flags a command was given, by variable name. */
export function settingValues(opts: Readonly<Record<string, unknown>>): Record<string, string | undefined> {
  return Object.fromEntries(
    variables.flatMap((v) => {
      if (v.flag === undefined) return [];
      const value = opts[new Option(v.flag).attributeName()];
      return [[v.name, typeof value === 'string' ? value : undefined]];
    }),
  );
}
