/**
 * The statements that check the attempts source before a run. They read the catalog rather
 * than the source (to_regclass, pg_attribute), so a missing table or column is found without
 * an error to parse; only the read check touches the source, with `where false`, so that it
 * reads no row and fails only on the privilege.
 */
import type { QualifiedName } from './identifiers.js';
import { ident, join, raw, sql, type Sql } from './tag.js';

/** Whether `source` exists (to_regclass of its quoted name). */
export function sourceExists(source: QualifiedName): Sql {
  return sql`select to_regclass(${source.sql}) is not null as present`;
}

/**
 * Up to three tables or views named like `source` but for case (in its schema, when it names
 * one), quoted as they would have to be written: the hint for a name with capitals that was
 * folded to lower case.
 */
export function similarlyNamed(source: QualifiedName): Sql {
  return sql`select format('%I.%I', n.nspname, c.relname) as name
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where lower(c.relname) = lower(${source.name}) and c.relkind in ('r', 'v', 'm', 'f', 'p')
        and (${source.schema ?? null}::text is null or lower(n.nspname) = lower(${source.schema ?? null}::text))
      order by 1 limit 3`;
}

/**
 * The `columns` of `source` with their type, the base type of a domain (a domain over text is
 * text to the job) and the type category.
 */
export function sourceColumnTypes(source: QualifiedName, columns: readonly string[]): Sql {
  return sql`select a.attname::text as name, format_type(a.atttypid, a.atttypmod) as type,
            format_type(coalesce(nullif(t.typbasetype, 0), t.oid), null) as base,
            coalesce(b.typcategory, t.typcategory)::text as category
     from pg_attribute a
     join pg_type t on t.oid = a.atttypid
     left join pg_type b on b.oid = nullif(t.typbasetype, 0)
     where a.attrelid = to_regclass(${source.sql}) and a.attnum > 0 and not a.attisdropped and a.attname = any(${[...columns]}::text[])`;
}

/** Reads the `columns` of `source` and no row: fails only when the job's role may not read them. */
export function readNothing(source: QualifiedName, columns: readonly string[]): Sql {
  return sql`select ${join(columns.map((column) => raw(column)))} from ${ident(source)} where false`;
}

/** Sets the session setting `setting` to the source's time zone `zone`, for the rest of the session. */
export function setSourceTimezone(setting: string, zone: string): Sql {
  return sql`select set_config(${setting}, ${zone}, false)`;
}
