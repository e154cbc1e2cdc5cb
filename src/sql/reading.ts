/**
 * The statement of the `sql` command: the user's own text, whole. It is not built from
 * values, so there is nothing to bind; reading-statement.ts has checked that it only reads,
 * and it runs alone with the extended protocol (Session.queryArrays), which refuses a second
 * statement in the text and a parameter placeholder without a value.
 */
import { raw, type Sql } from './tag.js';

/** The user's checked reading statement `text`, as a statement. */
export function readingStatement(text: string): Sql {
  return raw(text);
}
