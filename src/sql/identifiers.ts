import { ConfigError } from '../errors.js';

/** A validated, possibly schema-qualified table or view name. */
export interface QualifiedName {
  readonly schema: string | undefined;
  readonly name: string;
  /** The name quoted for SQL, e.g. `"analytics"."attempt"`. */
  readonly sql: string;
}

/** Quotes one identifier for SQL. The only place identifiers are put into SQL text. */
export function quoteIdent(identifier: string): string {
  return `"${identifier.replaceAll('"', '""')}"`;
}

// One part of a name as SQL writes it: a plain identifier, or a double-quoted one ("" is a quote).
const namePart = /^(?:([A-Za-z_][A-Za-z0-9_$]*)|"((?:[^"]|"")+)")/;

/**
 * Parses `name` or `schema.name` from configuration by SQL's own rule, the one psql and
 * `sql/roles.sql` follow: a plain name is folded to lower case (`Attempt` is the table
 * `attempt`), a double-quoted one is kept exactly (`"Attempts"`, `"my schema"."Attempt"`).
 * Plain parts take letters, digits, `_` and `$`, not starting with a digit; every part has at
 * most 63 bytes. The result is quoted, so a value can never change the statement it is put into.
 */
export function parseQualifiedName(value: string, variable: string): QualifiedName {
  const parts: string[] = [];
  let rest = value.trim();
  let valid = true;
  for (;;) {
    const match = namePart.exec(rest);
    const part = match?.[1] !== undefined ? match[1].toLowerCase() : match?.[2]?.replaceAll('""', '"');
    if (!match || part === undefined || Buffer.byteLength(part) > 63 || part.includes('\0')) {
      valid = false;
      break;
    }
    parts.push(part);
    rest = rest.slice(match[0].length);
    if (!rest.startsWith('.')) break;
    rest = rest.slice(1);
  }
  if (!valid || rest !== '' || parts.length > 2) {
    throw new ConfigError(
      `${variable}=${JSON.stringify(value)} is not a valid table name: use name or schema.name as in SQL ` +
        '(plain names: letters, digits, _ and $, not starting with a digit, folded to lower case; "Quoted" names keep their case)',
    );
  }
  const [first, second] = parts as [string, string | undefined];
  const schema = second === undefined ? undefined : first;
  const name = second ?? first;
  const sql = schema === undefined ? quoteIdent(name) : `${quoteIdent(schema)}.${quoteIdent(name)}`;
  return Object.freeze({ schema, name, sql });
}
