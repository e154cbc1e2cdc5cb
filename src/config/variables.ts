/**
 * How a variable is declared: its documentation and its parser, together, so `--help`, the
 * README's table (checked by a test) and the parsing cannot drift apart. config.ts declares
 * every variable with these, in `envSchema`.
 */
import { z } from 'zod';
import { ConfigError } from '../errors.js';

/**
 * What `--help` and the README say about one environment variable. Declared once, next to its
 * parser in `envSchema` below, so the help, the README's table (checked by a test) and the
 * parsing cannot drift apart: a new variable is one line there.
 */
export interface Variable {
  readonly name: string;
  /** The value used when the variable is unset or empty, as a person writes it; undefined: none. */
  readonly default: string | undefined;
  /** A command-line flag that overrides the variable, e.g. `--lookback-days`. */
  readonly flag?: string | undefined;
  /** One line for `--help`. */
  readonly help: string;
}

interface Doc<D extends string | undefined> {
  readonly default: D;
  readonly flag?: string;
  readonly help: string;
}

/** A parser of one setting: returns the value or throws ConfigError naming `label` (`NAME="value"` or `--flag "value"`). */
export type Parse<T> = (value: string, label: string) => T;

const declared: Variable[] = [];
export const parsers = new Map<string, Parse<unknown>>();

/** Every environment variable the job reads, in the order of `envSchema` (the order of `--help`). */
export const variables: readonly Variable[] = declared;

/**
 * Declares one variable: its documentation, and a zod field that parses it (the default when
 * unset) with `parse`. With a default the parsed value is never undefined.
 */
export function setting<T, const D extends string | undefined>(name: string, doc: Doc<D>, parse: Parse<T>) {
  declared.push(Object.freeze({ name, default: doc.default, flag: doc.flag, help: doc.help }));
  parsers.set(name, parse);
  return z
    .string()
    .optional()
    .transform((value, ctx) => {
      const raw = value ?? doc.default;
      if (raw === undefined) return undefined;
      try {
        return parse(raw, `${name}=${JSON.stringify(raw)}`);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        ctx.addIssue({ code: 'custom', message: err.message });
        return z.NEVER;
      }
    }) as unknown as z.ZodType<D extends string ? T : T | undefined, string | undefined>;
}

const booleanWords: Record<string, boolean> = {
  true: true,
  '1': true,
  yes: true,
  false: false,
  '0': false,
  no: false,
};

export function booleanVar<const D extends string | undefined>(name: string, doc: Doc<D>) {
  return setting(name, doc, (value, label) => {
    const parsed = booleanWords[value.trim().toLowerCase()];
    if (parsed === undefined) throw new ConfigError(`${label} is not a boolean: use true/false, 1/0 or yes/no`);
    return parsed;
  });
}

export function integerVar<const D extends string | undefined>(name: string, min: number, max: number, doc: Doc<D>) {
  return setting(name, doc, (value, label) => {
    const trimmed = value.trim();
    const parsed = Number(trimmed);
    if (!/^-?\d+$/.test(trimmed) || parsed < min || parsed > max) {
      throw new ConfigError(`${label} is not accepted: use a whole number from ${min} to ${max}`);
    }
    return parsed;
  });
}

export function enumVar<const T extends readonly string[], const D extends string | undefined>(name: string, values: T, doc: Doc<D>) {
  return setting(name, doc, (value, label) => {
    const lowered = value.trim().toLowerCase();
    const known = values.find((v): v is T[number] => v === lowered);
    if (known === undefined) throw new ConfigError(`${label} is not accepted: use one of ${values.join(', ')}`);
    return known;
  });
}

/** A text variable, trimmed; checked further where it is used. */
export function textVar<const D extends string | undefined>(name: string, doc: Doc<D>) {
  return setting(name, doc, (value) => value.trim());
}

/** A share from 0 to 1, e.g. 0.5 (50% also accepted). */
export function shareVar<const D extends string | undefined>(name: string, doc: Doc<D>) {
  return setting(name, doc, (value, label) => {
    const trimmed = value.trim();
    const percent = /^(\d+(\.\d+)?)\s*%$/.exec(trimmed);
    const parsed = percent ? Number(percent[1]) / 100 : /^\d*\.?\d+$/.test(trimmed) ? Number(trimmed) : NaN;
    if (!(parsed >= 0 && parsed <= 1)) throw new ConfigError(`${label} is not accepted: use a share from 0 to 1, e.g. 0.5 (or 50%)`);
    return parsed;
  });
}
