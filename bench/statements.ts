/**
 * The job's statements as text with numbered placeholders, loaded from the build being
 * measured (`<dist>/sql/*.js`), so the bench runs exactly the SQL that ships. A statement there
 * is a function of the work that returns `{ text, values }` (sql/tag.ts); the bench calls it
 * with the placeholders themselves as the work's values (`raw('$1')` for since, …), which puts
 * them into the text as they are, in the order the bench binds its parameters. Builds before
 * the tag exported text (or a function of the theta plan returning text), read as they are.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

type Raw = (text: string) => unknown;

/** The `sql` directory of a built CLI. */
export function sqlDirectory(cli: string): string {
  return join(dirname(resolve(cli)), 'sql');
}

/** A module of `<dist>/sql`, by file name. */
export async function sqlModule(cli: string, file: string): Promise<Record<string, unknown>> {
  return (await import(pathToFileURL(join(sqlDirectory(cli), file)).href)) as Record<string, unknown>;
}

/** `raw` of the build's tag module; a function returning its text for builds before it (never called with one). */
export async function rawOf(cli: string): Promise<Raw> {
  if (!existsSync(join(sqlDirectory(cli), 'tag.js'))) return (text) => text;
  const tag = await sqlModule(cli, 'tag.js');
  return tag.raw as Raw;
}

/**
 * The plain server's backend of a built CLI (`<dist>/database/backend.js`, whose statements the
 * work carries); undefined for builds before it, whose statements take no backend.
 */
export async function plainBackendOf(cli: string): Promise<{ staging: unknown } | undefined> {
  const file = join(dirname(resolve(cli)), 'database', 'backend.js');
  if (!existsSync(file)) return undefined;
  const module = (await import(pathToFileURL(file).href)) as { plainServer?: { staging: unknown } };
  return module.plainServer;
}

/**
 * The work with placeholders: $1 since, $2 anchor, $3 time zone, $4 shard count, $5 shard index,
 * the source as `{{source}}`, theta disabled, on a plain server. Also read as the theta plan `{}`
 * by older builds.
 */
export function symbolicWork(raw: Raw, backend?: unknown): Record<string, unknown> {
  return {
    since: raw('$1'),
    anchor: raw('$2'),
    timezone: raw('$3'),
    shard: { count: raw('$4'), index: raw('$5') },
    source: raw('{{source}}'),
    theta: undefined,
    ...(backend === undefined ? {} : { backend }),
  };
}

/** The text of export `name` of a module: a string, or a function called with `argument`; undefined when missing. */
export function statementText(module: Record<string, unknown>, name: string, argument: unknown): string | undefined {
  const value = module[name];
  const statement = typeof value === 'function' ? (value as (argument: unknown) => unknown)(argument) : value;
  if (typeof statement === 'string') return statement;
  const text = (statement as { text?: unknown } | undefined)?.text;
  return typeof text === 'string' ? text : undefined;
}
