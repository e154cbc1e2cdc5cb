/**
 * The one way a statement is written: the `sql` tagged template. Every `${value}` becomes a
 * bound parameter; a `${fragment}` that is itself `sql` is inlined with its parameters, and the
 * `$n` numbering is done once, for the whole statement, when it is built. Identifiers from
 * configuration go in through `ident()`, the only place that quotes them; `raw()` is for
 * constant text chosen by the code (a column name from a fixed list), never for a value.
 *
 * A statement is `{ text, values }`, the query config that `pg` takes and that PGlite takes
 * through the same `pg` client (db.ts), so `session.query(statement)` runs it on both.
 *
 * A small module of its own rather than a package: `sql-template-tag` is not among the
 * project's dependencies and quotes no identifiers, and kysely's `sql` needs kysely's query
 * executor to compile; what the job needs (bind, quote, compose, number) is these few lines.
 */
import { quoteIdent, type QualifiedName } from './identifiers.js';

/** A statement or a fragment of one: text with `$n` placeholders, and their values in order. */
export class Sql {
  /** The text, parameters numbered `$1`, `$2`, … in order of appearance. */
  readonly text: string;
  /** The parameters' values. */
  readonly values: unknown[];
  /** The text between the parameters (one more than values). */
  readonly #strings: readonly string[];

  constructor(strings: readonly string[], parts: readonly unknown[]) {
    const texts = [strings[0] ?? ''];
    const values: unknown[] = [];
    parts.forEach((part, i) => {
      const after = strings[i + 1] ?? '';
      if (part instanceof Sql) {
        texts[texts.length - 1] += part.#strings[0]!;
        part.values.forEach((value, j) => {
          values.push(value);
          texts.push(part.#strings[j + 1]!);
        });
        texts[texts.length - 1] += after;
      } else {
        values.push(part);
        texts.push(after);
      }
    });
    this.#strings = texts;
    this.values = values;
    this.text = texts.reduce((text, piece, i) => `${text}$${i}${piece}`);
    Object.freeze(this);
  }
}

/** Builds a statement or fragment; see the module comment. */
export function sql(strings: TemplateStringsArray, ...parts: unknown[]): Sql {
  return new Sql(strings, parts);
}

/** Constant text chosen by the code, put in as it is. Never a value or a configured name. */
export function raw(text: string): Sql {
  return new Sql([text], []);
}

/** The empty fragment. */
export const empty = raw('');

/** A quoted identifier, or a (schema-qualified) table or view name from configuration (quoted by quoteIdent). */
export function ident(name: string | QualifiedName): Sql {
  if (typeof name === 'string') return raw(quoteIdent(name));
  return raw(name.sql);
}

/** The fragments joined by `separator` (default `, `). */
export function join(fragments: readonly Sql[], separator: Sql = raw(', ')): Sql {
  if (fragments.length === 0) return empty;
  const parts: Sql[] = [];
  fragments.forEach((fragment, i) => {
    if (i > 0) parts.push(separator);
    parts.push(fragment);
  });
  return new Sql(['', ...parts.map(() => '')], parts);
}
