import { ConfigError } from './errors.js';

/** A validated, possibly schema-qualified table or view name. */
export interface QualifiedName {
  readonly schema: string | undefined;
  readonly name: string;
  /** The name quoted for SQL, e.g. `"analytics"."attempt"`. */
  readonly sql: string;
}

const part = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;

/** Quotes one identifier for SQL. The only place identifiers are put into SQL text. */
export function quoteIdent(identifier: string): string {
  return `"${identifier.replaceAll('"', '""')}"`;
}

/**
 * Parses `name` or `schema.name` from configuration. Only plain identifiers are accepted
 * (letters, digits, `_`, `$`, at most 63 characters, not starting with a digit); they are
 * quoted, so a value can never change the statement it is put into.
 */
export function parseQualifiedName(value: string, variable: string): QualifiedName {
  const parts = value.split('.');
  if (parts.length > 2 || !parts.every((p) => part.test(p))) {
    throw new ConfigError(
      `${variable}=${JSON.stringify(value)} is not a valid table name: use name or schema.name ` +
        '(letters, digits, _ and $, not starting with a digit)',
    );
  }
  const [first, second] = parts as [string, string | undefined];
  const schema = second === undefined ? undefined : first;
  const name = second ?? first;
  const sql = schema === undefined ? quoteIdent(name) : `${quoteIdent(schema)}.${quoteIdent(name)}`;
  return Object.freeze({ schema, name, sql });
}

/**
 * Fills `{{source}}`-style placeholders of a statement with quoted identifiers. Values never
 * go through here: they are bound parameters.
 */
export function withIdentifiers(statement: string, identifiers: Record<string, QualifiedName>): string {
  return statement.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    const id = identifiers[key];
    if (id === undefined) throw new Error(`statement uses unknown identifier {{${key}}}`);
    return id.sql;
  });
}
